"""Analysis throughput (records/s): single process vs Dask with 2 worker processes.

Run: ``.venv/bin/python -m pytest benchmarks/bench_analysis.py --benchmark-only -s``

A large journal set is generated (seeded, :mod:`journalgen`) as processed
``CHANGELOG.<ts>`` files in a temporary directory. Measured in the same run:

* the reference: read every file and split it into lines and fields
  (``for line in data.split(b"\\n"): line.split(b" ")``), the least work any
  analysis must do on the same bytes;
* :func:`streamsync.analysis.summarize_paths` in one process;
* :func:`streamsync.analysis.dask.summarize_dask` on a
  ``distributed.LocalCluster(n_workers=2, processes=True)``;
* the report ``streamsync analyze`` prints, in one process against
  :func:`streamsync.analysis.dask.report_dask` (gfid shards) on the same
  cluster, interleaved round by round; the same split timed piecewise in one
  process (the bound of the design); one shard's reading in this process and
  on a worker (what a Dask worker costs); and the whole ``streamsync analyze``
  command with and without ``--dask`` on growing journal counts (break-even).

Ratios are printed and stored in each benchmark's ``extra_info``; every Dask
result is asserted equal to the single-process result. ``BENCH_ANALYSIS_RAW=1``
writes the same records as raw ascii journals (what a brick holds) instead.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import pytest

from journalgen import make_records
from streamsync.analysis import summarize_paths
from streamsync.analysis.dask import summarize_dask
from streamsync.encode import encode_journal
from streamsync.parse import render_processed

RAW = os.environ.get("BENCH_ANALYSIS_RAW", "") not in ("", "0")
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
        (d / f"CHANGELOG.{ts + 15 * i}").write_bytes(
            encode_journal(chunk) if RAW else render_processed(chunk))
    return d, N_FILES * PER_FILE


def _reference(d) -> int:
    n = 0
    for name in os.listdir(d):
        with open(os.path.join(d, name), "rb") as fh:
            for line in fh.read().split(b"\0" if RAW else b"\n"):
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
    assert got > n if RAW else got == n  # raw: one piece per field, not per record
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


def _one_process_report(d) -> dict:
    """What ``streamsync analyze --json`` computes without Dask."""
    from streamsync.analysis.resolve import Resolver
    s = summarize_paths([d], bucket="1h")
    return s.to_dict(top=20, paths=Resolver.from_summary(s).path)


def _spread(values) -> str:
    return (f"{statistics.median(values):.2f}x [{min(values):.2f}-{max(values):.2f}]")


def test_dask_report_2_workers(benchmark, journal_dir):
    """The sharded report on 2 worker processes against one process, interleaved."""
    distributed = pytest.importorskip("distributed")
    from streamsync.analysis.dask import report_dask
    d, n = journal_dir
    rounds = int(os.environ.get("BENCH_ANALYSIS_ROUNDS", "5"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        want = _one_process_report(d)
        assert report_dask([d], bucket="1h", scheduler=client) == want  # warm the workers
        one, two = [], []

        def interleaved():
            for _ in range(rounds):
                t = time.perf_counter()
                _one_process_report(d)
                one.append(time.perf_counter() - t)
                t = time.perf_counter()
                got = report_dask([d], bucket="1h", scheduler=client)
                two.append(time.perf_counter() - t)
                assert got == want
        benchmark.pedantic(interleaved, rounds=1, iterations=1)
    ratios = [a / b for a, b in zip(one, two)]
    benchmark.extra_info.update(one_process_s=one, dask_s=two,
                                speedup_median=round(statistics.median(ratios), 2),
                                speedup_min=round(min(ratios), 2),
                                speedup_max=round(max(ratios), 2))
    print(f"\nreport, {n:,} records: one process {statistics.median(one):.2f} s, "
          f"report_dask on 2 workers {statistics.median(two):.2f} s: {_spread(ratios)} "
          f"(goal 1.6x)")


def test_dask_report_ideal_two_shards(benchmark, journal_dir):
    """The bound of the sharded design on 2 workers, timed piecewise in this process:
    each shard's reading and its part of the report (side by side on two workers:
    the slower counts), then the client's assembly, against one process's report.
    No scheduler, no worker process, no contention."""
    from streamsync.analysis.report import assemble, shard_part
    from streamsync.analysis.resolve import Resolver
    from streamsync.analysis.shard import read_shard
    from streamsync.discover import discover
    d, n = journal_dir
    journals = list(discover([str(d)]))

    def piecewise():
        t = time.perf_counter()
        want = _one_process_report(d)
        one = time.perf_counter() - t
        shard_s, parts = [], []
        for k in range(2):
            t = time.perf_counter()
            r = read_shard(journals, k, 2, bucket="1h")
            parts.append(shard_part(r.summary, r.onto, 20, parents=r.parents))
            shard_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        names = {}
        for p in parts:
            names.update(p.names)
        got = assemble(parts, 20, Resolver.from_names(names).path)
        tail = time.perf_counter() - t
        assert got == want
        return one, shard_s, tail

    one, shard_s, tail = benchmark.pedantic(piecewise, rounds=1, iterations=1)
    bound = one / (max(shard_s) + tail)
    benchmark.extra_info.update(one_process_s=one, shard_s=shard_s, assemble_s=tail,
                                bound=round(bound, 2))
    print(f"\nsharded report, ideal 2 workers: shards {shard_s[0]:.2f} s / {shard_s[1]:.2f} s "
          f"+ assembly {tail:.3f} s against one process {one:.2f} s: at most {bound:.2f}x")


def _timed_shard(journals, k):
    from streamsync.analysis.shard import read_shard
    t = time.perf_counter()
    read_shard(journals, k, 2, bucket="1h")
    return time.perf_counter() - t


def test_dask_worker_penalty(benchmark, journal_dir):
    """One shard's reading in this process, then on a LocalCluster worker while the
    other worker reads the other shard: what running inside Dask costs."""
    distributed = pytest.importorskip("distributed")
    from streamsync.discover import discover
    d, _ = journal_dir
    journals = list(discover([str(d)]))
    here, there = [], []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        client.gather([client.submit(_timed_shard, journals, k, pure=False) for k in (0, 1)])

        def interleaved():
            for _ in range(3):
                here.append(_timed_shard(journals, 0))
                there.append(client.gather(client.submit(_timed_shard, journals, 0,
                                                         pure=False)))
                client.gather([client.submit(_timed_shard, journals, k, pure=False)
                               for k in (0, 1)])
        benchmark.pedantic(interleaved, rounds=1, iterations=1)
        both = client.gather([client.submit(_timed_shard, journals, k, pure=False)
                              for k in (0, 1)])
    ratios = [b / a for a, b in zip(here, there)]
    benchmark.extra_info.update(in_process_s=here, on_worker_s=there, both_on_workers_s=both)
    print(f"\none shard's reading: {statistics.median(here):.2f} s here, "
          f"{statistics.median(there):.2f} s on a worker ({_spread(ratios)} of here), "
          f"{max(both):.2f} s with both workers busy")


def test_cli_break_even(benchmark, journal_dir, tmp_path):
    """The whole ``streamsync analyze --json`` command (process start, imports, for
    --dask a local cluster started and stopped) with and without ``--dask``, on the
    first N journals of the set."""
    pytest.importorskip("distributed")
    d, _ = journal_dir
    names = sorted(os.listdir(d))
    counts = [c for c in (100, 250, 500, 1000, 2000, 4000) if c <= len(names)]
    rows = []

    def run(args) -> tuple[float, bytes]:
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "streamsync", "analyze", "--json", *args],
                             check=True, capture_output=True).stdout
        return time.perf_counter() - t, out

    def sweep():
        for c in counts:
            sub = tmp_path / f"j{c}"
            sub.mkdir()
            for name in names[:c]:
                os.link(os.path.join(d, name), sub / name)
            plain, dasked = [], []
            for _ in range(2):
                a, out_a = run([str(sub)])
                b, out_b = run(["--dask", str(sub)])
                assert out_a == out_b
                plain.append(a)
                dasked.append(b)
            rows.append((c, min(plain), min(dasked)))
    benchmark.pedantic(sweep, rounds=1, iterations=1)
    benchmark.extra_info["rows"] = rows
    print("\njournals  analyze  analyze --dask  speedup")
    for c, a, b in rows:
        print(f"{c:8d}  {a:6.2f} s  {b:8.2f} s      {a / b:.2f}x")


def _summarize_timed(paths) -> float:
    t = time.perf_counter()
    summarize_paths(paths, bucket="1h")
    return time.perf_counter() - t


def test_two_halves_ceiling(benchmark, journal_dir):
    """The ceiling of any two-process analysis on this machine: two pooled processes
    each summarise half of the journals, side by side, and nothing is combined,
    against one process summarising them all (no report on either side)."""
    import multiprocessing as mp

    from streamsync.discover import discover
    d, _ = journal_dir
    paths = [c.path for c in discover([str(d)])]
    halves = [paths[: len(paths) // 2], paths[len(paths) // 2:]]
    ratios = []
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_summarize_timed, [paths[:5], paths[5:10]])  # started and imported

        def interleaved():
            for _ in range(3):
                one = _summarize_timed([str(d)])
                t = time.perf_counter()
                pool.map(_summarize_timed, halves)
                ratios.append(one / (time.perf_counter() - t))
        benchmark.pedantic(interleaved, rounds=1, iterations=1)
    benchmark.extra_info["ceiling"] = ratios
    print(f"\ntwo processes, half the journals each, nothing combined: {_spread(ratios)} "
          f"one process")


def test_dask_report_process_pool(benchmark, journal_dir):
    """The sharded report on Dask's ``processes`` scheduler with a pool of 2 started
    once (what ``analyze --dask`` uses, without its start), against one process."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import dask

    from streamsync.analysis.dask import report_dask
    d, _ = journal_dir
    want = _one_process_report(d)
    one, two = [], []
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool, \
            dask.config.set(pool=pool):
        assert report_dask([d], bucket="1h", scheduler="processes") == want  # warm

        def interleaved():
            for _ in range(4):
                t = time.perf_counter()
                _one_process_report(d)
                one.append(time.perf_counter() - t)
                t = time.perf_counter()
                got = report_dask([d], bucket="1h", scheduler="processes")
                two.append(time.perf_counter() - t)
                assert got == want
        benchmark.pedantic(interleaved, rounds=1, iterations=1)
    ratios = [a / b for a, b in zip(one, two)]
    benchmark.extra_info["speedup"] = ratios
    print(f"\nreport on Dask's process pool (2, started once): {_spread(ratios)} one process")
