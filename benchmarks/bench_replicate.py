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
times (median and [min-max] of the per-round ratios) is printed and stored in
``extra_info``; the issue's goal is at most 1.5x. The same round also times a
floor: one Python process doing only what the brick layout requires per file
(``FLOOR``: create, kernel copy, times, ``trusted.gfid``, the handle's hard link
and its ``.glusterfs/xx/yy`` directory), which ``rsync -a`` of the visible tree
does not have to do. Sizes: ``BENCH_REPL_FILES``, ``BENCH_REPL_DIRS``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
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


#: the least a brick-layout replica does, in one pass over the visible tree and one
#: process: per file create, copy (kernel), times, ``trusted.gfid``, and the hard
#: link of its handle in ``.glusterfs/xx/yy`` (made when missing); no journal, no
#: state, no checks
FLOOR = r"""
import os, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(os.path.join(dst, ".glusterfs"), exist_ok=True)
made = set()
def handle(gfid):
    d = os.path.join(dst, ".glusterfs", gfid[0:2], gfid[2:4])
    if d not in made:
        os.makedirs(d, exist_ok=True)
        made.add(d)
    return os.path.join(d, gfid)
for top, dirs, files in os.walk(src):
    if top == src and ".glusterfs" in dirs:
        dirs.remove(".glusterfs")
    out = os.path.join(dst, os.path.relpath(top, src))
    for d in dirs:
        os.mkdir(os.path.join(out, d))
    for f in files:
        dp = os.path.join(out, f)
        sfd = os.open(os.path.join(top, f), os.O_RDONLY)
        st = os.fstat(sfd)
        g = os.getxattr(sfd, "trusted.gfid").hex()
        dfd = os.open(dp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, st.st_mode & 0o7777)
        while os.copy_file_range(sfd, dfd, 1 << 24):
            pass
        os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.setxattr(dfd, "trusted.gfid", bytes.fromhex(g))
        os.close(dfd)
        os.close(sfd)
        os.link(dp, handle(f"{g[0:8]}-{g[8:12]}-{g[12:16]}-{g[16:20]}-{g[20:32]}"))
"""


def _floor(src: str, dst: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", FLOOR, src, dst], check=True)
    return time.perf_counter() - t


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
    floor: list[float] = []

    def one_round():
        ref.append(_rsync_a(src, _fresh(str(tmp_path / "plain"))))
        floor.append(_floor(src, _fresh(str(tmp_path / "floor"))))
        ours.append(_ours(src, _fresh(str(tmp_path / "replica"))))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    assert verify(src, str(tmp_path / "replica")) == []
    ratios = sorted(o / r for o, r in zip(ours, ref))
    floors = sorted(f / r for f, r in zip(floor, ref))
    ratio, floor_ratio = statistics.median(ratios), statistics.median(floors)
    benchmark.extra_info.update(
        files=N_FILES, dirs=N_DIRS, journals=n_journals, rsync_a_s=statistics.median(ref),
        streamsync_s=statistics.median(ours), floor_s=statistics.median(floor), ratio=ratio,
        ratio_min=ratios[0], ratio_max=ratios[-1], floor_ratio=floor_ratio)
    print(f"\nreplicate {N_FILES} x 1 KiB in {N_DIRS} dirs + 20 MiB ({n_journals} journals): "
          f"streamsync {statistics.median(ours):.2f} s, floor {statistics.median(floor):.2f} s, "
          f"rsync -a {statistics.median(ref):.2f} s; streamsync / rsync -a {ratio:.2f}x "
          f"[{ratios[0]:.2f}-{ratios[-1]:.2f}] (goal <= 1.5x), floor / rsync -a "
          f"{floor_ratio:.2f}x [{floors[0]:.2f}-{floors[-1]:.2f}]")
