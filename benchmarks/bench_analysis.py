"""Analysis throughput (records/s): single process vs Dask with 2 worker processes.

Run: ``.venv/bin/python -m pytest benchmarks/bench_analysis.py --benchmark-only -s``

A large journal set is generated (seeded, :mod:`journalgen`) as processed
``CHANGELOG.<ts>`` files in a temporary directory. Measured in the same run:

* the reference: read every file and split it into lines and fields
  (``for line in data.split(b"\\n"): line.split(b" ")``), the least work any
  analysis must do on the same bytes;
* :func:`streamsync.analysis.summarize_paths` in one process;
* :func:`streamsync.analysis.dask.summarize_dask` on a
  ``distributed.LocalCluster(n_workers=2, processes=True)``.

Ratios are printed and stored in each benchmark's ``extra_info``; the Dask
result is asserted equal to the single-process result.
"""

from __future__ import annotations

import os
import time

import pytest

from journalgen import make_records
from streamsync.analysis import summarize_paths
from streamsync.analysis.dask import summarize_dask
from streamsync.parse import render_processed

N_FILES = int(os.environ.get("BENCH_ANALYSIS_FILES", "400"))
PER_FILE = int(os.environ.get("BENCH_ANALYSIS_RECORDS", "1000"))
_TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def journal_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("journals")
    recs = make_records(N_FILES * PER_FILE, seed=11)
    ts = 1700000000
    for i in range(N_FILES):
        chunk = recs[i * PER_FILE:(i + 1) * PER_FILE]
        (d / f"CHANGELOG.{ts + 15 * i}").write_bytes(render_processed(chunk))
    return d, N_FILES * PER_FILE


def _reference(d) -> int:
    n = 0
    for name in os.listdir(d):
        with open(os.path.join(d, name), "rb") as fh:
            for line in fh.read().split(b"\n"):
                if line:
                    line.split(b" ")
                    n += 1
    return n


def _report(name: str, seconds: float, records: int, benchmark) -> None:
    _TIMES[name] = seconds
    rate = records / seconds
    benchmark.extra_info["records_per_s"] = round(rate)
    ref = _TIMES.get("reference")
    if ref:
        benchmark.extra_info["ratio_vs_reference"] = round(seconds / ref, 2)
    single = _TIMES.get("single")
    if single and name != "single":
        benchmark.extra_info["speedup_vs_single"] = round(single / seconds, 2)
    print(f"\n{name}: {rate:,.0f} records/s ({seconds:.3f} s)"
          + (f", {seconds / ref:.1f}x the reference" if ref and name != "reference" else "")
          + (f", {single / seconds:.2f}x single-process speed" if single and name != "single" else ""))


def _timed(benchmark, fn, rounds=3):
    best = [float("inf")]

    def run():
        t = time.perf_counter()
        out = fn()
        best[0] = min(best[0], time.perf_counter() - t)
        return out

    result = benchmark.pedantic(run, rounds=rounds, iterations=1)
    return result, best[0]


def test_reference_split(benchmark, journal_dir):
    d, n = journal_dir
    got, secs = _timed(benchmark, lambda: _reference(d))
    assert got == n
    _report("reference", secs, n, benchmark)


def test_single_process(benchmark, journal_dir):
    d, n = journal_dir
    s, secs = _timed(benchmark, lambda: summarize_paths([d], bucket="1h"))
    assert s.records == n
    _report("single", secs, n, benchmark)


def test_dask_local_cluster_2_workers(benchmark, journal_dir):
    distributed = pytest.importorskip("distributed")
    d, n = journal_dir
    single = summarize_paths([d], bucket="1h")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        s, secs = _timed(benchmark, lambda: summarize_dask([d], bucket="1h", npartitions=8,
                                                           scheduler=client))
    assert s == single
    _report("dask-2-workers", secs, n, benchmark)


def test_dask_ideal_two_workers(benchmark, journal_dir):
    """The most two worker processes could give with a :class:`Summary` as the result,
    measured piecewise in this process: each half of the journals summarised (the
    two would run side by side: the slower half counts), the two half summaries
    unpickled on the client (what arrives from the workers; their pickling is
    the workers' and not counted) and merged there. No scheduler, no process
    start, no contention for the two cores: a bound, not a forecast."""
    import pickle

    from streamsync.analysis.summary import merge
    from streamsync.discover import discover
    d, n = journal_dir
    journals = list(discover([str(d)]))
    paths = [c.path for c in journals]
    halves = [paths[: len(paths) // 2], paths[len(paths) // 2:]]

    def piecewise():
        t0 = time.perf_counter()
        single = summarize_paths([d], bucket="1h")
        t1 = time.perf_counter()
        parts, part_s = [], []
        for half in halves:
            t = time.perf_counter()
            parts.append(summarize_paths(half, bucket="1h"))
            part_s.append(time.perf_counter() - t)
        blobs = [pickle.dumps(p) for p in parts]
        t = time.perf_counter()
        got = [pickle.loads(b) for b in blobs]
        unpickle = time.perf_counter() - t
        t = time.perf_counter()
        whole = merge(*got)
        merged = time.perf_counter() - t
        assert whole == single
        return t1 - t0, max(part_s), unpickle, merged, sum(map(len, blobs))

    one, half, unpickle, merged, size = benchmark.pedantic(piecewise, rounds=1, iterations=1)
    ideal = half + unpickle + merged
    benchmark.extra_info.update(single_s=one, slower_half_s=half, unpickle_s=unpickle,
                                merge_s=merged, pickled_bytes=size, bound=round(one / ideal, 2))
    print(f"\nideal 2 workers: slower half {half:.2f} s + unpickle {unpickle:.2f} s "
          f"({size / 1e6:.0f} MB) + merge {merged:.2f} s = {ideal:.2f} s against one "
          f"process {one:.2f} s: at most {one / ideal:.2f}x (goal 1.6x)")
