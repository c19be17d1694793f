"""Stage: group plans into batches by ``changelog-batch-size``, as the seed does.

Walk the changelogs in order accumulating their byte sizes (the processed
file's size); when adding one would exceed the limit, it starts a new batch. A
single changelog larger than the limit forms its own batch. Batches of
non-skipped changelogs are numbered from 0. Skipped changelogs (already
processed per the data stime) are not batched by the seed: each run of them is
passed on, ahead of the batch being filled, as a :class:`~streamsync.ops.Batch`
with index ``-1`` (nothing to apply; the dispatcher only marks them done). With
timestamp-ordered input they all come first.

>>> from streamsync.records import Changelog
>>> from streamsync.ops import ChangelogPlan
>>> plans = [ChangelogPlan(Changelog(f"C.{i}", i, s)) for i, s in enumerate([4, 4, 3, 9, 1])]
>>> [[p.ts for p in b.plans] for b in batch_plans(plans, batch_size=8)]
[[0, 1], [2], [3], [4]]
"""

from __future__ import annotations

from typing import Iterable, Iterator

from ..ops import Batch, ChangelogPlan

__all__ = ["batch_plans", "batch_sizes"]


def batch_sizes(sizes: Iterable[int], *, batch_size: int) -> Iterator[list[int]]:
    """Indices of ``sizes`` grouped into batches (the seed's rule).

    >>> list(batch_sizes([5, 5, 20, 1], batch_size=10))
    [[0, 1], [2], [3]]
    """
    current: list[int] = []
    total = 0
    for i, size in enumerate(sizes):
        if size + total > batch_size:
            if current:
                yield current
            current = [i]
            total = size
        else:
            total += size
            current.append(i)
    if current:
        yield current


def batch_plans(plans: Iterable[ChangelogPlan], *, batch_size: int) -> Iterator[Batch]:
    """Batches of consecutive plans whose sizes fit ``batch_size``.

    >>> from streamsync.discover import discover
    >>> from streamsync.options import Options
    >>> from streamsync.pipeline import plan_changelogs
    >>> from streamsync.views import MemoryView
    >>> plans = plan_changelogs(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"),
    ...                         view=MemoryView(), options=Options(), data_stime=None,
    ...                         entry_stime=None)
    >>> [(b.index, len(b.plans)) for b in batch_plans(plans, batch_size=2048)][:5]
    [(0, 1), (1, 1), (2, 1), (3, 4), (4, 1)]
    """
    index = 0
    current: list[ChangelogPlan] = []
    skipped: list[ChangelogPlan] = []
    total = 0
    for plan in plans:
        if plan.skipped:
            # the seed sets these aside before batching: they never split a batch
            skipped.append(plan)
            continue
        if skipped:
            yield Batch(-1, tuple(skipped))
            skipped = []
        size = plan.changelog.size
        if size + total > batch_size:
            if current:
                yield Batch(index, tuple(current))
                index += 1
            current = [plan]
            total = size
        else:
            total += size
            current.append(plan)
    if skipped:
        yield Batch(-1, tuple(skipped))
    if current:
        yield Batch(index, tuple(current))
