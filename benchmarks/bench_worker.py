"""Worker benchmarks, each a ratio against a reference measured in the same run.

Run: ``.venv/bin/python -m pytest benchmarks/bench_worker.py --benchmark-only -s``

A brick of ``BENCH_WORKER_FILES`` (default 5000) 1 KiB files in 50 directories
is built once (through a :class:`~streamsync.sinks.replica.ReplicaSink`, which
makes the visible tree, the ``.glusterfs`` handles and the gfid xattrs).

* ``test_xsync_walk``: the hybrid crawl's record stream (walk, lstat, gfid
  xattr, records, rendered journal text) vs the least work any crawl does on
  the same tree: ``os.walk`` + ``os.lstat`` of every name;
* ``test_xsync_initial_sync``: a first sync of the brick by the worker (hybrid
  crawl through the pipeline, the replica sink and rsync) vs ``rsync -a`` of the
  visible tree into an empty directory;
* ``test_serve_overhead``: applying the brick's entry ops through ``streamsync
  serve`` (JSON lines over a pipe to a subprocess; ssh replaced by a local
  shell so only the protocol is measured) vs the same ops on a local sink.
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

from streamsync.crawl.select import run_worker
from streamsync.crawl.xsync import XsyncChunk, xsync_chunks
from streamsync.ops import EntryOp
from streamsync.options import Options
from streamsync.parse import render_processed
from streamsync.records import ROOT_GFID
from streamsync.remote.client import RemoteReplica
from streamsync.remote.spec import parse_replica
from streamsync.sinks.replica import ReplicaSink

N_FILES = int(os.environ.get("BENCH_WORKER_FILES", "5000"))
N_DIRS = 50
ROUNDS = int(os.environ.get("BENCH_WORKER_ROUNDS", "3"))


def _ops(seed: int = 3) -> list[EntryOp]:
    import random
    rng = random.Random(seed)
    new = lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))  # noqa: E731
    ops, dirs = [], []
    for d in range(N_DIRS):
        g = new()
        dirs.append((g, f"dir{d:02d}"))
        ops.append(EntryOp("MKDIR", g, ROOT_GFID, f"dir{d:02d}", mode=0o40755, uid=0, gid=0))
    for i in range(N_FILES):
        ops.append(EntryOp("CREATE", new(), dirs[i % N_DIRS][0], f"file{i:05d}.dat",
                           mode=0o100644, uid=0, gid=0))
    return ops


@pytest.fixture(scope="module")
def brick(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("wbrick") / "brick")
    ops = _ops()
    sink = ReplicaSink(root)
    assert sink.apply_entries(ops) == []
    sink.close()
    data = os.urandom(1024)
    for i in range(N_FILES):
        with open(os.path.join(root, f"dir{i % N_DIRS:02d}", f"file{i:05d}.dat"), "wb") as fh:
            fh.write(data)
    os.makedirs(os.path.join(root, ".glusterfs", "changelogs"), exist_ok=True)
    return root, ops


def _report(benchmark, name: str, ours: list[float], ref: list[float], unit: int) -> float:
    o, r = statistics.median(ours), statistics.median(ref)
    ratio = o / r
    benchmark.extra_info.update({"ours_s": o, "reference_s": r, "ratio": ratio})
    print(f"\n{name}: ours {o:.3f} s ({unit / o:,.0f} objects/s), reference {r:.3f} s, "
          f"ratio {ratio:.2f}x")
    return ratio


def test_xsync_walk(benchmark, brick):
    root, _ = brick

    def ours():
        n = 0
        for ev in xsync_chunks(root, register_time=1):
            if isinstance(ev, XsyncChunk):
                n += len(render_processed(ev.records))
        return n

    def reference():
        n = 0
        for d, dirs, files in os.walk(root):
            if d == root:
                dirs.remove(".glusterfs")
            for name in dirs + files:
                os.lstat(os.path.join(d, name))
                n += 1
        return n

    o, r = [], []
    for _ in range(ROUNDS):
        t = time.perf_counter(); reference(); r.append(time.perf_counter() - t)  # noqa: E702
        t = time.perf_counter(); ours(); o.append(time.perf_counter() - t)  # noqa: E702
    benchmark.pedantic(ours, rounds=1, iterations=1)
    _report(benchmark, "xsync record stream vs os.walk+lstat", o, r, N_FILES + N_DIRS)


@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")
def test_xsync_initial_sync(benchmark, brick, tmp_path):
    root, _ = brick
    o, r = [], []
    for i in range(ROUNDS):
        dst = tmp_path / f"rsync{i}"
        t = time.perf_counter()
        subprocess.run(["rsync", "-a", "--exclude=/.glusterfs", root + "/", str(dst)], check=True)
        r.append(time.perf_counter() - t)
        rep = tmp_path / f"rep{i}"
        t = time.perf_counter()
        s = run_worker(root, str(rep), mode="xsync", register_time=1, retry_delay=0)
        o.append(time.perf_counter() - t)
        assert s.results[0]["data_files"] == N_FILES
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    _report(benchmark, "worker first sync (xsync) vs rsync -a", o, r, N_FILES + N_DIRS)


def test_serve_overhead(benchmark, brick, tmp_path):
    _, ops = brick
    fake_ssh = "bash -c 'exec bash -c \"${@: -1}\"' fake-ssh"
    opts = Options.from_pairs([f"ssh-command={fake_ssh}", "ssh-options="])
    o, r = [], []
    for i in range(ROUNDS):
        sink = ReplicaSink(tmp_path / f"local{i}")
        t = time.perf_counter()
        assert sink.apply_entries(ops) == []
        r.append(time.perf_counter() - t)
        sink.close()
        rr = RemoteReplica(parse_replica(f"localhost:{tmp_path}/remote{i}"), options=opts,
                           remote_command=f"{sys.executable} -m streamsync")
        rr.ping()  # connection set-up is not part of the figure
        t = time.perf_counter()
        for k in range(0, len(ops), 500):  # one request per 500 ops (a journal's worth)
            assert rr.apply_entries(ops[k:k + 500]) == []
        o.append(time.perf_counter() - t)
        rr.close()
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    _report(benchmark, "entry ops through serve vs local sink", o, r, len(ops))


def _private_sshd(d):
    """A private sshd on a free loopback port with a key made here (None if impossible)."""
    import socket
    if not os.path.exists("/usr/sbin/sshd") or os.geteuid() != 0:
        return None
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for n in ("host", "key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/{n}"], check=True)
    shutil.copy(f"{d}/key.pub", f"{d}/authorized_keys")
    with open(f"{d}/cfg", "w") as fh:
        fh.write(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nPidFile {d}/pid\n"
                 f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n"
                 "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n")
    if subprocess.run(["/usr/sbin/sshd", "-f", f"{d}/cfg"]).returncode != 0:
        return None
    time.sleep(0.3)
    opts = (f"-i {d}/key -oStrictHostKeyChecking=no -oUserKnownHostsFile=/dev/null "
            "-oBatchMode=yes -oLogLevel=ERROR")
    return port, opts


def test_remote_first_sync(benchmark, brick, tmp_path):
    """First sync (hybrid crawl) to ``root@127.0.0.1:/path`` through a private sshd
    (serve over ssh + rsync over the ControlMaster socket) vs the same to a local
    directory."""
    root, _ = brick
    got = _private_sshd(tmp_path)
    if got is None:
        pytest.skip("no private sshd possible here (needs root and openssh-server)")
    port, ssh_opts = got
    opts = Options.from_pairs([f"ssh-port={port}", f"ssh-options={ssh_opts}"])
    o, r = [], []
    try:
        for i in range(ROUNDS):
            t = time.perf_counter()
            run_worker(root, str(tmp_path / f"local{i}"), mode="xsync", register_time=1,
                       retry_delay=0)
            r.append(time.perf_counter() - t)
            t = time.perf_counter()
            run_worker(root, f"127.0.0.1:{tmp_path}/remote{i}", mode="xsync", register_time=1,
                       retry_delay=0, options=opts, state_path=str(tmp_path / f"s{i}.sqlite"),
                       working_dir=str(tmp_path / f"w{i}"),
                       remote_command=f"{sys.executable} -m streamsync")
            o.append(time.perf_counter() - t)
    finally:
        with open(tmp_path / "pid") as fh:
            os.kill(int(fh.read()), 15)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    _report(benchmark, "first sync over ssh vs to a local directory", o, r, N_FILES + N_DIRS)
