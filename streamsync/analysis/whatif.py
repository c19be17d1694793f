"""What-if replay: run the real planner and dispatcher over archived journals
against a recording sink and a cost model, to compare settings.

Nothing is written anywhere: entry and meta ops go to a
:class:`~streamsync.sinks.recording.RecordingSink`, data transfers to a
:class:`CostEngine` that only prices them, state to an in-memory SQLite.
The journals are planned by :func:`streamsync.pipeline.plan_changelogs`,
batched by :func:`streamsync.pipeline.batch_plans` and driven through
:class:`streamsync.dispatch.Dispatcher` exactly as a replication would, so the
counts (ops, transfers, files, bytes) are what a replication would do; only the
*time* is modelled.

The time model (:class:`CostModel`, every figure in seconds, adjustable):

* the dispatcher's thread runs entry ops (one round trip per changelog's batch
  of ops plus a per-op cost), source lookups (``lstat`` of meta gfids and of
  failed transfers) and meta ops, one changelog after the other;
* each changelog's data is released when the dispatcher queues it; transfers
  run on ``sync-jobs`` workers (list scheduling in release order); an rsync
  transfer costs ``rsync_startup + rsync_per_file * files + rsync_per_byte *
  bytes`` (tar: the ``tar_*`` figures);
* a batch ends when its last transfer ends, plus ``batch_overhead`` (stime and
  status update); the next batch starts after it (gsyncd waits for the data).

>>> from streamsync.options import Options
>>> r = replay(["tests/data/gluster-10.3/processed/ascii-delpath-on"],
...            view=None, options=Options())
>>> r.changelogs, r.batches, r.files_sent > 1900
(34, 1, True)
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from ..options import Options
from ..records import Changelog, Stime
from ..views.base import CountingView

__all__ = ["CostModel", "CostEngine", "WhatIfResult", "replay", "compare", "JournalView"]


class CostModel(NamedTuple):
    """Latencies and throughputs of the modelled deployment (seconds, bytes)."""

    rpc_latency: float = 0.002       # one round trip to the replica (per entry/meta call)
    entry_op: float = 0.0006         # per entry op applied on the replica
    meta_op: float = 0.0002          # per chown/chmod/utime on the replica
    lookup: float = 0.0005           # per source lookup (lstat over the aux-gfid mount)
    lookup_concurrency: int = 16     # planner lookups run on the prefetch pool
    rsync_startup: float = 0.05      # fork + ssh + file-list exchange, per transfer
    rsync_per_file: float = 0.0008
    rsync_per_byte: float = 1 / 100e6
    tar_startup: float = 0.08
    tar_per_file: float = 0.0003
    tar_per_byte: float = 1 / 120e6
    batch_overhead: float = 0.01     # stime/status updates per batch
    default_file_size: int = 4096    # when the view cannot tell a file's size

    def transfer_seconds(self, method: str, files: int, nbytes: int) -> float:
        """Modelled duration of one transfer of ``files`` files, ``nbytes`` bytes."""
        if method == "tarssh":
            return self.tar_startup + self.tar_per_file * files + self.tar_per_byte * nbytes
        return self.rsync_startup + self.rsync_per_file * files + self.rsync_per_byte * nbytes


class _Clock:
    """The dispatcher thread's simulated time."""

    def __init__(self) -> None:
        self.now = 0.0


def _priced_view(base: Any, *, clock: _Clock | None = None, cost: float = 0.0) -> CountingView:
    """Wraps a source view: counts lookups; optionally advances a clock per lookup."""
    def advance() -> None:
        if clock is not None:
            clock.now += cost
    return CountingView(base, on_lookup=advance)


class _PricedSink:
    """A recording sink whose calls advance the dispatcher clock."""

    def __init__(self, clock: _Clock, model: CostModel) -> None:
        from ..sinks.recording import RecordingSink
        self.inner = RecordingSink()
        self.clock = clock
        self.model = model
        self.entry_calls = self.entry_ops = self.meta_calls = self.meta_ops = 0
        self.entry_seconds = self.meta_seconds = 0.0

    def apply_entries(self, ops, *, waiting=()):
        ops = tuple(ops)
        cost = self.model.rpc_latency + self.model.entry_op * len(ops)
        self.clock.now += cost
        self.entry_seconds += cost
        self.entry_calls += 1
        self.entry_ops += len(ops)
        return self.inner.apply_entries(ops, waiting=waiting)

    def apply_meta(self, ops):
        ops = tuple(ops)
        cost = self.model.rpc_latency + self.model.meta_op * len(ops)
        self.clock.now += cost
        self.meta_seconds += cost
        self.meta_calls += 1
        self.meta_ops += len(ops)
        return self.inner.apply_meta(ops)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class CostEngine:
    """A data engine that prices transfers instead of running them.

    ``size_of(gfid)`` gives a file's size in bytes. Every transfer is kept in
    :attr:`transfers` as ``(gfids, bytes, seconds)``; the return code is always 0.
    """

    def __init__(self, *, method: str, model: CostModel, size_of: Callable[[str], int]) -> None:
        self.name = f"cost-{method}"
        self.method = method
        self.model = model
        self.size_of = size_of
        self.transfers: list[tuple[tuple[str, ...], int, float]] = []
        self._lock = threading.Lock()

    def transfer(self, gfids: Sequence[str]):
        from ..sinks.engine import TransferResult
        nbytes = sum(self.size_of(g) for g in gfids)
        secs = self.model.transfer_seconds(self.method, len(gfids), nbytes)
        with self._lock:
            self.transfers.append((tuple(gfids), nbytes, secs))
        return TransferResult(0, "", len(gfids))

    def is_partial(self, code: int) -> bool:
        return code in (23, 24)


