"""Stage: fold a changelog's decisions into a :class:`~streamsync.ops.ChangelogPlan`.

Per changelog, as the seed does: entry ops keep journal order; data and
metadata are sets (a gfid queued twice is sent once; ``UNDATA`` removes a gfid
queued earlier in the same changelog); the fop counters start at zero for the
seed's fixed set of names, and ``DATA`` is the seed's formula: the number of
data items minus the SETXATTR and XATTROP counts.

>>> from streamsync.records import Changelog
>>> from streamsync.stages.classify import DATA, UNDATA, COUNT
>>> p = fold_plan(Changelog("CHANGELOG.5", 5, 10),
...               [(DATA, "b"), (DATA, "a"), (DATA, "b"), (UNDATA, "b"), (COUNT, "UNLINK")])
>>> p.data_gfids, p.stats_dict["UNLINK"], p.stats_dict["DATA"]
(('a',), 1, 1)
"""

from __future__ import annotations

from typing import Iterable, Iterator

from ..ops import ChangelogPlan, EntryOp
from ..options import Options
from ..records import Changelog, Record
from ..views.base import SourceView
from .classify import COUNT, DATA, ENTRY, META, UNDATA, Decision, classify
from .gate import gate_plan

__all__ = ["fold_plan", "plan", "plan_records", "finish_stats", "STAT_NAMES"]

#: the counters the seed initialises for every batch, in its order
STAT_NAMES = ("CREATE", "MKNOD", "UNLINK", "MKDIR", "RMDIR", "LINK", "SYMLINK", "RENAME",
              "SETATTR", "SETXATTR", "XATTROP", "DATA")


def finish_stats(counts: dict[str, int], n_data: int) -> tuple[tuple[str, int], ...]:
    """Sorted ``(name, count)`` pairs: the fixed names (0 when unseen), extra
    fops seen, and ``DATA = n_data - SETXATTR - XATTROP``."""
    out = dict.fromkeys(STAT_NAMES, 0)
    out.update(counts)
    out["DATA"] = n_data - out["SETXATTR"] - out["XATTROP"]
    return tuple(sorted(out.items()))


def fold_plan(changelog: Changelog, decisions: Iterable[Decision]) -> ChangelogPlan:
    """One changelog's plan from its decisions."""
    entries: list[EntryOp] = []
    datas: set[str] = set()
    metas: set[str] = set()
    counts: dict[str, int] = {}
    for kind, value in decisions:
        if kind == DATA:
            datas.add(value)
        elif kind == COUNT:
            counts[value] = counts.get(value, 0) + 1
        elif kind == ENTRY:
            entries.append(value)
        elif kind == META:
            metas.add(value)
        elif kind == UNDATA:
            datas.discard(value)
    return ChangelogPlan(changelog, False, False, tuple(entries), tuple(sorted(metas)),
                         tuple(sorted(datas)), finish_stats(counts, len(datas)))


def plan(items: Iterable[tuple[Changelog, Iterable[Decision]]]) -> Iterator[ChangelogPlan]:
    """Stage: ``(changelog, decisions)`` -> :class:`~streamsync.ops.ChangelogPlan`."""
    for changelog, decisions in items:
        yield fold_plan(changelog, decisions)


def plan_records(changelog: Changelog, records: Iterable[Record], *, view: SourceView,
                 options: Options, gated: bool = False, prefetch: bool = True
                 ) -> ChangelogPlan:
    """The plan of one changelog from its records (composed stages).

    >>> from streamsync.discover import discover
    >>> from streamsync.options import Options
    >>> from streamsync.pipeline import load_changelog
    >>> from streamsync.views import MemoryView
    >>> journal = list(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))[2]
    >>> plan = plan_records(*load_changelog(journal), view=MemoryView(), options=Options())
    >>> len(plan.entry_ops), plan.entry_ops[0].op, len(plan.data_gfids)
    (16, 'CREATE', 11)
    """
    (cl, decisions), = classify([(changelog, records)], view=view, options=options,
                                prefetch=prefetch)
    p = fold_plan(cl, decisions)
    return gate_plan(p) if gated else p
