"""Where a worker keeps its progress.

* :class:`~streamsync.state.sqlite.SqliteState` (default): data stime, entry
  stime, status fields, processed changelogs and the failure ledger, in one
  SQLite file, each update in a transaction;
* :class:`~streamsync.state.xattr.XattrState`: the same, but the two sync
  points live in gsyncd's 8-byte ``stime``/``entry_stime`` xattrs on the brick
  root (drop-in compatible);
* :class:`~streamsync.state.lock.WorkerLock`: one worker per brick/replica.
"""

from __future__ import annotations

from .lock import WorkerLock
from .sqlite import Failure, SqliteState

__all__ = ["SqliteState", "Failure", "WorkerLock"]
