"""Crawl modes of a worker, as gsyncd's ``crawlwrap`` runs them.

* :mod:`~streamsync.crawl.history` - journals from the data stime to "now"
  through the HTIME index (once, at start);
* :mod:`~streamsync.crawl.xsync` - the hybrid filesystem crawl of a brick,
  written as ``XSYNC-CHANGELOG.<ts>`` journals that go through the very same
  pipeline stages and sinks;
* :mod:`~streamsync.crawl.live` - follow the changelog directory every
  ``change-interval`` seconds;
* :mod:`~streamsync.crawl.select` - the mode choice and the hand-over
  history -> xsync -> live driven by the stimes, plus active/passive.

Every mode ends up in :func:`process_changelogs`: plan (pure pipeline), batch
by ``changelog-batch-size``, dispatch each batch (the dispatcher advances the
stimes), then update the status (checkpoint, throughput). A stop request is
honoured between batches only, so a stime never passes unapplied work.
"""

from __future__ import annotations

from collections import Counter

import logging
import os
import threading
import time
from typing import Any, Callable, Iterable

from ..errors import StreamsyncError
from ..pipeline import batch_plans, plan_changelogs
from ..records import Changelog
from ..stamps import refuse_future

__all__ = ["CrawlFallback", "NoStimeAvailable", "HistoryUnavailable", "PartialHistory",
           "WorkerContext", "process_changelogs", "open_failures", "DISPATCH_MODES", "CrawlResult"]

log = logging.getLogger("streamsync.crawl")

#: our crawl mode -> the dispatcher's (gsyncd's) mode name
DISPATCH_MODES = {"live": "live_changelog", "history": "history_changelog", "xsync": "xsync",
                  "replay": "live_changelog"}


class CrawlFallback(StreamsyncError):
    """A changelog crawl cannot cover the gap: the worker falls back to xsync."""


class NoStimeAvailable(CrawlFallback):
    """No data stime yet (fresh replica): history cannot start."""


class HistoryUnavailable(CrawlFallback):
    """No HTIME file covers the data stime (changelog was off, or purged)."""


class PartialHistory(CrawlFallback):
    """History ends before the worker registered, twice in a row."""

    def __init__(self, actual_end: int, register_time: int) -> None:
        super().__init__(f"history ends at {actual_end}, before registration at {register_time}")
        self.actual_end = actual_end
        self.register_time = register_time


class CrawlResult:
    """Running totals of one crawl (mutable, filled by :func:`process_changelogs`)."""

    __slots__ = ("mode", "batches", "changelogs", "entry_ops", "meta_ops", "data_files",
                 "failures", "entry_failures", "meta_failures", "data_abandoned", "total",
                 "stopped")

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.batches = self.changelogs = self.entry_ops = self.meta_ops = 0
        self.data_files = self.failures = 0
        self.entry_failures = self.meta_failures = self.data_abandoned = 0
        #: journals this crawl knows of so far (done + found), when it counts them
        self.total = 0
        self.stopped = False

    def add(self, r: Any) -> None:
        self.batches += 1
        self.changelogs += r.changelogs
        self.entry_ops += r.entry_ops
        self.meta_ops += r.meta_ops
        self.data_files += r.data_files
        self.entry_failures += r.entry_failures
        self.meta_failures += r.meta_failures
        self.data_abandoned += r.data_abandoned
        self.failures += r.entry_failures + r.meta_failures + r.data_abandoned

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        return f"CrawlResult({self.to_dict()})"


class WorkerContext:
    """What every crawl mode needs, in one place.

    * ``source``: the brick directory; ``changelog_dir``: its journals;
    * ``view``: a source view; ``options``: :class:`~streamsync.options.Options`;
    * ``state``: the state store; ``dispatcher``: a
      :class:`~streamsync.dispatch.Dispatcher` over the replica sinks;
    * ``status``: a :class:`~streamsync.status.WorkerStatus` (optional);
    * ``working_dir``: where xsync journals are written;
    * ``register_time``: when the worker registered (``int(now)`` at start);
    * ``stop``: set to stop between batches; ``clock``/``sleep`` injectable;
    * ``progress(mode, result)``: called after every batch.
    """

    def __init__(self, *, source: str, view: Any, options: Any, state: Any, dispatcher: Any,
                 changelog_dir: str | None = None, working_dir: str | None = None,
                 status: Any = None, register_time: int | None = None,
                 stop: threading.Event | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Any] | None = None,
                 progress: Callable[[str, CrawlResult], Any] | None = None) -> None:
        from ..discover import changelog_dir_of
        self.source = os.path.abspath(os.fspath(source))
        self.view = view
        self.options = options
        self.state = state
        self.dispatcher = dispatcher
        self.changelog_dir = changelog_dir or changelog_dir_of(self.source)
        self.working_dir = working_dir
        self.status = status
        self.clock = clock
        self.register_time = int(clock()) if register_time is None else int(register_time)
        self.stop = stop or threading.Event()
        self._sleep = sleep
        self.progress = progress
        #: called with ``(data stime, last completed journal ts or None)`` after
        #: every root stime update
        self.stime_listeners: list[Callable[[Any, int | None], Any]] = []

    def sleep(self, seconds: float) -> bool:
        """Sleep (interruptible by ``stop``); True when stopped meanwhile."""
        if self._sleep is not None:
            self._sleep(seconds)
            return self.stop.is_set()
        return self.stop.wait(max(0.0, seconds))

    @property
    def checkpoint(self) -> int:
        try:
            return int(self.options.get("checkpoint") or 0)
        except Exception:
            return 0

    def set_crawl_mode(self, mode: str) -> None:
        if self.status is not None:
            self.status.set_crawl_mode(mode)

    def root_stime_updated(self, *, publish: bool = True, done_ts: int | None = None) -> None:
        """After a root stime change: ``last_synced`` + checkpoint rule, and
        (``publish``) the stime listeners (e.g. the cluster stime), told the
        timestamp of the last completed journal when there is one."""
        st = self.state.data_stime()
        if st is None:
            return
        if self.status is not None:
            self.status.set_last_synced(st, checkpoint=self.checkpoint)
        if publish:
            for fn in self.stime_listeners:
                fn(st, done_ts)