class JournalView:
    """A source view for replaying journals with no source at hand: every gfid
    a CREATE/MKNOD/MKDIR/SYMLINK names exists, with that record's mode/uid/gid,
    unless the journals removed its last name. Good enough to price a replay;
    use a :class:`~streamsync.views.BrickView` when the brick is available.
    """

    def __init__(self, changelogs: Iterable[Changelog]) -> None:
        from ..records import ROOT_GFID, Stat
        from .resolve import JournalNamespace
        from ._input import read_records
        ns = JournalNamespace()
        stats: dict[str, Stat] = {ROOT_GFID: Stat(0, 0, 0o40755, 0.0, 0.0)}
        for c in changelogs:
            for r in read_records(c):
                if r.TYPE == "E":
                    if r.mode is not None:  # type: ignore[union-attr]
                        stats[r.gfid] = Stat(r.uid, r.gid, r.mode, float(c.ts), float(c.ts))  # type: ignore
                    elif r.fop == "SYMLINK":  # type: ignore[union-attr]
                        stats[r.gfid] = Stat(0, 0, 0o120777, float(c.ts), float(c.ts))
                    ns.apply(r)
        self.ns = ns
        self.stats = {g: st for g, st in stats.items() if g == ROOT_GFID or g in ns.names}

    def lstat(self, gfid):
        return self.stats.get(gfid)

    def readlink(self, gfid):
        return None

    def entry_gfid(self, pgfid, bname):
        return self.ns.holder.get((pgfid, bname))

    def dir_entry(self, gfid):
        import stat as _stat
        st = self.stats.get(gfid)
        names = self.ns.names.get(gfid)
        if st is None or not _stat.S_ISDIR(st.mode) or not names:
            return None
        return names[0]

    def data_path(self, gfid):
        return None

    def prefetch(self, gfids, names=()):
        return self


class WhatIfResult(NamedTuple):
    """What one replay did and how long the model says it takes."""

    settings: dict[str, Any]
    changelogs: int
    batches: int
    entry_calls: int
    entry_ops: int
    meta_calls: int
    meta_ops: int
    lookups: int
    transfers: int
    files_sent: int
    bytes_sent: int
    entry_seconds: float
    meta_seconds: float
    data_seconds: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["settings"] = dict(self.settings)
        for k in ("entry_seconds", "meta_seconds", "data_seconds", "seconds"):
            d[k] = round(d[k], 6)
        return d


def _schedule(jobs: int, items: list[tuple[float, float]], start: float) -> float:
    """Finish time of ``(release, duration)`` items on ``jobs`` workers (release order)."""
    free = [start] * max(1, jobs)
    end = start
    for release, dur in sorted(items, key=lambda x: x[0]):
        i = min(range(len(free)), key=free.__getitem__)
        begin = max(free[i], release)
        free[i] = begin + dur
        end = max(end, free[i])
    return end


def _size_function(view: Any, model: CostModel, sizes: Mapping[str, int] | None):
    cache: dict[str, int] = {}

    def size_of(g: str) -> int:
        if sizes is not None and g in sizes:
            return sizes[g]
        v = cache.get(g)
        if v is None:
            v = model.default_file_size
            path = view.data_path(g) if view is not None else None
            if path is not None:
                try:
                    v = os.stat(path).st_size
                except OSError:
                    pass
            cache[g] = v
        return v

    return size_of


