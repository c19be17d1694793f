"""Run the analysis over many journals with Dask (optional extra ``streamsync[dask]``).

Two ways, both equal to the single-process result exactly:

* :func:`report_dask`, the fast one: the report ``streamsync analyze`` prints.
  The gfids are sharded, one shard per worker
  (:func:`~streamsync.analysis.shard.summarize_shard`): every worker reads
  every journal but builds records and state only for its own gfids, so no
  per-gfid state ever travels; the workers exchange only the renames onto
  each name and send back a few counts, top lists and the names to show
  (:mod:`streamsync.analysis.report`).
* :func:`summarize_dask`: the :class:`~streamsync.analysis.summary.Summary`
  itself (to save or merge with others). The journals are spread over a
  ``dask.bag``, each partition summarised on a worker, the partition summaries
  merged on the client: their per-gfid maps travel and are merged in one
  place, which costs more than it saves on a few cores.

>>> s = summarize_dask(["tests/data/gluster-10.3/processed/ascii-delpath-on"],
...                    npartitions=3, scheduler="sync")
>>> s.records
4472
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable, Sequence

from ..records import Changelog, Stime
from .resolve import Resolver
from .summary import Summary, SummaryBuilder, merge_all
from .tally import ShardTicker

__all__ = ["report_dask", "summarize_dask", "journal_bag", "summarize_partition"]


def _require_dask(module: str = "dask.bag"):
    """``module`` of Dask (only what a caller uses: each import costs start-up time)."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("the Dask adapter needs dask[bag]: pip install 'streamsync[dask]'") from None


def summarize_partition(changelogs: Iterable[Changelog], *, bucket: int | str = 3600,
                        data_stime: Stime | int | None = None,
                        progress: Callable[[Changelog], None] | None = None) -> list[Summary]:
    """Summarise one partition of journals (runs on a worker); a one-element list
    (``progress`` is called after each journal).

    >>> from streamsync.discover import discover
    >>> summarize_partition(list(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))[:3])
    [Summary(3 changelogs, 60 records, 45 gfids, ts 1795467001..1795467011, bucket=3600s)]
    """
    from ._input import read_records
    b = SummaryBuilder(bucket=bucket, data_stime=data_stime)
    for c in changelogs:
        b.add_changelog(c, read_records(c))
        if progress is not None:
            progress(c)
    return [b.freeze()]


def _partition_task(changelogs: Iterable[Changelog], bucket: int | str,
                    data_stime: Stime | int | None, ticker: ShardTicker) -> list[Summary]:
    """:func:`summarize_partition`, counting its journals with ``ticker``."""
    try:
        return summarize_partition(changelogs, bucket=bucket, data_stime=data_stime,
                                   progress=ticker)
    finally:
        ticker.done()


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
                   scheduler: Any = None,
                   progress: Callable[[int], None] | None = None) -> Summary:
    """The :class:`Summary` of every journal under ``paths``, computed on Dask.

    ``scheduler`` is passed to ``compute`` (``"sync"``, ``"threads"``,
    ``"processes"`` or a ``distributed.Client``); ``None`` uses Dask's default
    (a ``distributed.Client`` when one is active). ``progress(journals)``: as
    in :func:`report_dask`, the journals summarised so far.

    >>> from streamsync.analysis.summary import summarize_paths
    >>> corpus = "tests/data/gluster-10.3/raw/ascii-delpath-on"
    >>> s = summarize_dask([corpus], scheduler="sync", npartitions=4)
    >>> s == summarize_paths(corpus), s.changelogs
    (True, 34)
    """
    bag = journal_bag(paths, npartitions=npartitions, partition_size=partition_size)
    if progress is None:
        parts = bag.map_partitions(summarize_partition, bucket=bucket, data_stime=data_stime)
        summaries = parts.compute(**_compute_kw(scheduler))
    else:
        import dask
        from dask import delayed

        from .tally import watching
        partitions = bag.to_delayed()
        with watching(len(partitions), progress, combine=sum) as tally:
            done = dask.compute(*(
                delayed(_partition_task, pure=False)(part, bucket, data_stime,
                                                     ShardTicker(tally, k))
                for k, part in enumerate(partitions)), **_compute_kw(scheduler))
        summaries = [s for one in done for s in one]
    return merge_all(summaries, bucket=bucket, data_stime=data_stime)


def _compute_kw(scheduler: Any) -> dict[str, Any]:
    if scheduler is None:
        return {}
    if scheduler in ("processes", "multiprocessing"):
        # the process pool otherwise sends tasks in batches of 6: a few big tasks would
        # run one after the other in one process. Its function, not its name: for a
        # name Dask imports dask.distributed to look for a client (0.2 s of start-up).
        from dask.multiprocessing import get
        return {"scheduler": get, "chunksize": 1}
    if isinstance(scheduler, str):
        return {"scheduler": scheduler}
    return {"scheduler": getattr(scheduler, "get", scheduler)}


def _report_scheduler(scheduler: Any) -> Any:
    """The scheduler :func:`report_dask` runs on: the one given, else the one Dask is
    configured with (``dask.config.set(scheduler=...)``), else the active
    ``distributed`` client, else the process pool (threads would only take turns
    at the interpreter)."""
    if scheduler is not None:
        return scheduler
    import dask
    configured = dask.config.get("scheduler", None)
    if configured is not None and configured not in ("dask.distributed", "distributed"):
        return configured  # a client sets "dask.distributed": it is found next
    fallback = "processes" if configured is None else configured
    if "distributed" not in sys.modules:
        return fallback  # no client without it (and importing it costs 0.2 s)
    try:
        from distributed import default_client
        return default_client()
    except ValueError:
        return fallback


