"""Public entry points of the pure pipeline: changelogs in, plans and batches out.

:func:`plan_changelogs` runs skip -> read -> classify -> plan -> gate over
changelog files (raw brick journals or processed text, detected per file) and
yields one :class:`~streamsync.ops.ChangelogPlan` per changelog, lazily;
:func:`batch_plans` groups plans by ``changelog-batch-size`` as the seed does.
Nothing here writes anywhere: what the source looks like comes from a
:class:`~streamsync.views.SourceView`.

The default path is *fused*: one loop per processed changelog that parses,
classifies and plans without building intermediate records or decisions, with
exactly the results of the composed stages (``fused=False``), which remain the
reference. Lookups of each changelog are resolved in bulk and concurrently
through :meth:`SourceView.prefetch` before it is classified.

>>> import os, tempfile
>>> from streamsync.discover import discover
>>> from streamsync.options import Options
>>> from streamsync.views import MemoryView
>>> d = tempfile.mkdtemp()
>>> _ = open(os.path.join(d, "CHANGELOG.1700000015"), "w").write(
...     "E 5b1c2d3e-0000-4000-8000-00000000000a MKDIR 16877 0 0 "
...     "00000000-0000-0000-0000-000000000001/a%20dir\\n")
>>> plans = list(plan_changelogs(discover(d), view=MemoryView(), options=Options(),
...                              data_stime=None, entry_stime=None))
>>> plans[0].entry_ops[0].to_gsyncd()["entry"]
'.gfid/00000000-0000-0000-0000-000000000001/a dir'
>>> [b.index for b in batch_plans(plans, batch_size=727040)]
[0]
"""

from __future__ import annotations

from typing import Iterable, Iterator

from .decode import decode_journal, is_raw_journal
from .discover import read_changelog_bytes
from .ops import ChangelogPlan
from .options import Options
from .parse import parse_processed, render_processed
from .records import Changelog, Record, Stime
from .stages.batch import batch_plans
from .stages.gate import StimeTracker
from .stages.plan import plan_records
from .stages.skip import skip_processed
from .views.base import SourceView

__all__ = ["plan_changelogs", "batch_plans", "load_changelog", "plan_records",
           "plan_processed_text"]


def load_changelog(changelog: Changelog) -> tuple[Changelog, list[Record]]:
    """Read one journal: its records, and the changelog with ``size`` set to the
    byte size of its processed form (a raw journal counts as the size of its
    processed rendering, so raw and processed inputs batch identically).

    >>> from streamsync.discover import discover
    >>> changelog, records = load_changelog(next(discover(
    ...     "tests/data/gluster-10.3/raw/ascii-delpath-on")))
    >>> changelog.name, changelog.size, records
    ('CHANGELOG.1795467001', 48, [MetaRecord(gfid='00000000-0000-0000-0000-000000000001', fop='SETXATTR', stat=None)])
    """
    data = read_changelog_bytes(changelog)
    where = changelog.where
    if is_raw_journal(data):
        records = decode_journal(data, path=where)
        size = len(render_processed(records))
    else:
        records = list(parse_processed(data, path=where))
        size = len(data)
    if size != changelog.size:
        changelog = changelog._replace(size=size)
    return changelog, records


def plan_processed_text(changelog: Changelog, data: bytes, *, view: SourceView,
                        options: Options, gated: bool = False,
                        prefetch: bool = True) -> ChangelogPlan:
    """The plan of one processed changelog's bytes (the fused fast path).

    >>> from streamsync.discover import discover, read_changelog_bytes
    >>> from streamsync.options import Options
    >>> from streamsync.views import MemoryView
    >>> journal = list(discover("tests/data/gluster-10.3/processed/ascii-delpath-on"))[2]
    >>> plan = plan_processed_text(journal, read_changelog_bytes(journal), view=MemoryView(),
    ...                            options=Options())
    >>> journal.name, len(plan.entry_ops), len(plan.data_gfids)
    ('CHANGELOG.1795467011', 16, 11)
    """
    from .stages.fused import fused_plan
    return fused_plan(changelog, data, view=view, options=options, gated=gated,
                      prefetch=prefetch)


def plan_changelogs(changelogs: Iterable[Changelog], *, view: SourceView, options: Options,
                    data_stime: Stime | tuple[int, int] | None,
                    entry_stime: Stime | tuple[int, int] | None,
                    fused: bool = True, prefetch: bool = True) -> Iterator[ChangelogPlan]:
    """One plan per changelog, in order, lazily.

    Changelogs with ``ts < data_stime[0]`` give ``skipped`` plans (not read);
    changelogs with ``ts <= max(entry_stime, data_stime)[0]`` (both known) give
    plans with ``entries_gated`` and no entry ops, the stimes moving as the seed
    moves them while it works (entry stime ``ts - 1`` after sent entry ops, data
    stime ``last ts - 1`` after each ``changelog-batch-size`` batch; see
    :class:`~streamsync.stages.gate.StimeTracker`). ``fused=False`` composes the
    individual stages instead of the fused loop (same results).

    >>> from streamsync.discover import discover
    >>> from streamsync.options import Options
    >>> from streamsync.views import MemoryView
    >>> journals = discover("tests/data/gluster-10.3/raw/ascii-delpath-on")
    >>> plans = plan_changelogs(journals, view=MemoryView(), options=Options(),
    ...                         data_stime=(1795467010, 0), entry_stime=None)
    >>> first, second = next(plans), next(plans)
    >>> first.skipped, second.skipped, second.changelog.name
    (True, True, 'CHANGELOG.1795467006')
    >>> third = next(plans)
    >>> third.skipped, third.entry_ops[0].to_gsyncd()["op"], len(third.data_gfids)
    (False, 'CREATE', 11)
    """
    tracker = StimeTracker(entry_stime=entry_stime, data_stime=data_stime,
                           batch_size=options.changelog_batch_size)
    # the seed applies the hot-tier skip (and entry gating) only in changelog modes
    xsync_options = options.replace(hot_tier=False) if options.hot_tier else options
    changelog_options = options
    for changelog, skipped in skip_processed(changelogs, data_stime=data_stime):
        if skipped:
            yield ChangelogPlan(changelog, skipped=True)
            continue
        options = xsync_options if changelog.kind == "xsync" else changelog_options
        if fused:
            data = read_changelog_bytes(changelog)
            if not is_raw_journal(data):
                if len(data) != changelog.size:
                    changelog = changelog._replace(size=len(data))
                gated = tracker.gated(changelog.ts, changelog.size) and \
                    changelog.kind != "xsync"
                p = plan_processed_text(changelog, data, view=view, options=options,
                                        gated=gated, prefetch=prefetch)
                tracker.done(p.ts, bool(p.entry_ops))
                yield p
                continue
            records = decode_journal(data, path=changelog.where)
            size = len(render_processed(records))
            if size != changelog.size:
                changelog = changelog._replace(size=size)
        else:
            changelog, records = load_changelog(changelog)
        gated = tracker.gated(changelog.ts, changelog.size) and changelog.kind != "xsync"
        p = plan_records(changelog, records, view=view, options=options, gated=gated,
                         prefetch=prefetch)
        tracker.done(p.ts, bool(p.entry_ops))
        yield p
