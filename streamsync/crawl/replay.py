"""Journal replay: every journal in the changelog directory, from the stimes.

The mode ``streamsync replicate`` picks for one local brick when the journals
are exact (a data stime, or they create every gfid of the brick): each turn
lists the journals present (a brick's ``.glusterfs/changelogs`` or any
directory of journals and archives, ``--changelogs``), drops those done, and
plans the rest against the stored stimes, as a history crawl would. Unlike
the live crawl it reads every kind of journal the directory holds, and it says
when the brick overwrote a journal not yet synced (HTIME lists it twice).

>>> import tempfile
>>> from streamsync.crawl import CrawlResult
>>> ReplayWatch(tempfile.mkdtemp()).pending(done=set())
[]
"""

from __future__ import annotations

import logging
from typing import Any

from ..discover import HtimeWatch, discover
from ..records import Changelog
from . import CrawlResult, process_changelogs, send_held

__all__ = ["ReplayWatch", "replay_turn"]

log = logging.getLogger("streamsync.crawl.replay")


class ReplayWatch:
    """The journals of one changelog directory a replay has not done yet, and
    the warning, once per journal, for a journal the brick wrote twice."""

    def __init__(self, changelog_dir: str) -> None:
        self.changelog_dir = changelog_dir
        self._htime = HtimeWatch(changelog_dir)
        self._warned: set[int] = set()

    def warn_overwritten(self, since: int) -> None:
        """Log the journals at or after ``since`` the brick wrote twice: the
        changes of the first write are in no journal, only a crawl brings them."""
        for ts in self._htime.overwritten(since=since):
            if ts not in self._warned:
                self._warned.add(ts)
                log.warning("%s/CHANGELOG.%d was written twice by the brick (HTIME lists it "
                            "twice): the changes of the first are in no journal; re-crawl with "
                            "'streamsync replicate --mode xsync' to bring them over, and set "
                            "changelog.rollover-time to 2 s or more", self.changelog_dir, ts)

    def pending(self, *, done: Any) -> list[Changelog]:
        """The journals present whose names are not in ``done``, oldest first."""
        return [c for c in discover(self.changelog_dir, allow_empty=True) if c.name not in done]


def replay_turn(ctx: Any, watch: ReplayWatch, result: CrawlResult | None = None) -> CrawlResult:
    """One replay turn over the journals present; ``result.total`` counts the
    journals done so far plus those found now (for progress)."""
    result = result or CrawlResult("replay")
    st = ctx.state.data_stime()
    watch.warn_overwritten(st[0] if st else 0)
    todo = watch.pending(done=ctx.state.done_names())
    result.total = result.changelogs + len(todo)
    if todo:
        process_changelogs(ctx, todo, mode="replay", result=result, skip_done=False)
    else:
        send_held(ctx)
    return result
