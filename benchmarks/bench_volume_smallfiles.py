"""Landing small files on a secondary GlusterFS volume: rsync jobs vs the in-process lane.

Run (root, GlusterFS installed)::

    .venv/bin/python -m pytest benchmarks/bench_volume_smallfiles.py --benchmark-only -s

One secondary volume on loopback, mounted as gsyncd's secondary mounts it
(aux-gfid, acl, client-pid -1, FUSE caches off). A brick-layout source of
``BENCH_SMALL_FILES`` (default 2,000) x 2 KiB files; their entries are created
on the volume once (``glusterfs.gfid.newfile``) and then the data of all of them
is sent, alternately, by the rsync engine (gsyncd's flags, ``.gfid/<gfid>``
destinations) and by :class:`~streamsync.sinks.smallfiles.SmallFileLane`, both
through :class:`~streamsync.sinks.engine.DataSyncer` with ``sync-jobs`` 3, three
rounds each, interleaved. Every round is checked: each file on the volume has
the source's bytes. Printed: files/s of each and the ratio lane / rsync (time).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from gluster_lab import glusterd_running, run, start_volume, unmount, wait_for  # noqa: E402

from streamsync.ops import EntryOp  # noqa: E402
from streamsync.options import Options  # noqa: E402
from streamsync.records import ROOT_GFID  # noqa: E402
from streamsync.secondary.gfid_mount import is_gfid_mount  # noqa: E402
from streamsync.sinks.engine import DataSyncer  # noqa: E402
from streamsync.sinks.replica import handle_relpath  # noqa: E402
from streamsync.sinks.rsync import RsyncEngine  # noqa: E402
from streamsync.sinks.smallfiles import SmallFileLane  # noqa: E402
from streamsync.sinks.volume import VolumeSink  # noqa: E402

N = int(os.environ.get("BENCH_SMALL_FILES", "2000"))
ROUNDS = 3

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (volumes, FUSE)")


def _send(engine, gfids) -> float:
    t = time.perf_counter()
    with DataSyncer(engine, jobs=3) as s:
        s.submit(gfids)
        results = s.wait()
    assert all(r.ok for r in results), [r.result.stderr for r in results if not r.ok]
    return time.perf_counter() - t


def test_small_files_into_a_volume(benchmark, tmp_path_factory):
    gen = glusterd_running(tmp_path_factory)
    host = next(gen)
    work = tmp_path_factory.mktemp("smallfiles")
    vol, mnt, src = f"bsf{os.getpid()}", work / "mnt", work / "src"
    mnt.mkdir()
    made = mounted = False
    try:
        run("gluster", "--mode=script", "volume", "create", vol, f"{host}:{work / 'brick'}",
            "force")
        made = True
        start_volume(vol)
        run("glusterfs", "--aux-gfid-mount", "--acl", "--client-pid=-1", "--entry-timeout=0",
            "--attribute-timeout=0", "--negative-timeout=0", f"--volfile-server={host}",
            f"--volfile-id={vol}", str(mnt))
        mounted = True
        wait_for(lambda: is_gfid_mount(mnt), "the aux-gfid mount", timeout=30)
        gfids = [str(uuid.uuid4()) for _ in range(N)]
        content = {}
        for g in gfids:
            p = src / handle_relpath(g)
            p.parent.mkdir(parents=True, exist_ok=True)
            content[g] = os.urandom(2048)
            p.write_bytes(content[g])
        sink = VolumeSink(str(mnt))
        assert sink.apply_entries(EntryOp("CREATE", g, ROOT_GFID, f"f{i}", mode=0o100644,
                                          uid=0, gid=0) for i, g in enumerate(gfids)) == []
        sink.close()
        rsync = RsyncEngine(str(src), str(mnt), Options(), gfid_dest=True)
        lane = SmallFileLane(rsync, str(src), lambda g: os.path.join(mnt, ".gfid", g),
                             limit=1 << 20)
        times: dict[str, list[float]] = {"rsync": [], "lane": []}
        for _ in range(ROUNDS):
            for name, eng in (("rsync", rsync), ("lane", lane)):
                for g in gfids[::97]:  # stale bytes first, so each round really writes
                    with open(os.path.join(mnt, ".gfid", g), "r+b") as fh:
                        fh.write(b"stale")
                times[name].append(_send(eng, gfids))
                for g in gfids[::97]:
                    assert open(os.path.join(mnt, ".gfid", g), "rb").read() == content[g]
        ratios = [lt / rt for lt, rt in zip(times["lane"], times["rsync"])]
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\n{N} x 2 KiB into a volume, sync-jobs 3: rsync {N / med['rsync']:.0f} files/s "
              f"[{min(times['rsync']):.2f}-{max(times['rsync']):.2f} s], lane "
              f"{N / med['lane']:.0f} files/s [{min(times['lane']):.2f}-"
              f"{max(times['lane']):.2f} s]; lane/rsync time {statistics.median(ratios):.2f} "
              f"[{min(ratios):.2f}-{max(ratios):.2f}]")
        benchmark.extra_info.update(rsync_s=times["rsync"], lane_s=times["lane"], ratios=ratios)
        benchmark.pedantic(lambda: None, rounds=1)
    finally:
        if mounted:
            unmount(mnt)
        if made:
            run("gluster", "--mode=script", "volume", "stop", vol, "force", check=False)
            run("gluster", "--mode=script", "volume", "delete", vol, check=False)
        next(gen, None)
