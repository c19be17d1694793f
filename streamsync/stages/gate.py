"""Stage: gate entry ops of changelogs whose entries were applied before a restart.

The seed compares each changelog's timestamp with the larger of the entry stime
and the data stime (only when both are known): when ``ts <= that[0]`` the
changelog's entry ops are not sent. UNLINK, RMDIR and MKNOD lines are still
read for their data-side effects, and they are still counted, while the other
entry lines are not even counted. Gating therefore only removes entry ops (and
the counters of the skipped entry fops); data and metadata are untouched.

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

__all__ = ["gate_entries", "gate_limit", "is_gated", "GATED_UNCOUNTED"]

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


def gate_entries(plans: Iterable[ChangelogPlan], *,
                 entry_stime: Stime | tuple[int, int] | None,
                 data_stime: Stime | tuple[int, int] | None) -> Iterator[ChangelogPlan]:
    """Drop the entry ops of changelogs already applied before a restart."""
    limit = gate_limit(entry_stime, data_stime)
    for plan in plans:
        if limit is not None and not plan.skipped and plan.changelog.ts <= limit:
            yield plan if plan.entries_gated else gate_plan(plan)
        else:
            yield plan
