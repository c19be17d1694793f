"""SQLite state store: sync points, status fields, done changelogs, failure ledger.

Every write is a transaction (WAL journal), so a worker killed at any point
finds either the old or the new value, never half of one. Group several
writes with :meth:`SqliteState.transaction` (the dispatcher advances the data
stime and marks the batch's changelogs done in one transaction).

>>> st = SqliteState(":memory:")
>>> st.data_stime() is None
True
>>> st.set_data_stime(Stime(1700000013, 0)); st.data_stime()
Stime(sec=1700000013, nsec=0)
>>> fid = st.add_failure("data", "5b1c2d3e-0000-4000-8000-00000000000a", errno=23)
>>> [f.gfid for f in st.failures()]
['5b1c2d3e-0000-4000-8000-00000000000a']
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from typing import Any, Iterable, Iterator, NamedTuple

import orjson

from ..errors import StateError
from ..records import MINUS_INFINITY, Stime
from ..stamps import MAX_STAMP

__all__ = ["SqliteState", "Failure", "STATUS_DEFAULTS", "require_state_dir"]

#: gsyncd's status fields and their defaults (spec section 7)
STATUS_DEFAULTS: dict[str, Any] = {
    "slave_node": "N/A",
    "worker_status": "N/A",
    "crawl_status": "N/A",
    "last_synced": 0,
    "last_synced_entry": 0,
    "entry": 0,
    "data": 0,
    "meta": 0,
    "failures": 0,
    "checkpoint_completed": "N/A",
    "checkpoint_time": 0,
    "checkpoint_completion_time": 0,
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS done (name TEXT PRIMARY KEY, ts INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,              -- entry | meta | data
    gfid TEXT NOT NULL,
    changelog TEXT,
    op BLOB,                         -- JSON of the op (entry: EntryOp.to_dict())
    errno INTEGER,
    info BLOB,                       -- JSON (entry: FailureInfo, meta: 'chmod'|'utime')
    first_seen REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    resolved REAL
);
CREATE INDEX IF NOT EXISTS failures_open ON failures (resolved, kind);
"""


def require_state_dir(path: str | os.PathLike[str]) -> None:
    """Raise :class:`StateError` unless the directory of state file ``path`` exists.

    State never creates directories for a path the user typed: a typo would
    otherwise grow ``/nonexistent/`` at the filesystem root.

    >>> require_state_dir("/nonexistent/x.sqlite")
    Traceback (most recent call last):
    ...
    streamsync.errors.StateError: /nonexistent/x.sqlite: cannot create the state file: directory /nonexistent does not exist
    """
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(parent):
        raise StateError(f"{os.fspath(path)}: cannot create the state file: directory "
                         f"{parent} does not exist")


def _possible(st: Stime) -> bool:
    """A sync point a GlusterFS stime xattr can hold (32-bit seconds, nanoseconds)."""
    return 0 <= st.sec <= MAX_STAMP and 0 <= st.nsec < 10**9


def _state_error(path: str, exc: sqlite3.Error, what: str = "") -> StateError:
    """One line naming the state file and SQLite's cause."""
    msg = str(exc) or type(exc).__name__
    if "locked" in msg:
        msg += " (another process holds the state file; is a worker still running?)"
    elif "full" in msg:
        msg += " (no space left for the state file)"
    return StateError(f"{path}: {what}{msg}")


