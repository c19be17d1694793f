"""Stage: gate entry ops of changelogs whose entries were applied before a restart.

The seed compares each changelog's timestamp with the larger of the entry stime
and the data stime (only when both are known): when ``ts <= that[0]`` the
changelog's entry ops are not sent. UNLINK, RMDIR and MKNOD lines are still
read for their data-side effects, and they are still counted, while the other
entry lines are not even counted. Gating therefore only removes entry ops (and
the counters of the skipped entry fops); data and metadata are untouched.

Both stimes move while the seed works, and gating reads them afresh for every
changelog: the entry stime becomes ``ts - 1`` after a changelog whose entry ops
were sent, and the data stime becomes ``last ts - 1`` after each batch. With
timestamps increasing this matters in one case: an entry stime known while the
data stime is not yet; once the first batch completes the data stime is known
and later changelogs up to the entry stime are gated, unless entry ops were sent
before. :class:`StimeTracker` follows those updates; pass ``batch_size`` to
:func:`gate_entries` to follow the data stime too.

>>> from streamsync.records import Changelog, Stime
>>> from streamsync.ops import ChangelogPlan
>>> plans = [ChangelogPlan(Changelog(f"CHANGELOG.{t}", t, 1))
...          for t in (1700000014, 1700000029, 1700000030)]
>>> [p.entries_gated for p in gate_entries(plans, entry_stime=Stime(1700000029),
...                                        data_stime=Stime(1700000014))]
[True, True, False]
"""

from __future__ import annotations

from typing import Iterable, Iterator

from ..ops import ChangelogPlan
from ..records import Stime

__all__ = ["gate_entries", "gate_limit", "is_gated", "gate_plan", "StimeTracker",
           "GATED_UNCOUNTED"]

#: entry fops the seed neither processes nor counts in a gated changelog
GATED_UNCOUNTED = frozenset({"CREATE", "MKDIR", "LINK", "SYMLINK", "RENAME"})


def gate_limit(entry_stime: Stime | tuple[int, int] | None,
               data_stime: Stime | tuple[int, int] | None) -> int | None:
    """Seconds up to which entry ops are gated, or ``None`` (no gating).

    >>> gate_limit((10, 0), (12, 0)), gate_limit((10, 0), None)
    (12, None)
    """
    if entry_stime is None or data_stime is None:
        return None
    return data_stime[0] if data_stime[0] > entry_stime[0] else entry_stime[0]


def is_gated(ts: int, entry_stime: Stime | tuple[int, int] | None,
             data_stime: Stime | tuple[int, int] | None) -> bool:
    """``ts <= max(entry_stime, data_stime)[0]`` when both are known."""
    limit = gate_limit(entry_stime, data_stime)
    return limit is not None and ts <= limit


def gate_plan(plan: ChangelogPlan) -> ChangelogPlan:
    """The plan with its entry ops gated off (counters of unprocessed fops zeroed)."""
    stats = tuple((k, 0 if k in GATED_UNCOUNTED else v) for k, v in plan.stats)
    return plan._replace(entries_gated=True, entry_ops=(), stats=stats)


class StimeTracker:
    """The entry and data stimes as the seed updates them while it works.

    Call :meth:`gated` then :meth:`done` for each non-skipped changelog in order.

    >>> t = StimeTracker(entry_stime=(150, 0), data_stime=None, batch_size=10)
    >>> t.gated(100, 6); t.done(100, sent_entries=False)
    False
    >>> t.gated(120, 6)      # a new batch: the data stime became (99, 0)
    True
    """

    __slots__ = ("entry", "data", "batch_size", "total", "last_ts")

    def __init__(self, *, entry_stime: Stime | tuple[int, int] | None,
                 data_stime: Stime | tuple[int, int] | None,
                 batch_size: int | None = None) -> None:
        self.entry = None if entry_stime is None else entry_stime[0]
        self.data = None if data_stime is None else data_stime[0]
        self.batch_size = batch_size
        self.total: int | None = None
        self.last_ts: int | None = None

    def gated(self, ts: int, size: int = 0) -> bool:
        """Whether this changelog's entry ops are gated (and account its batch)."""
        limit = self.batch_size
        if limit is not None:
            if self.total is None:
                self.total = size
            elif size + self.total > limit:
                if self.last_ts is not None:   # the previous batch completed
                    self.data = self.last_ts - 1
                self.total = size
            else:
                self.total += size
        entry, data = self.entry, self.data
        if entry is None or data is None:
            return False
        return ts <= (data if data > entry else entry)

    def done(self, ts: int, sent_entries: bool) -> None:
        """Record that the changelog was processed (entry ops sent or not)."""
        if sent_entries:
            self.entry = ts - 1
        self.last_ts = ts


def gate_entries(plans: Iterable[ChangelogPlan], *,
                 entry_stime: Stime | tuple[int, int] | None,
                 data_stime: Stime | tuple[int, int] | None,
                 batch_size: int | None = None) -> Iterator[ChangelogPlan]:
    """Drop the entry ops of changelogs already applied before a restart.

    Plans come in order, ungated; skipped plans pass unchanged. Without
    ``batch_size`` the data stime stays as given (the entry stime still
    follows sent entry ops).
    """
    tracker = StimeTracker(entry_stime=entry_stime, data_stime=data_stime,
                           batch_size=batch_size)
    for plan in plans:
        if plan.skipped:
            yield plan
            continue
        by_stime = tracker.gated(plan.changelog.ts, plan.changelog.size)
        gated = plan.entries_gated or by_stime
        if gated and not plan.entries_gated:
            plan = gate_plan(plan)
        tracker.done(plan.changelog.ts, bool(plan.entry_ops) and not gated)
        yield plan
