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
import os
import re
import time
from typing import Any, Callable, Iterable, Iterator

from ..discover import changelog_dir_of, discover
from ..records import Changelog
from ..stamps import check_stamp
from . import CrawlResult, process_changelogs, send_held

__all__ = ["scan_new", "live_crawl", "live_turn"]

log = logging.getLogger("streamsync.crawl.live")


_JOURNAL = re.compile(r"CHANGELOG\.(\d{10})\Z")
_DAY = 86400


def _dated(top: str, floor: tuple[int, int, int]) -> Iterator[tuple[int, str]]:
    """``(ts, path)`` of the journals under ``YYYY/MM/DD`` directories whose date
    is not before ``floor`` (whole subtrees before it are not even listed)."""
    def ls(d: str) -> list[os.DirEntry]:
        try:
            return list(os.scandir(d))
        except OSError:
            return []

    for y in ls(top):
        if not (y.is_dir(follow_symlinks=False) and y.name.isdigit() and len(y.name) == 4):
            continue
        if int(y.name) < floor[0]:
            continue
        for m in ls(y.path):
            if not (m.is_dir(follow_symlinks=False) and m.name.isdigit()):
                continue
            if (int(y.name), int(m.name)) < floor[:2]:
                continue
            for d in ls(m.path):
                if not (d.is_dir(follow_symlinks=False) and d.name.isdigit()):
                    continue
                if (int(y.name), int(m.name), int(d.name)) < floor:
                    continue
                for f in ls(d.path):
                    hit = _JOURNAL.match(f.name)
                    if hit and f.is_file(follow_symlinks=False):
                        yield int(hit[1]), f.path


def scan_new(changelog_dir: str, *, done: Iterable[str] | Callable[[str], bool],
             since: int | None = None) -> list[Changelog]:
    """Journals of ``changelog_dir`` not done yet, in timestamp order (xsync
    journals and archives are not live journals).

    ``done`` is a set of names or an ``is_done(name)`` predicate. With ``since``
    (the data stime), dated ``YYYY/MM/DD`` directories more than two days older
    are not listed at all, so a turn costs the same after months of journals.
    """
    is_done = done if callable(done) else set(done).__contains__
    if since is None:
        found = [c for c in discover(changelog_dir, allow_empty=True) if c.kind != "xsync" and c.member is None]
    else:
        cdir = changelog_dir_of(changelog_dir)
        t = time.gmtime(max(0, since - 2 * _DAY))  # margin for local-time directory names
        pairs: list[tuple[int, str]] = []
        try:
            for e in os.scandir(cdir):
                hit = _JOURNAL.match(e.name)
                if hit and e.is_file(follow_symlinks=False):
                    pairs.append((int(hit[1]), e.path))
        except OSError as exc:
            from ..errors import SourceError
            raise SourceError(f"{cdir}: cannot list directory: {exc}") from None
        pairs += _dated(cdir, (t.tm_year, t.tm_mon, t.tm_mday))
        pairs.sort()
        found = [Changelog(p, check_stamp(p, ts), os.stat(p).st_size, "live") for ts, p in pairs]
    return [c for c in found if not is_done(c.name)]


def live_turn(ctx: Any, result: CrawlResult | None = None) -> CrawlResult:
    """One scan-and-process turn."""
    result = result or CrawlResult("live")
    st = ctx.state.data_stime()
    todo = scan_new(ctx.changelog_dir, done=ctx.state.is_done,
                    since=None if st is None or st[0] < 0 else st[0])
    if todo:
        process_changelogs(ctx, todo, mode="live", result=result, skip_done=False)
    else:
        send_held(ctx)
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