class Failure(NamedTuple):
    """One ledger row."""

    id: int
    kind: str
    gfid: str
    changelog: str | None
    op: Any
    errno: int | None
    info: Any
    first_seen: float
    attempts: int
    resolved: float | None

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class SqliteState:
    """State in one SQLite file (``":memory:"`` for tests). ``timeout``: how long
    to wait for a lock another process holds before raising :class:`StateError`."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        if self.path != ":memory:":
            require_state_dir(self.path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=timeout,
                                       check_same_thread=False)
            if self.path != ":memory:":
                # WAL: a committed transaction survives a killed process; NORMAL
                # sync only lets a power loss roll back the last commits, which
                # replaying the journals repairs (every op is idempotent)
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise _state_error(self.path, exc, "not a usable state database: ") from None
        self._lock = threading.RLock()
        self._depth = 0

    # ------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def _guarded(self) -> Iterator[sqlite3.Connection]:
        """The connection under the lock; any SQLite error becomes a :class:`StateError`."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise _state_error(self.path, exc) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator["SqliteState"]:
        """Group writes: all or nothing. A SQLite error inside (a corrupt page, a
        full disk, a lock held elsewhere past the 30 s timeout) rolls back and
        raises :class:`StateError`."""
        with self._guarded() as db:
            outer = self._depth == 0
            if outer:
                db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer and db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                db.execute("COMMIT")

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._guarded() as db:
            if self._depth:
                return db.execute(sql, args)
            with self.transaction():
                return db.execute(sql, args)

    def _get(self, key: str) -> Any:
        with self._guarded() as db:
            row = db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return orjson.loads(row[0])
        except orjson.JSONDecodeError:
            raise StateError(f"{self.path}: stored {key!r} is not JSON") from None

    def _put(self, key: str, value: Any) -> None:
        self._exec("INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE "
                   "SET value=excluded.value", (key, orjson.dumps(value)))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "SqliteState":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------- sync points
    def _stime(self, key: str) -> Stime | None:
        v = self._get(key)
        if v is None:
            return None
        try:
            st = Stime(int(v[0]), int(v[1]))
        except (TypeError, ValueError, IndexError, KeyError):
            raise StateError(f"{self.path}: stored {key} {v!r} is not a sync point") from None
        if not _possible(st):
            raise StateError(f"{self.path}: stored {key} {list(st)} is impossible (seconds "
                             f"0..{MAX_STAMP}); start over with a fresh --state")
        return st

    def _set_stime(self, key: str, st: Stime | tuple[int, int]) -> None:
        st = Stime(int(st[0]), int(st[1]))
        if st == MINUS_INFINITY:
            return  # never written (gsyncd's URXTIME)
        if not _possible(st):
            raise StateError(f"{self.path}: refusing to store the impossible {key} {list(st)}")
        self._put(key, list(st))

    def data_stime(self) -> Stime | None:
        """The data sync point, ``None`` before the first batch."""
        return self._stime("stime")

    def entry_stime(self) -> Stime | None:
        """The entry sync point, ``None`` before the first entry op."""
        return self._stime("entry_stime")

    def set_data_stime(self, st: Stime | tuple[int, int]) -> None:
        self._set_stime("stime", st)

    def set_entry_stime(self, st: Stime | tuple[int, int]) -> None:
        self._set_stime("entry_stime", st)

    # --------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        """The status fields over their defaults."""
        d = dict(STATUS_DEFAULTS)
        d.update(self._get("status") or {})
        return d

    def set_status(self, **fields: Any) -> None:
        with self.transaction():
            cur = self._get("status") or {}
            cur.update(fields)
            self._put("status", cur)

    def add_status(self, field: str, delta: int) -> None:
        """Increment (or decrement, never below 0) a counter field."""
        with self.transaction():
            cur = self._get("status") or {}
            cur[field] = max(0, int(cur.get(field, 0)) + delta)
            self._put("status", cur)

    # ------------------------------------------------------------- notes
    def note(self, key: str) -> Any:
        """A small fact kept across runs under ``key`` (JSON), or ``None``.

        >>> s = SqliteState(":memory:"); s.set_note("deletes_refused", 1795467011)
        >>> s.note("deletes_refused"), s.note("nothing")
        (1795467011, None)
        """
        return self._get("note:" + key)

    def set_note(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key``; ``None`` forgets it."""
        with self.transaction():
            if value is None:
                self._exec("DELETE FROM kv WHERE key = ?", ("note:" + key,))
            else:
                self._put("note:" + key, value)

    # ----------------------------------------------------- done changelogs
    def mark_done(self, changelogs: Iterable[Any]) -> None:
        """Record changelogs (``Changelog`` values or names) as processed."""
        now = time.time()
        rows = []
        for c in changelogs:
            name = getattr(c, "name", c)
            ts = int(str(name).rsplit(".", 1)[-1])
            rows.append((name, ts, now))
        with self.transaction():
            self._db.executemany("INSERT OR IGNORE INTO done(name, ts, at) VALUES(?, ?, ?)",
                                 rows)

    def is_done(self, changelog: Any) -> bool:
        name = getattr(changelog, "name", changelog)
        with self._guarded() as db:
            return db.execute("SELECT 1 FROM done WHERE name=?", (name,)).fetchone() is not None

    def done_names(self) -> set[str]:
        with self._guarded() as db:
            return {r[0] for r in db.execute("SELECT name FROM done")}

    # ------------------------------------------------------- failure ledger
    def add_failure(self, kind: str, gfid: str, *, changelog: str | None = None,
                    op: Any = None, errno: int | None = None, info: Any = None) -> int:
        """Record an abandoned item; an open row for the same (kind, gfid, op)
        gets its attempt count bumped instead of a duplicate."""
        op_j = None if op is None else orjson.dumps(op)
        info_j = None if info is None else orjson.dumps(info)
        with self.transaction():
            row = self._db.execute(
                "SELECT id FROM failures WHERE resolved IS NULL AND kind=? AND gfid=? "
                "AND op IS ?", (kind, gfid, op_j)).fetchone()
            if row is not None:
                self._db.execute("UPDATE failures SET attempts=attempts+1, errno=?, info=?, "
                                 "changelog=? WHERE id=?", (errno, info_j, changelog, row[0]))
                return int(row[0])
            cur = self._db.execute(
                "INSERT INTO failures(kind, gfid, changelog, op, errno, info, first_seen) "
                "VALUES(?, ?, ?, ?, ?, ?, ?)",
                (kind, gfid, changelog, op_j, errno, info_j, time.time()))
            return int(cur.lastrowid)

    def failures(self, kind: str | None = None, *, include_resolved: bool = False) -> list[Failure]:
        """Ledger rows (open ones unless ``include_resolved``), oldest first."""
        sql = "SELECT * FROM failures"
        cond, args = [], []
        if not include_resolved:
            cond.append("resolved IS NULL")
        if kind is not None:
            cond.append("kind=?")
            args.append(kind)
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        sql += " ORDER BY id"
        with self._guarded() as db:
            rows = db.execute(sql, tuple(args)).fetchall()
        return [Failure(r[0], r[1], r[2], r[3], None if r[4] is None else orjson.loads(r[4]),
                        r[5], None if r[6] is None else orjson.loads(r[6]), r[7], r[8], r[9])
                for r in rows]

    def count_failures(self, kind: str | None = None) -> int:
        """Number of open ledger rows (of ``kind`` when given)."""
        sql = "SELECT COUNT(*) FROM failures WHERE resolved IS NULL"
        args: tuple = ()
        if kind is not None:
            sql += " AND kind=?"
            args = (kind,)
        with self._guarded() as db:
            return int(db.execute(sql, args).fetchone()[0])

    def resolve_delivered(self, kind: str, gfids: Iterable[str]) -> int:
        """Resolve the open ``kind`` rows of ``gfids``: a later batch delivered
        them. Returns how many rows were resolved."""
        now = time.time()
        with self.transaction():
            if not self._db.execute("SELECT 1 FROM failures WHERE resolved IS NULL AND kind=? "
                                    "LIMIT 1", (kind,)).fetchone():
                return 0
            before = self._db.total_changes
            self._db.executemany("UPDATE failures SET resolved=? WHERE resolved IS NULL "
                                 "AND kind=? AND gfid=?", [(now, kind, g) for g in gfids])
            return self._db.total_changes - before

    def resolve_failures(self, ids: Iterable[int]) -> None:
        now = time.time()
        with self.transaction():
            self._db.executemany("UPDATE failures SET resolved=? WHERE id=?",
                                 [(now, i) for i in ids])

    def __repr__(self) -> str:
        return f"SqliteState({self.path!r})"
