"""Run the analysis over many journals with Dask (optional extra ``streamsync[dask]``).

The journals are listed once (:func:`streamsync.discover.discover`), spread over
a ``dask.bag``; each partition is summarised on a worker with the very same
:class:`~streamsync.analysis.summary.SummaryBuilder` the single-process path
uses, and the per-partition summaries are merged. Because summaries are a
commutative monoid the result equals the single-process result exactly,
whatever the partitioning or scheduler (threads, processes, ``distributed``).

>>> s = summarize_dask(["tests/data/gluster-10.3/processed/ascii-delpath-on"],
...                    npartitions=3, scheduler="sync")
>>> s.records
4472
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

from ..records import Changelog, Stime
from .summary import Summary, SummaryBuilder, merge_all

__all__ = ["summarize_dask", "journal_bag", "summarize_partition"]


def _require_dask():
    try:
        import dask.bag as db
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("the Dask adapter needs dask[bag]: pip install 'streamsync[dask]'") from None
    return db


def summarize_partition(changelogs: Iterable[Changelog], *, bucket: int | str = 3600,
                        data_stime: Stime | int | None = None) -> list[Summary]:
    """Summarise one partition of journals (runs on a worker); a one-element list.

    >>> from streamsync.discover import discover
    >>> summarize_partition(list(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))[:3])
    [Summary(3 changelogs, 60 records, 45 gfids, ts 1795467001..1795467011, bucket=3600s)]
    """
    from ._input import read_records
    b = SummaryBuilder(bucket=bucket, data_stime=data_stime)
    for c in changelogs:
        b.add_changelog(c, read_records(c))
    return [b.freeze()]


def journal_bag(paths: Iterable[str | os.PathLike] | Sequence[Changelog], *,
                npartitions: int | None = None, partition_size: int | None = None):
    """A ``dask.bag`` of :class:`~streamsync.records.Changelog` values (journals listed here).

    >>> bag = journal_bag(["tests/data/gluster-10.3/raw/ascii-delpath-on"], npartitions=4)
    >>> bag.npartitions, bag.count().compute(scheduler="sync")
    (4, 34)
    """
    db = _require_dask()
    from ._input import path_list
    items = path_list(paths) if isinstance(paths, (str, bytes, os.PathLike)) else list(paths)
    if not items or not all(isinstance(c, Changelog) for c in items):
        from ._input import iter_journals
        items = list(iter_journals(items))
    if not items:
        return db.from_sequence([], npartitions=1)
    if partition_size is not None:
        return db.from_sequence(items, partition_size=partition_size)
    n = npartitions or min(len(items), max(1, (os.cpu_count() or 1) * 4))
    return db.from_sequence(items, npartitions=min(n, len(items)))


def summarize_dask(paths: Iterable[str | os.PathLike] | Sequence[Changelog], *,
                   bucket: int | str = 3600, data_stime: Stime | int | None = None,
                   npartitions: int | None = None, partition_size: int | None = None,
                   scheduler: Any = None) -> Summary:
    """The :class:`Summary` of every journal under ``paths``, computed on Dask.

    ``scheduler`` is passed to ``compute`` (``"sync"``, ``"threads"``,
    ``"processes"`` or a ``distributed.Client``); ``None`` uses Dask's default
    (a ``distributed.Client`` when one is active).

    >>> from streamsync.analysis.summary import summarize_paths
    >>> corpus = "tests/data/gluster-10.3/raw/ascii-delpath-on"
    >>> s = summarize_dask([corpus], scheduler="sync", npartitions=4)
    >>> s == summarize_paths(corpus), s.changelogs
    (True, 34)
    """
    bag = journal_bag(paths, npartitions=npartitions, partition_size=partition_size)
    parts = bag.map_partitions(summarize_partition, bucket=bucket, data_stime=data_stime)
    kw = {}
    if scheduler is not None:
        if isinstance(scheduler, str):
            kw["scheduler"] = scheduler
        else:
            kw["scheduler"] = getattr(scheduler, "get", scheduler)
    summaries = parts.compute(**kw)
    return merge_all(summaries, bucket=bucket, data_stime=data_stime)