def send_held(ctx: WorkerContext, *, idle: bool = True) -> int:
    """Send the hot files the dispatcher holds (:mod:`streamsync.hold`): for a
    turn that found no new journal (``idle``: those that stopped changing), or
    all of them at the end of a one-shot run; then publish the stime they let
    move. Returns how many were sent."""
    send = getattr(ctx.dispatcher, "send_held", None)
    n = int(send(idle=idle)) if send is not None else 0
    if n:
        ctx.root_stime_updated()
    return n


def open_failures(state: Any) -> int:
    """How many items of the failure ledger are open (counted in the store when it can)."""
    count = getattr(state, "count_failures", None)
    return int(count()) if count is not None else len(state.failures())


def process_changelogs(ctx: WorkerContext, changelogs: Iterable[Changelog], *, mode: str,
                       result: CrawlResult | None = None, skip_done: bool = True) -> CrawlResult:
    """Plan, batch and dispatch ``changelogs`` in ``mode`` (``replay``, ``live``,
    ``history``, ``xsync``).

    Changelog modes plan against the stored stimes (skip ``ts < data_stime``,
    gate entry ops up to the entry stime) and skip journals already marked
    done; xsync journals are planned without stimes (their timestamps are the
    crawl's clock) and the dispatcher does not move the stimes for them. A
    changelog stamped in the future of ``ctx.clock`` is refused
    (:func:`~streamsync.stamps.refuse_future`) before anything is applied.
    """
    result = result or CrawlResult(mode)
    state = ctx.state
    changelog_mode = mode != "xsync"
    todo = list(refuse_future(changelogs, now=ctx.clock()) if changelog_mode else changelogs)
    if skip_done and changelog_mode and todo:
        done = state.done_names()
        todo = [c for c in todo if c.name not in done]
    if not todo:
        return result
    ctx.dispatcher.mode = DISPATCH_MODES[mode]
    plans = plan_changelogs(todo, view=ctx.view, options=ctx.options,
                            data_stime=state.data_stime() if changelog_mode else None,
                            entry_stime=state.entry_stime() if changelog_mode else None)
    left = len(todo)
    progress = getattr(ctx.dispatcher, "progress", None)
    if progress is not None:
        progress.journals(left)
    if ctx.status is not None and changelog_mode:
        ctx.status.set_pending(left, todo[0].ts)
    for batch in batch_plans(plans, batch_size=ctx.options.get("changelog-batch-size")):
        r = ctx.dispatcher.run_batch(batch)
        result.add(r)
        left -= r.changelogs
        if ctx.status is not None:
            by_op = Counter(op.op for p in batch.plans for op in p.entry_ops)
            ctx.status.record_batch(changelogs=r.changelogs, first_ts=batch.plans[0].ts,
                                    last_ts=batch.plans[-1].ts, entries=r.entry_ops,
                                    meta=r.meta_ops, data=r.data_files, seconds=r.duration,
                                    by_op=by_op, data_bytes=r.data_bytes)
            ctx.status.set_failures(open_failures(state))
            if changelog_mode:
                ctx.status.set_pending(max(0, left), todo[-max(1, left)].ts if left > 0 else None)
        if changelog_mode:
            ctx.root_stime_updated(done_ts=batch.plans[-1].ts)
        if ctx.progress is not None:
            ctx.progress(mode, result)
        if ctx.stop.is_set():
            result.stopped = True
            break
    else:
        if ctx.status is not None and changelog_mode:
            ctx.status.set_pending(0, None)
    return result
