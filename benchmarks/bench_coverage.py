"""What the default-mode coverage check costs on a first run, against the replay it guards.

Run: ``.venv/bin/python -m pytest benchmarks/bench_coverage.py --benchmark-only -s``

The brick of ``bench_replicate.py`` (5,000 x 1 KiB files in 50 directories plus a
20 MiB file, 12 processed journals; ``BENCH_REPL_FILES``/``BENCH_REPL_DIRS``) is
built once. Each round, in the same run:

* :func:`streamsync.crawl.coverage.journal_coverage` of the brick (walk every
  ``.glusterfs/xx/yy`` handle directory, decode every journal until all gfids
  are created);
* the reference: the replay it chooses, :func:`streamsync.replicate.replicate`
  into a fresh replica.

The ratio check / replay (medians over ``BENCH_COVERAGE_ROUNDS`` rounds) is the
overhead the check adds to a first ``streamsync replicate`` without ``--mode``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time

import pytest

from bench_replicate import build_brick
from streamsync.crawl.coverage import journal_coverage
from streamsync.replicate import replicate

ROUNDS = int(os.environ.get("BENCH_COVERAGE_ROUNDS", "5"))

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")


@pytest.fixture(scope="module")
def brick(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("bench") / "brick")
    return root, build_brick(root)


def test_coverage_check_vs_replay(benchmark, brick, tmp_path):
    src, n_journals = brick
    check: list[float] = []
    replay: list[float] = []
    handles: list[int] = []

    def one_round():
        t = time.perf_counter()
        cov = journal_coverage(src)
        check.append(time.perf_counter() - t)
        assert cov.covered and cov.journals == n_journals
        handles.append(cov.handles)
        dst = str(tmp_path / "replica")
        shutil.rmtree(dst, ignore_errors=True)
        t = time.perf_counter()
        assert replicate(src, dst, retry_delay=0).open_failures == 0
        replay.append(time.perf_counter() - t)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    c, r = statistics.median(check), statistics.median(replay)
    benchmark.extra_info.update(handles=handles[0], journals=n_journals, check_s=c,
                                replay_s=r, ratio=c / r)
    print(f"\ncoverage check of {handles[0]} gfids / {n_journals} journals {c * 1000:.1f} ms, "
          f"replay {r:.2f} s: check/replay {c / r:.3f}")