def replay(paths_or_changelogs: Iterable[Any], *, view: Any, options: Options,
           model: CostModel = CostModel(), data_stime: Stime | None = None,
           entry_stime: Stime | None = None, sizes: Mapping[str, int] | None = None,
           settings: Mapping[str, Any] | None = None) -> WhatIfResult:
    """Plan, batch and dispatch the journals with ``options`` and price the run.

    ``view`` is the source (a :class:`~streamsync.views.BrickView` gives real
    file sizes); ``None`` builds a :class:`JournalView` from the journals.
    ``sizes`` overrides file sizes by gfid.

    What gsyncd's defaults would cost on the bundled journals, and with tar:

    >>> from streamsync.discover import discover
    >>> journals = list(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))
    >>> rsync = replay(journals, view=None, options=Options())
    >>> rsync.changelogs, rsync.batches, rsync.entry_ops, rsync.files_sent
    (34, 1, 2257, 2016)
    >>> tar = replay(journals, view=None, options=Options.from_pairs(["sync-method=tarssh"]))
    >>> tar.files_sent  # SETXATTR is data only for rsync (it carries xattrs)
    2014
    """
    from ..dispatch import Dispatcher
    from ..pipeline import batch_plans, plan_changelogs
    from ..state import SqliteState
    from ._input import iter_journals

    items = list(paths_or_changelogs)
    if items and all(isinstance(c, Changelog) for c in items):
        changelogs = items
    else:
        changelogs = list(iter_journals(items))
    if view is None:
        view = JournalView(changelogs)
    clock = _Clock()
    plan_view = _priced_view(view)
    disp_view = _priced_view(view, clock=clock, cost=model.lookup)
    sink = _PricedSink(clock, model)
    method = options.sync_method
    engine = CostEngine(method=method, model=model, size_of=_size_function(view, model, sizes))
    state = SqliteState(":memory:")
    disp = Dispatcher(sink=sink, engine=engine, state=state, view=disp_view, options=options,
                      retry_delay=0)
    release: dict[str, float] = {}
    original_submit = disp.syncer.submit

    def submit(gfids, *, force: bool = False):
        gfids = list(gfids)
        for g in gfids:
            release[g] = clock.now
        return original_submit(gfids, force=force)

    disp.syncer.submit = submit  # type: ignore[method-assign]
    jobs = options.sync_jobs
    n_batches = 0
    data_seconds = 0.0
    try:
        plans = plan_changelogs(changelogs, view=plan_view, options=options,
                                data_stime=data_stime, entry_stime=entry_stime)
        for batch in batch_plans(plans, batch_size=options.changelog_batch_size):
            n_batches += 1
            start = clock.now
            seen = len(engine.transfers)
            disp.run_batch(batch)
            items = [(max(release.get(g, start) for g in gfids) if gfids else start, secs)
                     for gfids, _b, secs in engine.transfers[seen:]]
            data_seconds += sum(s for _, s in items)
            end = _schedule(jobs, items, start) if items else start
            clock.now = max(clock.now, end) + model.batch_overhead
    finally:
        disp.close()
    planner_seconds = plan_view.lookups * model.lookup / max(1, model.lookup_concurrency)
    return WhatIfResult(
        settings=dict(settings or {"changelog-batch-size": options.changelog_batch_size,
                                   "sync-jobs": jobs, "sync-method": method}),
        changelogs=len(changelogs), batches=n_batches, entry_calls=sink.entry_calls,
        entry_ops=sink.entry_ops, meta_calls=sink.meta_calls, meta_ops=sink.meta_ops,
        lookups=plan_view.lookups + disp_view.lookups, transfers=len(engine.transfers),
        files_sent=sum(len(g) for g, _b, _s in engine.transfers),
        bytes_sent=sum(b for _g, b, _s in engine.transfers),
        entry_seconds=sink.entry_seconds, meta_seconds=sink.meta_seconds,
        data_seconds=data_seconds, seconds=clock.now + planner_seconds)


def compare(paths_or_changelogs: Iterable[Any], *, view: Any, base: Options | None = None,
            grid: Mapping[str, Sequence[Any]], model: CostModel = CostModel(),
            data_stime: Stime | None = None, entry_stime: Stime | None = None,
            sizes: Mapping[str, int] | None = None) -> list[WhatIfResult]:
    """:func:`replay` for every combination of the ``grid`` options (gsyncd names).

    >>> rs = compare(["tests/data/gluster-10.3/processed/ascii-delpath-on"], view=None,
    ...              grid={"sync-jobs": [1, 3]})
    >>> [r.settings["sync-jobs"] for r in rs], rs[0].seconds > rs[1].seconds
    ([1, 3], True)
    """
    from ._input import iter_journals
    items = list(paths_or_changelogs)
    changelogs = items if items and all(isinstance(c, Changelog) for c in items) \
        else list(iter_journals(items))
    if view is None:
        view = JournalView(changelogs)
    base = base or Options()
    names = list(grid)
    out = []
    for values in itertools.product(*(grid[n] for n in names)):
        settings = dict(zip(names, values))
        opts = base.replace(**{n.replace("-", "_"): v for n, v in settings.items()})
        out.append(replay(changelogs, view=view, options=opts, model=model,
                          data_stime=data_stime, entry_stime=entry_stime, sizes=sizes,
                          settings=settings))
    return out
