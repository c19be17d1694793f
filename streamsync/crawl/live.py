"""Live changelog crawl: follow the changelog directory every ``change-interval``.

Each scan lists the journals (:func:`streamsync.discover.discover`), drops the
ones already done, and processes the rest in timestamp order; journals older
than the data stime are marked done without being read (gsyncd's
``skipping already processed change``). Between scans the worker sleeps
``change-interval`` seconds, re-checking its activity (``should_run``) so a
worker that lost its lock stops being active within one interval.

>>> import tempfile
>>> scan_new(tempfile.mkdtemp(), done=set())
[]
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from ..discover import discover
from ..records import Changelog
from . import CrawlResult, process_changelogs

__all__ = ["scan_new", "live_crawl", "live_turn"]

log = logging.getLogger("streamsync.crawl.live")


def scan_new(changelog_dir: str, *, done: Iterable[str]) -> list[Changelog]:
    """Journals of ``changelog_dir`` not in ``done``, in timestamp order (xsync
    journals and archives are not live journals)."""
    done = set(done)
    return [c for c in discover(changelog_dir)
            if c.kind != "xsync" and c.member is None and c.name not in done]


def live_turn(ctx: Any, result: CrawlResult | None = None) -> CrawlResult:
    """One scan-and-process turn."""
    result = result or CrawlResult("live")
    todo = scan_new(ctx.changelog_dir, done=ctx.state.done_names())
    if todo:
        process_changelogs(ctx, todo, mode="live", result=result, skip_done=False)
    return result


def live_crawl(ctx: Any, *, turns: int | None = None,
               should_run: Callable[[], bool] | None = None) -> CrawlResult:
    """Follow the journals until ``ctx.stop`` is set (or ``turns`` scans ran, or
    ``should_run()`` turns false, e.g. the worker became passive)."""
    result = CrawlResult("live")
    ctx.set_crawl_mode("live")
    interval = max(0.0, float(ctx.options.get("change-interval")))
    n = 0
    while not ctx.stop.is_set():
        if should_run is not None and not should_run():
            break
        live_turn(ctx, result)
        n += 1
        if result.stopped or (turns is not None and n >= turns):
            break
        if ctx.sleep(interval):
            result.stopped = True
            break
    return result
