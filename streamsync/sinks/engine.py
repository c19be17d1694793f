"""What the data engines share: a transfer result and the parallel syncer.

A data engine moves the bytes of files named by gfid from the source brick's
handles (``.glusterfs/xx/yy/<gfid>``) into the replica's handles, in place, so
the hard links of the visible tree see the new content. :class:`DataSyncer`
runs an engine with ``sync-jobs`` parallel transfers, sends a gfid at most once
per batch (gsyncd re-sends a file once per changelog), and logs gsyncd's
``Sync Time Taken`` line per transfer.

>>> from streamsync.sinks.recording import RecordingEngine
>>> eng = RecordingEngine()
>>> s = DataSyncer(eng, jobs=2)
>>> s.submit(["a", "b", "a"]); s.submit(["b", "c"])
>>> sorted(g for r in s.wait() for g in r.gfids)
['a', 'b', 'c']
>>> s.close()
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, NamedTuple, Protocol, Sequence

from ..errors import SyncError


#: prefixes of the extended attributes GlusterFS keeps on a brick for itself: never
#: carried to a secondary (a brick-layout replica would hold the primary's stale
#: copies, a volume keeps its own); ``trusted.gfid`` is the sink's to set
GLUSTER_INTERNAL_XATTRS = ("trusted.gfid2path.", "trusted.glusterfs.", "trusted.afr.",
                           "trusted.ec.", "trusted.pgfid.")


def option_value(options: Any, name: str, default: Any) -> Any:
    """``options.get(name)``, or ``default`` without options (engines used bare in tests)."""
    if options is None:
        return default
    try:
        return options.get(name)
    except Exception:  # an options object that does not know the name
        return default

__all__ = ["TransferResult", "DataEngine", "DataSyncer", "JobResult", "option_value"]

log = logging.getLogger("streamsync.sync")


class TransferResult(NamedTuple):
    """Exit status of one transfer, its stderr (text), the number of names sent,
    and ``missed``: gfids the engine was given but says it did not transfer
    (an engine that cannot tell leaves it empty)."""

    returncode: int
    stderr: str = ""
    num_files: int = 0
    missed: tuple[str, ...] = ()


class DataEngine(Protocol):
    """A data engine: ``transfer(gfids)`` runs one transfer of that set."""

    name: str

    def transfer(self, gfids: Sequence[str]) -> TransferResult: ...

    def is_partial(self, code: int) -> bool: ...


class JobResult(NamedTuple):
    """One finished transfer job."""

    job: int
    gfids: tuple[str, ...]
    result: TransferResult

    @property
    def ok(self) -> bool:
        """Exit 0 and every file transferred ("rc 0, nothing sent" is not a success)."""
        return self.result.returncode == 0 and not self.result.missed

    @property
    def failed(self) -> tuple[str, ...]:
        """What to send again: everything after a failed run, else what it missed."""
        if self.result.returncode != 0:
            return self.gfids
        return self.result.missed


class DataSyncer:
    """Run ``engine`` transfers on ``jobs`` threads; dedupe per batch.

    :meth:`submit` queues gfids (those already sent in this batch are ignored),
    :meth:`wait` blocks until every queued transfer finished and returns the
    job results; a non-retriable exit status raises :class:`SyncError` with the
    engine's stderr. :meth:`new_batch` forgets what was sent.
    """

    def __init__(self, engine: DataEngine, *, jobs: int = 3, min_chunk: int = 256) -> None:
        self.engine = engine
        self.jobs = max(1, int(jobs))
        self.min_chunk = max(1, min_chunk)
        self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="ss-sync")
        self._sent: set[str] = set()
        self._futures: list[Future[JobResult]] = []
        self._lock = threading.Lock()
        self._job_no = 0
        self._landed: Callable[[Sequence[str]], Any] | None = None

    def on_landed(self, fn: Callable[[Sequence[str]], Any] | None) -> None:
        """Call ``fn(gfids)`` as files land during a batch: each file an engine that
        copies in-process reports as it is copied, and every file of a transfer
        when it ends (what it missed excepted), so a file may be told twice: the
        caller counts each once. ``fn`` runs on the transfer threads."""
        self._landed = fn
        if hasattr(self.engine, "on_copied"):
            self.engine.on_copied = None if fn is None else (lambda g: fn((g,)))

    def new_batch(self) -> None:
        self._sent = set()

    def submit(self, gfids: Iterable[str], *, force: bool = False) -> None:
        """Queue ``gfids`` (order kept; duplicates and already-sent ones dropped
        unless ``force``, used by retries)."""
        fresh: list[str] = []
        seen = self._sent
        local: set[str] = set()
        for g in gfids:
            if g in local or (not force and g in seen):
                continue
            local.add(g)
            fresh.append(g)
        seen.update(fresh)
        if not fresh:
            return
        n = max(1, min(self.jobs, len(fresh) // self.min_chunk))
        size = -(-len(fresh) // n)
        for i in range(0, len(fresh), size):
            chunk = tuple(fresh[i:i + size])
            with self._lock:
                self._job_no += 1
                job = (self._job_no - 1) % self.jobs + 1
            self._futures.append(self._pool.submit(self._run, job, chunk))

    def _run(self, job: int, gfids: tuple[str, ...]) -> JobResult:
        start = time.monotonic()
        res = self.engine.transfer(gfids)
        log.info("Sync Time Taken [{job=%d}, {num_files=%d}, {return_code=%d}, "
                 "{duration=%.4f}]", job, len(gfids), res.returncode,
                 time.monotonic() - start)
        if self._landed is not None and res.returncode == 0:
            missed = set(res.missed)
            self._landed([g for g in gfids if g not in missed])
        return JobResult(job, gfids, res)

    def wait(self) -> list[JobResult]:
        """Results of every transfer submitted since the last :meth:`wait`."""
        futures, self._futures = self._futures, []
        results = [f.result() for f in futures]
        for r in results:
            code = r.result.returncode
            if code != 0 and not self.engine.is_partial(code):
                raise SyncError(f"{self.engine.name} exited with status {code}: "
                                f"{r.result.stderr.strip()[-2000:]}")
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> "DataSyncer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
