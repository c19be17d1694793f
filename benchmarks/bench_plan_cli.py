"""The whole ``streamsync plan`` process against the real seed, and the floor.

Run: ``.venv/bin/python -m pytest benchmarks/bench_plan_cli.py --benchmark-only -s``

A :mod:`streamsync.synth` workload of about 300,000 lines (hostile names, 200
processed changelogs) is written once, with its source namespace as a
``--source-state`` JSON file. Each round, interleaved:

* **seed**: the real seed's ``crawl`` -> ``process_change`` on those changelogs
  through ``scripts/seed_diff.py`` (in this process, the namespace already
  loaded, logging off: the seed's own process start and state loading are *not*
  counted, which favours the seed);
* **streamsync**: ``streamsync plan --changelogs DIR --source-state FILE`` as a
  process, JSON lines to a file (start-up, imports, loading the state, planning,
  rows and JSON all counted);
* **floor**: a Python process doing the least any planner must: load the state
  with orjson, read every changelog, split every line into its fields and write
  one JSON line per changelog, with no rule and no validation.

Reported: seed / streamsync and seed / floor, median and [min-max] over the
rounds. seed / floor is the most any pure-Python CLI could reach on this machine.
The environment sets ``PYTHONDONTWRITEBYTECODE=1``: each streamsync process
compiles the package from source (about 0.08 s), as the measured runs did.
Sizes: ``BENCH_PLAN_OPS`` (default 265,000 ops, about 300k lines),
``BENCH_PLAN_ROUNDS`` (5).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import orjson
import pytest

from streamsync.parse import render_processed
from streamsync.synth import synth_workload

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_PATH = os.environ.get("STREAMSYNC_SEED", "/work/shared/seed/master.py")
OPS = int(os.environ.get("BENCH_PLAN_OPS", "265000"))
ROUNDS = int(os.environ.get("BENCH_PLAN_ROUNDS", "5"))

FLOOR = r"""
import os, sys, orjson
d, state = sys.argv[1], sys.argv[2]
orjson.loads(open(state, "rb").read())
out = open(sys.argv[3], "wb")
for name in sorted(os.listdir(d)):
    with open(os.path.join(d, name), "rb") as fh:
        text = fh.read().decode("utf-8", "surrogateescape")
    n = 0
    for line in text.split("\n"):
        n += len(line.split(" "))
    out.write(orjson.dumps({"changelog": name, "fields": n}) + b"\n")
"""


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    top = tmp_path_factory.mktemp("plancli")
    w = synth_workload(42, ops=OPS, changelogs=200, names="hostile")
    cdir = top / "changelogs"
    cdir.mkdir()
    for ts, recs in w.changelogs:
        (cdir / f"CHANGELOG.{ts}").write_bytes(render_processed(recs))
    state = top / "state.json"
    state.write_bytes(orjson.dumps(w.state.to_json()))
    return str(cdir), str(state), w.state, w.lines, top


def _timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


@pytest.mark.skipif(not os.path.exists(SEED_PATH), reason="the seed's master.py is not here")
def test_plan_cli_vs_the_real_seed(benchmark, workload):
    sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
    import seed_diff
    cdir, state, view, lines, top = workload
    out = str(top / "plan.json")
    cli = [sys.executable, "-m", "streamsync", "plan", "--changelogs", cdir,
           "--source-state", state]
    floor = [sys.executable, "-c", FLOOR, cdir, state, str(top / "floor.json")]
    seed_t: list[float] = []
    ours_t: list[float] = []
    floor_t: list[float] = []

    def one_round():
        t = time.perf_counter()
        seed_diff.run_seed(SEED_PATH, cdir, view, {}, None, None, False, tolerate_einval=True)
        seed_t.append(time.perf_counter() - t)
        with open(out, "wb") as fh:
            t = time.perf_counter()
            subprocess.run(cli, check=True, stdout=fh)
            ours_t.append(time.perf_counter() - t)
        floor_t.append(_timed(floor))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    with open(out, "rb") as fh:
        assert sum(1 for _ in fh) == 200
    ours = sorted(s / o for s, o in zip(seed_t, ours_t))
    best = sorted(s / f for s, f in zip(seed_t, floor_t))
    benchmark.extra_info.update(
        lines=lines, seed_s=statistics.median(seed_t), streamsync_s=statistics.median(ours_t),
        floor_s=statistics.median(floor_t), speedup=statistics.median(ours),
        speedup_min=ours[0], speedup_max=ours[-1], floor_speedup=statistics.median(best))
    print(f"\n{lines:,} lines: seed {statistics.median(seed_t):.2f} s (in-process), "
          f"streamsync plan {statistics.median(ours_t):.2f} s, floor "
          f"{statistics.median(floor_t):.2f} s (whole processes)\n"
          f"seed / streamsync plan = {statistics.median(ours):.2f}x "
          f"[{ours[0]:.2f}-{ours[-1]:.2f}]; seed / floor = {statistics.median(best):.2f}x "
          f"[{best[0]:.2f}-{best[-1]:.2f}] (the most a pure-Python CLI can reach)")
