"""History crawl: the journals from the data stime to "now", through the HTIME index.

gsyncd's rules (spec sections 2.7 and 3.1), on top of
:func:`streamsync.discover.history` (HTIME file choice, binary search of the
range, lower-case ``changelog.<ts>`` rollovers skipped):

* no data stime -> :class:`~streamsync.crawl.NoStimeAvailable` (xsync instead);
* no HTIME file covers the stime -> :class:`~streamsync.crawl.HistoryUnavailable`;
* the range is processed (skip ``ts < data_stime``, entry gating, batches);
* if history ended before the worker registered, the first turn sleeps
  ``15 - elapsed`` seconds (at least 1) and asks again; the second turn raises
  :class:`~streamsync.crawl.PartialHistory` (xsync covers the gap).

>>> from streamsync.discover import HISTORY_UNAVAILABLE
>>> history_range("/nonexistent", 1700000000, 1700000100).status == HISTORY_UNAVAILABLE
True
"""

from __future__ import annotations

import logging
from typing import Any

from ..discover import HISTORY_UNAVAILABLE, HistoryRange, history
from ..records import MINUS_INFINITY
from . import CrawlResult, HistoryUnavailable, NoStimeAvailable, PartialHistory, \
    process_changelogs

__all__ = ["history_range", "history_crawl", "CHANGELOG_ROLLOVER_TIME"]

log = logging.getLogger("streamsync.crawl.history")

#: gsyncd's ``CHANGELOG_ROLLOVER_TIME``: the wait before the second history turn
CHANGELOG_ROLLOVER_TIME = 15


def history_range(changelog_dir: str, start: int, end: int) -> HistoryRange:
    """The journals of ``[start, end]`` per the HTIME index (see :func:`discover.history`)."""
    return history(changelog_dir, start, end)


def history_crawl(ctx: Any, *, max_turns: int = 2) -> CrawlResult:
    """Run gsyncd's history crawl for ``ctx`` (a :class:`~streamsync.crawl.WorkerContext`).

    Returns the totals when history reached the registration time; raises a
    :class:`~streamsync.crawl.CrawlFallback` subclass when xsync must take over.
    """
    result = CrawlResult("history")
    ctx.set_crawl_mode("history")
    turn = 0
    turn_start = ctx.register_time
    while True:
        turn += 1
        data_stime = ctx.state.data_stime()
        end = int(ctx.clock())
        log.info("starting history crawl [{turns=%d}, {stime=%s}, {etime=%d}, "
                 "{entry_stime=%s}]", turn, data_stime, end, ctx.state.entry_stime())
        if data_stime is None or data_stime == MINUS_INFINITY:
            raise NoStimeAvailable("no data stime: a first sync needs the hybrid crawl")
        hr = history_range(ctx.changelog_dir, data_stime[0], end)
        if hr.status == HISTORY_UNAVAILABLE:
            raise HistoryUnavailable(f"{ctx.changelog_dir}: no HTIME index covers "
                                     f"stime {data_stime[0]}")
        process_changelogs(ctx, hr.changelogs, mode="history", result=result)
        if result.stopped:
            return result
        log.info("finished history crawl [{endtime=%d}, {stime=%s}, {entry_stime=%s}]",
                 hr.actual_end, ctx.state.data_stime(), ctx.state.entry_stime())
        if hr.actual_end >= ctx.register_time:
            return result
        if turn >= max_turns:
            raise PartialHistory(hr.actual_end, ctx.register_time)
        elapsed = int(ctx.clock()) - turn_start
        wait = max(1, CHANGELOG_ROLLOVER_TIME - elapsed)
        if ctx.sleep(wait):
            result.stopped = True
            return result
        turn_start = int(ctx.clock())