def _workers(scheduler: Any) -> int:
    """How many tasks can run at once: a client's worker threads, the cores for the
    process pool, 1 for the in-process schedulers."""
    nthreads = getattr(scheduler, "nthreads", None)
    if callable(nthreads):
        return max(1, sum(nthreads().values()))
    if scheduler in ("processes", "multiprocessing"):
        return os.cpu_count() or 1
    return 1


class _Journals:
    """Journals a task carries along (each task its own copy, a few hundred bytes a
    journal): in a list, Dask would look into every journal for tasks, and a list
    shared as a task of its own must be fetched from a worker busy computing."""

    __slots__ = ("journals",)

    def __init__(self, journals: list[Changelog]) -> None:
        self.journals = journals

    def __iter__(self):
        return iter(self.journals)


def _shard_task(journals, shard: int, shards: int, top: int, bucket: int | str,
                data_stime: Stime | int | None, brick: str | None, ticker=None):
    """One shard, whole: read every journal, keep the shard's gfids, return its share of
    the report (and of the transfer estimate). Nothing but that small share leaves
    (``ticker``: a :class:`~streamsync.analysis.tally.ShardTicker` counting journals)."""
    from ..errors import JournalError, ParseError
    from .report import shard_part
    from .shard import read_shard
    try:
        read = read_shard(journals, shard, shards, bucket=bucket, data_stime=data_stime,
                          progress=ticker)
    except (JournalError, ParseError) as exc:  # returned: the earliest of all is raised
        return exc, None
    finally:
        if ticker is not None:
            ticker.done()
    part = shard_part(read.summary, read.onto, top, parents=read.parents)
    if brick is None:
        return part, None
    if not os.path.isdir(brick):  # else every written file would count as gone
        from ..errors import SourceError
        raise SourceError(f"{brick}: no such brick on the Dask worker (the workers must "
                          f"see the brick at the same path)")
    from ..views import BrickView
    return part, read.summary.transfer_estimate(BrickView(brick))


def _compute(dask, journals: list[Changelog], n: int, top: int, bucket: int | str,
             data_stime: Stime | int | None, where: str | None, scheduler: Any,
             tally: str | None) -> tuple:
    """Every shard's ``(part, transfer estimate)``, in shard order."""
    from dask import delayed
    tasks = [delayed(_shard_task, pure=False)(
        _Journals(journals), k, n, top, bucket, data_stime, where,
        None if tally is None else ShardTicker(tally, k)) for k in range(n)]
    return dask.compute(*tasks, **_compute_kw(scheduler))


def report_dask(paths: Iterable[str | os.PathLike] | Sequence[Changelog], *, top: int = 20,
                bucket: int | str = 3600, data_stime: Stime | int | None = None,
                shards: int | None = None, scheduler: Any = None,
                brick: str | os.PathLike | None = None,
                progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The report of every journal under ``paths`` (:meth:`Summary.to_dict`, paths
    resolved, plus ``"transfer"`` with a ``brick``), each gfid's state on one worker.

    ``scheduler``: as in :func:`summarize_dask`, but by default (``None``) the one
    Dask is configured with, else the active ``distributed`` client, else the
    process pool (in a script, call it under ``if __name__ == "__main__":``).
    ``shards``: gfid shards, one task each (default: as many as the scheduler
    runs at once). Each shard's task reads every journal but builds records
    only for its gfids (:func:`~streamsync.analysis.shard.read_shard`) and
    returns only its share of the report (:mod:`streamsync.analysis.report`):
    no per-gfid state travels, so any scheduler will do, ``processes``
    included. Reading is repeated by every task, so more shards than cores
    only cost. With a ``brick``, the workers must see it at the same path.
    ``progress(journals)`` is called on a thread of this process, a few times
    a second, with the number of journals every shard has read (the shards
    count them into a small file, :mod:`streamsync.analysis.tally`: workers on
    other hosts are not counted); start a pool of forked workers before.

    >>> from streamsync.analysis.summary import summarize_paths
    >>> corpus = "tests/data/gluster-10.3/raw/ascii-delpath-on"
    >>> r = report_dask([corpus], scheduler="sync", shards=3, top=5)
    >>> s = summarize_paths(corpus)
    >>> r == s.to_dict(top=5, paths=Resolver.from_summary(s).path)
    True
    """
    dask = _require_dask("dask")

    from ._input import iter_journals, path_list
    from .report import assemble
    from .shard import earliest_error
    if isinstance(paths, (str, bytes, os.PathLike)) or not all(
            isinstance(c, Changelog) for c in paths):
        journals = list(iter_journals(path_list(paths)))  # type: ignore[arg-type]
    else:
        journals = list(paths)
    scheduler = _report_scheduler(scheduler)
    n = shards or _workers(scheduler)
    if n < 1:
        raise ValueError(f"shards must be at least 1, not {n}")
    where = None if brick is None else os.path.abspath(os.fspath(brick))
    if progress is None:
        done = _compute(dask, journals, n, top, bucket, data_stime, where, scheduler, None)
    else:
        from .tally import watching
        with watching(n, progress) as tally:
            done = _compute(dask, journals, n, top, bucket, data_stime, where, scheduler,
                            tally)
    failed = [part for part, _ in done if isinstance(part, Exception)]
    if failed:
        raise earliest_error(failed, journals)
    parts = [part for part, _ in done]
    names: dict[str, tuple[int, int, str, str]] = {}
    for part in parts:
        names.update(part.names)
    out = assemble(parts, top, Resolver.from_names(names, brick=where).path)
    if where is not None:
        estimates = [t for _, t in done]
        out["transfer"] = {key: sum(t[key] for t in estimates) for key in estimates[0]}
    return out
