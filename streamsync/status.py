"""Worker status: gsyncd's status fields, kept in the state store and mirrored
into gsyncd's per-brick JSON status file.

The fields and their defaults are gsyncd's (spec section 7): ``slave_node``,
``worker_status`` (``Initializing...``, ``Active``, ``Passive``, ``Faulty``),
``crawl_status`` (``Hybrid Crawl``, ``History Crawl``, ``Changelog Crawl``),
``last_synced``, ``last_synced_entry``, the pending counters ``entry``,
``data``, ``meta`` (never below 0), ``failures`` and the checkpoint fields.

* :func:`checkpoint_merge` is the checkpoint rule, pure;
* :class:`StatusFile` is the gsyncd file ``brick_<quote_plus(brick)>.status``
  updated the gsyncd way: ``flock`` (re-opened until the locked handle is the
  file on disk), load over the defaults, change, and only when something
  changed write a temp file in the same directory, ``rename`` it over and
  ``fsync`` the directory;
* :class:`WorkerStatus` is what a worker calls: every update goes to the state
  store (the source of truth ``streamsync status`` reads) and to the file.

Besides gsyncd's fields the state keeps ``source``, ``replica``, ``mode``,
``checkpoint`` (the configured value), ``pid``, ``updated`` and ``batches``
(the last few batches, for throughput).

>>> import tempfile, os
>>> from streamsync.state import SqliteState
>>> d = tempfile.mkdtemp()
>>> ws = WorkerStatus(SqliteState(":memory:"), status_dir=d, source="/bricks/b1",
...                   replica="/replica", clock=lambda: 1700000100.0)
>>> ws.start(); ws.set_active(); ws.set_crawl_mode("history")
>>> ws.set_last_synced((1700000050, 0), checkpoint=1700000040)
True
>>> f = StatusFile(os.path.join(d, status_file_name("/bricks/b1"))).read()
>>> f["worker_status"], f["crawl_status"], f["checkpoint_completed"], f["checkpoint_completion_time"]
('Active', 'History Crawl', 'Yes', 1700000100)
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import time
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote_plus

from .errors import StateError
from .stamps import MAX_STAMP
from .state.sqlite import STATUS_DEFAULTS as _STATE_STATUS_DEFAULTS

__all__ = [
    "STATUS_DEFAULTS",
    "CRAWL_STATUS",
    "WORKER_STATUSES",
    "status_file_name",
    "checkpoint_merge",
    "StatusFile",
    "WorkerStatus",
    "human_time",
    "MirroredState",
    "BATCH_BUCKETS",
]

log = logging.getLogger("streamsync.status")

#: gsyncd's status fields and defaults (spec section 7), in gsyncd's order
# (one table, kept by the state store that persists them)
STATUS_DEFAULTS: dict[str, Any] = dict(_STATE_STATUS_DEFAULTS)

#: crawl mode -> gsyncd's ``crawl_status`` words
CRAWL_STATUS = {
    "xsync": "Hybrid Crawl",
    "history": "History Crawl",
    "live": "Changelog Crawl",
}

WORKER_STATUSES = ("Initializing...", "Active", "Passive", "Faulty", "Stopped")

#: upper bounds (seconds) of the batch-duration histogram kept in the state
BATCH_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
                 float("inf"))

#: counters reset when a worker starts (gsyncd's ``reset_on_worker_start``)
_RESET_ON_START = {"slave_node": "N/A", "crawl_status": "N/A", "entry": 0, "data": 0,
                   "meta": 0, "fault": "", "fault_journal": None, "fault_time": 0}
_KEEP_BATCHES = 20
#: the largest count or time a status field may hold (a stime is 32 bits; counts
# stay far below this)
_MAX_STATUS_NUMBER = 2**53
_TIME_FIELDS = frozenset({"last_synced", "last_synced_entry", "checkpoint_time",
                          "checkpoint_completion_time"})


def status_file_name(brick: str) -> str:
    """gsyncd's per-brick status file name.

    >>> status_file_name("/bricks/b 1")
    'brick_%2Fbricks%2Fb+1.status'
    """
    return f"brick_{quote_plus(brick)}.status"


def human_time(ts: float | int | None, *, utc: bool = False) -> str:
    """``%Y-%m-%d %H:%M:%S`` as gsyncd's status CLI prints it; ``N/A`` for 0/None.

    >>> human_time(0), human_time(1700000000, utc=True)
    ('N/A', '2023-11-14 22:13:20')
    """
    from .human import when
    return when(ts, utc=utc, zone=False)


def checkpoint_merge(fields: Mapping[str, Any], *, last_synced: int, checkpoint: int,
                     now: float) -> tuple[dict[str, Any], bool]:
    """Apply a root stime update with configured checkpoint ``C`` (spec 7).

    Returns the changed fields and whether the checkpoint was completed by this
    update (gsyncd sends ``GEOREP_CHECKPOINT_COMPLETED`` then). ``C == 0`` or a
    ``C`` differing from the stored ``checkpoint_time`` resets the three
    checkpoint fields to ``No``/0/0; then ``0 < C <= last_synced`` with state
    ``No`` completes it at ``now``.

    >>> d = dict(STATUS_DEFAULTS)
    >>> checkpoint_merge(d, last_synced=90, checkpoint=100, now=5)[0]["checkpoint_completed"]
    'No'
    >>> ch, done = checkpoint_merge(d, last_synced=100, checkpoint=100, now=5)
    >>> done, ch["checkpoint_time"], ch["checkpoint_completion_time"]
    (True, 100, 5)
    """
    cur = dict(STATUS_DEFAULTS)
    cur.update(fields)
    new = dict(cur)
    new["last_synced"] = int(last_synced)
    c = int(checkpoint or 0)
    if c == 0 or c != int(cur.get("checkpoint_time") or 0):
        new["checkpoint_time"] = 0
        new["checkpoint_completion_time"] = 0
        new["checkpoint_completed"] = "No"
    completed = False
    if 0 < c <= new["last_synced"] and new["checkpoint_completed"] == "No":
        new["checkpoint_time"] = c
        new["checkpoint_completion_time"] = int(now)
        new["checkpoint_completed"] = "Yes"
        completed = True
    changed = {k: v for k, v in new.items() if fields.get(k, cur[k]) != v or k not in fields}
    return changed, completed


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StatusFile:
    """gsyncd's per-brick JSON status file, updated atomically under ``flock``.

    >>> import tempfile, os
    >>> sf = StatusFile(os.path.join(tempfile.mkdtemp(), "brick_x.status"))
    >>> sf.update(worker_status="Active"), sf.update(worker_status="Active")
    (True, False)
    >>> sf.read()["worker_status"], sf.read()["crawl_status"]
    ('Active', 'N/A')
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def _open_locked(self) -> int:
        """Open and ``flock`` the file; re-open while the locked inode is not
        the file currently on disk (a concurrent writer renamed over it)."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise StateError(f"{self.path}: cannot open status file: {exc.strerror}") from exc
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                on_disk = os.stat(self.path)
            except FileNotFoundError:
                os.close(fd)
                continue
            mine = os.fstat(fd)
            if (mine.st_ino, mine.st_dev) == (on_disk.st_ino, on_disk.st_dev):
                return fd
            os.close(fd)

    @staticmethod
    def _load(fd: int, path: str) -> dict[str, Any]:
        data = dict(STATUS_DEFAULTS)
        raw = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            raw += chunk
        if raw.strip():
            try:
                loaded = json.loads(raw)
            except ValueError:
                log.warning("%s: status file is not JSON; starting from the defaults", path)
                loaded = {}
            if isinstance(loaded, dict):
                data.update(loaded)
        return data

    def read(self) -> dict[str, Any]:
        """The fields over their defaults (the defaults when the file is missing).

        Lenient, as a worker needs it: a status file that is not JSON is
        logged and read as the defaults (the next update rewrites it). For a
        reader that must not show defaults as facts, see :meth:`read_strict`.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return dict(STATUS_DEFAULTS)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read status file: {exc.strerror}") from exc
        try:
            return self._load(fd, self.path)
        finally:
            os.close(fd)

    def read_strict(self) -> dict[str, Any]:
        """The fields over their defaults, or :class:`~streamsync.errors.StateError`
        when the file is missing, is not a JSON object, or holds a field of the
        wrong type (a number that is not one, a time beyond any stime).

        >>> import tempfile
        >>> p = tempfile.mktemp(suffix=".status")
        >>> _ = open(p, "w").write("not json")
        >>> StatusFile(p).read_strict()
        Traceback (most recent call last):
        ...
        streamsync.errors.StateError: ...: not a status file (not a JSON object)
        """
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read status file: {exc.strerror}") from None
        try:
            loaded = json.loads(raw)
        except ValueError:
            loaded = None
        if not isinstance(loaded, dict):
            raise StateError(f"{self.path}: not a status file (not a JSON object)")
        data = dict(STATUS_DEFAULTS)
        data.update(loaded)
        for key, default in STATUS_DEFAULTS.items():
            value = data[key]
            most = MAX_STAMP if key in _TIME_FIELDS else _MAX_STATUS_NUMBER
            if isinstance(default, int) and not (type(value) is int and 0 <= value <= most):
                raise StateError(f"{self.path}: field {key!r} is not a count or a time: "
                                 f"{str(value)[:60]!r}")
            if isinstance(default, str) and not isinstance(value, str):
                raise StateError(f"{self.path}: field {key!r} is not text: {str(value)[:60]!r}")
        return data

    def update(self, changes: Mapping[str, Any] | None = None,
               merger: Callable[[dict[str, Any]], None] | None = None, **fields: Any) -> bool:
        """Apply ``changes``/``fields`` (and ``merger(data)`` if given); write
        only when something changed. Returns whether the file was rewritten."""
        fd = self._open_locked()
        try:
            old = self._load(fd, self.path)
            new = dict(old)
            if changes:
                new.update(changes)
            new.update(fields)
            if merger is not None:
                merger(new)
            if new == old and os.fstat(fd).st_size > 0:
                return False
            d = os.path.dirname(os.path.abspath(self.path))
            tfd, tmp = tempfile.mkstemp(dir=d, prefix=".", suffix=".status.tmp")
            try:
                with os.fdopen(tfd, "w") as fh:
                    json.dump(new, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.rename(tmp, self.path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            _fsync_dir(d)
            return True
        finally:
            os.close(fd)


class WorkerStatus:
    """A worker's status: state store first, gsyncd status file second.

    ``state`` is a state store with ``status()``, ``set_status(**fields)`` and
    ``add_status(field, delta)`` (:class:`~streamsync.state.SqliteState`);
    ``status_dir`` (optional) is where the gsyncd file
    ``brick_<quote_plus(source)>.status`` lives. ``on_event(name, fields)``
    receives ``GEOREP_CHECKPOINT_COMPLETED``.
    """

    def __init__(self, state: Any, *, source: str, replica: str = "",
                 status_dir: str | os.PathLike[str] | None = None,
                 clock: Callable[[], float] = time.time,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 counter_interval: float = 0.5) -> None:
        self.state = state
        self.counter_interval = counter_interval
        self._dirty: set[str] = set()
        self._last_write = float("-inf")
        self.source = source
        self.replica = replica
        self.clock = clock
        self.on_event = on_event
        self.file: StatusFile | None = None
        self._file_failed = False
        if status_dir is not None:
            os.makedirs(status_dir, exist_ok=True)
            self.file = StatusFile(os.path.join(os.fspath(status_dir),
                                                status_file_name(source)))

    # ------------------------------------------------------------- plumbing
    def _mirror(self, keys: Iterable[str] | None = None, *, counters: bool = False) -> None:
        """Copy ``keys`` (all fields when None) from the state into the file.

        Pending-counter changes (``counters=True``: the entry/data/meta
        increments around every changelog) are written at most every
        ``counter_interval`` seconds; any other update writes them too, so the
        file is exact whenever the worker's status, stime or batch changes.
        """
        if self.file is None:
            return
        now = time.monotonic()
        if counters and now - self._last_write < self.counter_interval:
            self._dirty.update(keys or ())
            return
        cur = self.state.status()
        wanted = set(STATUS_DEFAULTS) if keys is None else (set(keys) | self._dirty)
        self._dirty = set()
        self._last_write = now
        try:
            self.file.update({k: cur[k] for k in wanted if k in STATUS_DEFAULTS and k in cur})
        except OSError as exc:
            # the state holds the truth; its gsyncd-format copy is for other tools:
            # a full disk under it is said once and retried on the next update
            self._dirty = wanted
            if not self._file_failed:
                log.warning("%s: cannot update the status file: %s (the state keeps the "
                            "status; retrying on the next change)", self.file.path,
                            exc.strerror or exc)
            self._file_failed = True
        else:
            self._file_failed = False

    def _set(self, **fields: Any) -> None:
        fields["updated"] = self.clock()
        self.state.set_status(**fields)
        self._mirror(fields.keys())

    def fields(self) -> dict[str, Any]:
        """Everything the state holds about this worker (defaults filled in)."""
        d = dict(STATUS_DEFAULTS)
        d.update(self.state.status())
        return d

    def mirrored(self, state: Any = None) -> "MirroredState":
        """``state`` (default: this status' state) with every status write also
        mirrored into the status file - give it to the dispatcher."""
        return MirroredState(self.state if state is None else state, self)

    # -------------------------------------------------------- lifecycle
    def start(self, *, mode: str | None = None, checkpoint: int = 0) -> None:
        """Worker start: ``Initializing...``, gsyncd's start-time resets, identity."""
        self._set(worker_status="Initializing...", source=self.source, replica=self.replica,
                  pid=os.getpid(), started=self.clock(), checkpoint=int(checkpoint),
                  mode=mode or "auto", **_RESET_ON_START)
        self._mirror()

    def set_worker_status(self, value: str) -> None:
        if value not in WORKER_STATUSES:
            raise ValueError(f"unknown worker status {value!r}")
        self._set(worker_status=value)

    def set_active(self) -> None:
        self.set_worker_status("Active")

    def set_passive(self) -> None:
        self.set_worker_status("Passive")

    def set_faulty(self, reason: str = "", *, journal: str | None = None) -> None:
        """Faulty, with the error's first line and the journal the worker was on
        (what ``status`` and ``failures`` show: gsyncd hides the real error)."""
        line = (reason.strip().splitlines() or [""])[0][:500]
        self._set(worker_status="Faulty", fault=line, fault_journal=journal,
                  fault_time=int(self.clock()))

    def set_stopped(self) -> None:
        self._set(worker_status="Stopped")

    def set_crawl_mode(self, mode: str) -> None:
        """``mode`` is ``xsync``, ``history`` or ``live``."""
        try:
            word = CRAWL_STATUS[mode]
        except KeyError:
            raise ValueError(f"unknown crawl mode {mode!r}") from None
        self._set(crawl_status=word, crawl_mode=mode)

    def set_slave_node(self, host: str) -> None:
        self._set(slave_node=host)

    # -------------------------------------------------------- sync points
    def set_last_synced(self, stime: tuple[int, int], *, checkpoint: int = 0) -> bool:
        """Root stime update with the configured checkpoint; True when this update
        completed the checkpoint."""
        now = self.clock()
        with self.state.transaction():
            changed, completed = checkpoint_merge(self.fields(), last_synced=int(stime[0]),
                                                  checkpoint=checkpoint, now=now)
            self.state.set_status(**changed, checkpoint=int(checkpoint or 0), updated=now)
        self._mirror(changed.keys())
        if completed:
            log.info("checkpoint completed: checkpoint=%d completion_time=%d",
                     checkpoint, int(now))
            if self.on_event is not None:
                self.on_event("GEOREP_CHECKPOINT_COMPLETED",
                              {"checkpoint_time": int(checkpoint),
                               "checkpoint_completion_time": int(now),
                               "source": self.source, "replica": self.replica})
        return completed

    def set_last_synced_entry(self, ts: int) -> None:
        self._set(last_synced_entry=int(ts))

    # -------------------------------------------------------- counters
    def inc(self, field: str, n: int = 1) -> None:
        """Add to a pending counter (``entry``, ``data``, ``meta``)."""
        if n:
            self.state.add_status(field, int(n))
            self._mirror([field], counters=True)

    def dec(self, field: str, n: int = 1) -> None:
        """Subtract from a pending counter (never below 0)."""
        if n:
            self.state.add_status(field, -int(n))
            self._mirror([field], counters=True)

    def set_failures(self, n: int) -> None:
        self._set(failures=int(n))

    def set_pending(self, journals: int, oldest_ts: int | None) -> None:
        """How many journals are known and not yet applied, and the time of the
        oldest of them: what LAG is measured from (0 when nothing is pending)."""
        self._set(pending_journals=int(journals),
                  pending_oldest=None if not journals or oldest_ts is None else int(oldest_ts))

    def record_batch(self, *, changelogs: int, first_ts: int | None, last_ts: int | None,
                     entries: int = 0, meta: int = 0, data: int = 0,
                     seconds: float = 0.0, by_op: Mapping[str, int] | None = None,
                     data_bytes: int = 0) -> None:
        """Remember one finished batch: the last 20 for throughput, and running
        totals (ops applied by kind and by entry op, changelogs, batches, the
        batch-duration histogram) for :mod:`streamsync.metrics`."""
        cur = self.state.status()
        batches = list(cur.get("batches") or [])
        batches.append({"at": self.clock(), "changelogs": int(changelogs), "first_ts": first_ts,
                        "last_ts": last_ts, "entries": int(entries), "meta": int(meta),
                        "data": int(data), "seconds": round(float(seconds), 6)})
        totals = dict(cur.get("totals") or {})
        for k, n in (("entry", entries), ("meta", meta), ("data", data),
                     ("changelogs", changelogs), ("batches", 1), ("bytes", data_bytes)):
            totals[k] = int(totals.get(k, 0)) + int(n)
        ops = dict(totals.get("entry_by_op") or {})
        for op, n in (by_op or {}).items():
            ops[op] = int(ops.get(op, 0)) + int(n)
        totals["entry_by_op"] = ops
        buckets = list(totals.get("duration_buckets") or [0] * len(BATCH_BUCKETS))
        for i, le in enumerate(BATCH_BUCKETS):
            if seconds <= le:
                buckets[i] += 1
        totals["duration_buckets"] = buckets
        totals["duration_sum"] = round(float(totals.get("duration_sum", 0.0)) + seconds, 6)
        self._set(batches=batches[-_KEEP_BATCHES:], totals=totals)


class MirroredState:
    """A state store proxy: status writes (``set_status``, ``add_status``) are
    mirrored into the gsyncd status file; everything else is the store's."""

    def __init__(self, state: Any, status: WorkerStatus) -> None:
        self._state = state
        self._status = status

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)

    def set_status(self, **fields: Any) -> None:
        self._state.set_status(**fields)
        self._status._mirror(fields.keys())

    def add_status(self, field: str, delta: int) -> None:
        self._state.add_status(field, delta)
        self._status._mirror([field], counters=True)
