"""Active/passive: replica workers of one subvolume share the duty through a lock.

As gsyncd's meta-volume lock (spec section 3.1): with ``use-meta-volume=true``
a worker is active while it holds a non-blocking ``fcntl.lockf`` write lock on
``<meta-volume-mnt>/geo-rep/<session>_subvol_<n>.lock``; the descriptor is kept
open, so the lock lasts until the process exits or releases it, and the kernel
drops it when the process dies (``kill -9`` included). Workers re-try every
``replica-failover-interval`` seconds, so a passive one takes over within a few
intervals of the active one's death.

The cluster stime (gsyncd reads it through the master mount, where the
replicas' brick stimes aggregate) is published by the active worker next to
the lock, as ``<lock>.stime`` (JSON, atomic temp + rename), with the timestamp
of the last journal it completed. A passive worker raises its own data stime to
it, marks the journals the active one completed done and drops processed
journals older than it (:meth:`ActivePassive.passive_catch_up`), so when it
takes over it resumes where the active one stopped: it neither starts over nor
re-applies the journal the stime's one-second tolerance would repeat.

Without ``use-meta-volume`` every worker is active (one worker per replica is
then enforced by the replica's own lock).

>>> import tempfile
>>> from streamsync.options import Options
>>> mnt = tempfile.mkdtemp()
>>> o = Options.from_pairs(["use-meta-volume=true", f"meta-volume-mnt={mnt}"])
>>> a = ActivePassive.from_options(o, session="m_s", subvol=1)
>>> a.should_crawl()
True
>>> os.path.basename(a.lock_path)
'm_s_subvol_1.lock'
>>> a.release()
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import tempfile
from typing import Any, Callable, Iterable

from .errors import StateError
from .records import Stime

__all__ = ["ActivePassive", "lock_path_for", "purge_processed_before"]

log = logging.getLogger("streamsync.activepassive")

_JOURNAL = re.compile(r"CHANGELOG\.(\d+)\Z")


def lock_path_for(meta_volume_mnt: str, session: str, subvol: int | str) -> str:
    """``<mnt>/geo-rep/<session>_subvol_<n>.lock`` (gsyncd's name; ``session`` is
    ``<mastervol-uuid>_<slavevol-uuid>`` there).

    >>> lock_path_for("/run/gluster/shared_storage", "m_s", 2)
    '/run/gluster/shared_storage/geo-rep/m_s_subvol_2.lock'
    """
    return os.path.join(meta_volume_mnt, "geo-rep", f"{session}_subvol_{subvol}.lock")


def purge_processed_before(directory: str, stime: Stime | tuple[int, int]) -> list[str]:
    """Remove ``CHANGELOG.<ts>`` files with ``ts < stime[0]`` from a journal
    working directory streamsync owns (gsyncd's ``.processing`` purge)."""
    removed = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        m = _JOURNAL.match(name)
        if m and int(m[1]) < int(stime[0]):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except FileNotFoundError:
                pass
    return sorted(removed)


class ActivePassive:
    """Decide whether this worker is active (see the module docstring)."""

    def __init__(self, lock_path: str | None, *, interval: float = 1.0,
                 require_mount: bool = False) -> None:
        self.lock_path = lock_path
        self.interval = float(interval)
        self.require_mount = require_mount
        self._fd: int | None = None
        self._active = False

    @classmethod
    def from_options(cls, options: Any, *, session: str, subvol: int | str = 1
                     ) -> "ActivePassive":
        """From ``use-meta-volume``, ``meta-volume-mnt`` and ``replica-failover-interval``."""
        interval = float(options.get("replica-failover-interval"))
        if not options.get("use-meta-volume"):
            return cls(None, interval=interval)
        mnt = options.get("meta-volume-mnt")
        if not os.path.isdir(mnt):
            raise StateError(f"{mnt}: meta volume is not mounted (meta-volume-mnt); "
                             f"worker exiting")
        return cls(lock_path_for(mnt, session, subvol), interval=interval)

    @property
    def stime_path(self) -> str | None:
        return None if self.lock_path is None else self.lock_path[:-len(".lock")] + ".stime"

    @property
    def active(self) -> bool:
        return self._active

    def should_crawl(self) -> bool:
        """Try to (keep) hold the lock; True when this worker is active."""
        if self.lock_path is None:
            self._active = True
            return True
        if self._fd is None:
            os.makedirs(os.path.dirname(self.lock_path), exist_ok=True)
            self._fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o644)
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                if self._active:
                    log.warning("lost the active/passive lock %s", self.lock_path)
                self._active = False
                return False
            raise StateError(f"{self.lock_path}: cannot lock: {exc.strerror}") from exc
        if not self._active:
            log.info("worker is active (holding %s)", self.lock_path)
            try:
                os.ftruncate(self._fd, 0)
                os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
            except OSError:
                pass
        self._active = True
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing any descriptor drops our lockf locks
            self._fd = None
        self._active = False

    # ------------------------------------------------------- cluster stime
    def publish_stime(self, stime: Stime | tuple[int, int] | None,
                      done_ts: int | None = None) -> None:
        """Active worker: make ``stime`` the cluster stime (never moved back) and
        ``done_ts`` the timestamp of the last journal it completed."""
        path = self.stime_path
        if path is None or stime is None:
            return
        cur, cur_done = self._read()
        st = Stime(int(stime[0]), int(stime[1]))
        new_done = max(int(done_ts or 0), int(cur_done or 0)) or None
        if cur is not None and cur >= st and new_done == cur_done:
            return
        if cur is not None and cur > st:
            st = cur
        d = os.path.dirname(path)
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".stime.")
        with os.fdopen(fd, "w") as fh:
            json.dump({"stime": list(st), "done_ts": new_done, "pid": os.getpid()}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, path)

    def _read(self) -> tuple[Stime | None, int | None]:
        path = self.stime_path
        if path is None:
            return None, None
        try:
            with open(path) as fh:
                doc = json.load(fh)
            v = doc["stime"]
            done = doc.get("done_ts")
            return Stime(int(v[0]), int(v[1])), (None if done is None else int(done))
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("%s: unreadable cluster stime (%s)", path, exc)
            return None, None

    def cluster_stime(self) -> Stime | None:
        """The stime the active worker published, ``None`` when none yet."""
        return self._read()[0]

    def cluster_done_ts(self) -> int | None:
        """Timestamp of the last journal the active worker completed."""
        return self._read()[1]

    def passive_catch_up(self, state: Any, *, journals: Callable[[], Iterable[Any]] | None = None,
                         processing_dir: str | None = None) -> Stime | None:
        """Passive worker: raise ``state``'s data stime to the cluster stime, mark
        the journals the active worker completed (``journals()`` lists the
        candidates, e.g. the changelog directory) done, and purge
        ``processing_dir`` below the cluster stime. Returns the new stime when
        it moved."""
        cluster, done_ts = self._read()
        if cluster is None:
            return None
        mine = state.data_stime()
        moved = mine is None or mine < cluster
        newly_done: list[Any] = []
        if done_ts is not None and journals is not None and done_ts > getattr(self, "_marked", 0):
            have = state.done_names()
            newly_done = [c for c in journals() if c.ts <= done_ts and c.name not in have]
            self._marked = done_ts
        if not moved and not newly_done:
            return None
        with state.transaction():
            if moved:
                state.set_data_stime(cluster)
            if newly_done:
                state.mark_done(newly_done)
        if processing_dir:
            purge_processed_before(processing_dir, cluster)
        if moved:
            log.info("passive: stime raised to the cluster stime %s", tuple(cluster))
            return cluster
        return None
