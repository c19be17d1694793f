"""Replicate a brick of 5000 x 1 KiB files in 50 directories plus one 20 MiB file
into an empty replica, against ``rsync -a`` of the same final tree, in one run.

Run: ``.venv/bin/python -m pytest benchmarks/bench_replicate.py --benchmark-only -s``

The source brick is built once per session: a journal generator writes the
processed changelogs (MKDIR, CREATE and D records, 500 files per journal, as
a 15 s rollover would cut them) and a brick builder makes the matching brick
(visible tree, ``.glusterfs`` handles, ``trusted.gfid``), then the file data is
written. Each round replicates into a fresh empty replica (fresh SQLite state)
with ``streamsync.replicate.replicate`` and, in the same round, copies the
visible tree with ``rsync -a`` into a fresh directory. The ratio of the two
times (median over the rounds) is printed and stored in ``extra_info``; the
issue's goal is at most 1.5x. Sizes: ``BENCH_REPL_FILES``, ``BENCH_REPL_DIRS``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
import uuid

import pytest

from streamsync.ops import EntryOp
from streamsync.parse import render_processed
from streamsync.records import ROOT_GFID, DataRecord, EntryRecord
from streamsync.replicate import replicate
from streamsync.sinks.replica import ReplicaSink
from streamsync.verify import verify

N_FILES = int(os.environ.get("BENCH_REPL_FILES", "5000"))
N_DIRS = int(os.environ.get("BENCH_REPL_DIRS", "50"))
BIG = 20 << 20
PER_JOURNAL = 500
ROUNDS = int(os.environ.get("BENCH_REPL_ROUNDS", "5"))

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")


def _gfid(rng_uuid) -> str:
    return str(rng_uuid)


def build_brick(root: str, *, seed: int = 5) -> int:
    """Brick + processed journals; returns the number of journals."""
    import random
    rng = random.Random(seed)
    new = lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))  # noqa: E731
    records: list[list] = []
    ops: list[EntryOp] = []
    dirs = []
    for d in range(N_DIRS):
        g = new()
        dirs.append(g)
        records.append([EntryRecord(g, "MKDIR", ROOT_GFID, f"dir{d:02d}", 0o40755, 0, 0)])
        ops.append(EntryOp("MKDIR", g, ROOT_GFID, f"dir{d:02d}", mode=0o40755, uid=0, gid=0))
    files = []
    for i in range(N_FILES):
        g, p = new(), dirs[i % N_DIRS]
        name = f"file{i:05d}.dat"
        files.append((g, p, name))
        records.append([EntryRecord(g, "CREATE", p, name, 0o100644, 0, 0), DataRecord(g)])
        ops.append(EntryOp("CREATE", g, p, name, mode=0o100644, uid=0, gid=0))
    big = new()
    records.append([EntryRecord(big, "CREATE", ROOT_GFID, "big.bin", 0o100644, 0, 0),
                    DataRecord(big)])
    ops.append(EntryOp("CREATE", big, ROOT_GFID, "big.bin", mode=0o100644, uid=0, gid=0))
    sink = ReplicaSink(root)
    assert sink.apply_entries(ops) == []
    sink.close()
    for i, (g, p, name) in enumerate(files):
        with open(os.path.join(root, f"dir{i % N_DIRS:02d}", name), "wb") as fh:
            fh.write(rng.randbytes(1024))
    with open(os.path.join(root, "big.bin"), "wb") as fh:
        fh.write(rng.randbytes(BIG))
    cl = os.path.join(root, ".glusterfs", "changelogs")
    os.makedirs(cl)
    # journals: the MKDIRs first, then PER_JOURNAL files per journal
    flat = [records[:N_DIRS]] + [records[N_DIRS + i:N_DIRS + i + PER_JOURNAL]
                                 for i in range(0, N_FILES + 1, PER_JOURNAL)]
    ts = 1700000000  # in the past: replication refuses journals stamped in the future
    for k, chunk in enumerate(flat):
        recs = [r for group in chunk for r in group]
        with open(os.path.join(cl, f"CHANGELOG.{ts + 15 * k}"), "wb") as fh:
            fh.write(render_processed(recs))
    return len(flat)


@pytest.fixture(scope="module")
def brick(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("bench") / "brick")
    n = build_brick(root)
    return root, n


def _fresh(path: str) -> str:
    """``path`` removed, and the disk's dirty pages written out (untimed): each
    timed run starts with the same writeback backlog, none."""
    shutil.rmtree(path, ignore_errors=True)
    os.sync()
    return path


def _rsync_a(src: str, dst: str) -> float:
    t = time.perf_counter()
    subprocess.run(["rsync", "-a", "--exclude=/.glusterfs", src + "/", dst + "/"], check=True)
    return time.perf_counter() - t


def _ours(src: str, dst: str) -> float:
    t = time.perf_counter()
    s = replicate(src, dst, retry_delay=0)
    assert s.open_failures == 0
    return time.perf_counter() - t


def test_replicate_vs_rsync_a(benchmark, brick, tmp_path):
    src, n_journals = brick
    ours: list[float] = []
    ref: list[float] = []

    def one_round():
        ref.append(_rsync_a(src, _fresh(str(tmp_path / "plain"))))
        ours.append(_ours(src, _fresh(str(tmp_path / "replica"))))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    assert verify(src, str(tmp_path / "replica")) == []
    ratio = statistics.median(ours) / statistics.median(ref)
    benchmark.extra_info.update(
        files=N_FILES, dirs=N_DIRS, journals=n_journals, rsync_a_s=statistics.median(ref),
        streamsync_s=statistics.median(ours), ratio=ratio)
    print(f"\nreplicate {N_FILES} x 1 KiB in {N_DIRS} dirs + 20 MiB ({n_journals} journals): "
          f"streamsync {statistics.median(ours):.2f} s, rsync -a {statistics.median(ref):.2f} s, "
          f"ratio {ratio:.2f}x (goal <= 1.5x)")
