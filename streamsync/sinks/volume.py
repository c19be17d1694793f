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

import stat as S
from typing import Iterable

from ..ops import EntryFailure, EntryOp, MetaFailure, MetaOp
from ..records import Stat
from ..secondary.gfid_mount import GfidMount
from ..secondary.rules import apply_entry, apply_meta, valid_gfid
from .order import EntryOrder

__all__ = ["VolumeSink"]


class VolumeSink:
    """The replica sink of a secondary volume mounted with aux-gfid-mount.

    ``mount``: the mount point (see :mod:`streamsync.secondary.gfid_mount` for the
    mount options that make it a safe target).
    """

    def __init__(self, mount: str) -> None:
        self.ns = GfidMount(mount)
        self.root = self.ns.mount
        self._made: dict[str, None] = {}

    def apply_entries(self, ops: Iterable[EntryOp], *,
                      waiting: Iterable[EntryFailure] = ()) -> list[EntryFailure]:
        """Apply entry ops in journal order; the failures (gsyncd's ``entry_ops``)."""
        order = EntryOrder(waiting)
        failures: list[EntryFailure] = []
        made: list[str] = []
        for op in ops:
            f = order.held(op)
            if f is None:
                f = apply_entry(self.ns, op, made)
            if f is not None:
                order.failed(f)
                failures.append(f)
        self._made.update(dict.fromkeys(made))
        return failures

    def apply_meta(self, ops: Iterable[MetaOp]) -> list[MetaFailure]:
        """Owner, mode and times (gsyncd's ``meta_ops``)."""
        return [f for op in ops for f in apply_meta(self.ns, op)]

    def is_data_target(self, gfid: str) -> bool:
        """Whether the volume has a regular file for ``gfid`` (its data can be sent)."""
        return valid_gfid(gfid) and self.ns.kind(gfid) == S.S_IFREG

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
        """Nothing is held open between calls."""

    def __enter__(self) -> "VolumeSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
