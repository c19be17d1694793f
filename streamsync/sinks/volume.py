"""A GlusterFS secondary volume as the replica: the secondary's rules over an
aux-gfid mount (:mod:`streamsync.secondary`).

Entry ops go through :func:`streamsync.secondary.rules.apply_entry` in journal
order (nothing overtakes a failed op it depends on: :mod:`.order`), meta ops
through :func:`~streamsync.secondary.rules.apply_meta`; file data is written by
the data engine into ``MOUNT/.gfid/<gfid>`` (:class:`~streamsync.sinks.rsync.RsyncEngine`
with ``gfid_dest=True``).

>>> VolumeSink.__doc__.split(".")[0]
'The replica sink of a secondary volume mounted with aux-gfid-mount'
"""

from __future__ import annotations

import os
import stat as S
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Sequence

from ..ops import EntryFailure, EntryOp, MetaFailure, MetaOp
from ..records import Stat
from ..secondary.gfid_mount import GfidMount
from ..secondary.rules import apply_entry, apply_meta, valid_gfid
from .order import EntryOrder, create_run_end

__all__ = ["VolumeSink"]

#: a CREATE run shorter than this is applied serially (threads cost more than they save)
_MIN_PARALLEL = 16


class VolumeSink:
    """The replica sink of a secondary volume mounted with aux-gfid-mount.

    ``mount``: the mount point (see :mod:`streamsync.secondary.gfid_mount` for the
    mount options that make it a safe target).
    """

    def __init__(self, mount: str, *, threads: int = 4) -> None:
        self.ns = GfidMount(mount)
        self.root = self.ns.mount
        self.threads = threads
        self._made: dict[str, None] = {}
        self._executor: ThreadPoolExecutor | None = None
        #: called (on the caller's thread) with the gfids of regular files a run of
        #: CREATEs made, every ``created_chunk`` of them, while the run goes on: the
        #: dispatcher starts their data then instead of after the whole changelog
        self.on_created: Callable[[list[str]], Any] | None = None
        self.created_chunk = 256

    def apply_entries(self, ops: Iterable[EntryOp], *,
                      waiting: Iterable[EntryFailure] = ()) -> list[EntryFailure]:
        """Apply entry ops in journal order; the failures (gsyncd's ``entry_ops``).

        Each op is a few round trips to the volume, so a run of consecutive
        CREATEs with distinct names and gfids (order-independent: a CREATE only
        adds a file name, and no CREATE makes another's parent) is applied on
        ``threads`` threads; the failures come back in journal order, as serially.
        """
        order = EntryOrder(waiting)
        failures: list[EntryFailure] = []
        made: list[str] = []
        ops = list(ops)
        i = 0
        while i < len(ops):
            j = create_run_end(ops, i) if self.threads > 1 else i
            if j - i >= _MIN_PARALLEL:
                run = ops[i:j]
                held = [order.held(op) for op in run]  # (no op of the run waits on another)
                free = [op for op, h in zip(run, held) if h is None]
                done = iter(self._pool().map(lambda op: self._apply(op), free))
                fresh: list[str] = []
                for op, h in zip(run, held):
                    f, op_made = (h, []) if h is not None else next(done)
                    made.extend(op_made)
                    if f is not None:
                        order.failed(f)
                        failures.append(f)
                    elif self.on_created is not None and S.S_ISREG(op.mode or 0):
                        fresh.append(op.gfid)
                        if len(fresh) >= self.created_chunk:
                            self.on_created(fresh)
                            fresh = []
                if fresh:
                    self.on_created(fresh)
                i = j
                continue
            op = ops[i]
            f = order.held(op)
            if f is None:
                f = apply_entry(self.ns, op, made)
            if f is not None:
                order.failed(f)
                failures.append(f)
            i += 1
        self._made.update(dict.fromkeys(made))
        return failures

    def _apply(self, op: EntryOp) -> tuple[EntryFailure | None, list[str]]:
        made: list[str] = []
        return apply_entry(self.ns, op, made), made

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="ss-volume")
        return self._executor

    def apply_meta(self, ops: Iterable[MetaOp]) -> list[MetaFailure]:
        """Owner, mode and times (gsyncd's ``meta_ops``)."""
        return [f for op in ops for f in apply_meta(self.ns, op)]

    def is_data_target(self, gfid: str) -> bool:
        """Whether the volume has a regular file for ``gfid`` (its data can be sent)."""
        return valid_gfid(gfid) and self.ns.kind(gfid) == S.S_IFREG

    def data_targets(self, gfids: Sequence[str]) -> list[bool]:
        """:meth:`is_data_target` of each gfid, asked on the sink's threads (each is a
        round trip to the volume)."""
        if self.threads <= 1 or len(gfids) < _MIN_PARALLEL:
            return [self.is_data_target(g) for g in gfids]
        return list(self._pool().map(self.is_data_target, gfids))

    def open_data(self, gfid: str) -> int | None:
        """A write descriptor of ``MOUNT/.gfid/<gfid>`` when it is a regular file
        (opened with ``O_NOFOLLOW``, never through a name), else ``None``: where the
        tar receiver of ``streamsync serve`` writes a file's bytes."""
        if not valid_gfid(gfid):
            return None
        try:
            fd = os.open(self.ns.go(gfid),
                         os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        if not S.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return fd

    def has_handle(self, gfid: str) -> bool:
        """Whether the volume has ``gfid`` at all."""
        return valid_gfid(gfid) and self.ns.kind(gfid) is not None

    def lstat(self, gfid: str) -> Stat | None:
        return self.ns.view.lstat(gfid)

    def entry_gfid(self, pgfid: str, bname: str) -> str | None:
        return self.ns.view.entry_gfid(pgfid, bname)

    def dir_entry(self, gfid: str) -> tuple[str, str] | None:
        return self.ns.dir_location(gfid) if valid_gfid(gfid) else None

    def take_made(self) -> list[str]:
        """Regular files made from a stat since the last call (bytes owed)."""
        made, self._made = list(self._made), {}
        return made

    def close(self) -> None:
        """Stop the create threads (nothing else is held open between calls)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> "VolumeSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
