"""A real GlusterFS: volume with changelogs on loopback, a workload on its FUSE
mount while ``streamsync replicate --follow`` follows the brick, then the
replica is verified against the mount.

Marker ``gluster``. Run it alone with::

    .venv/bin/python -m pytest -m gluster tests/test_gluster_integration.py

Two setups: ascii journals with delete paths and a quick workload (~15 s), binary
journals without delete paths and the lab's public workload ``workload_a.sh``
(copied in ``tests/data/replication``, ~40 s); part of the default run. Needs root and ``/dev/fuse``; installs GlusterFS (Debian ``glusterfs-server``,
``glusterfs-client``) with apt-get when missing, starts ``glusterd -N`` bound to
127.0.0.1 when none runs (as ``../shared/lab/gluster/setup.sh`` does), and
removes its volume afterwards. It is skipped only when GlusterFS cannot be
installed or started, with the reason.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from gluster_lab import glusterd_running, run, start_volume, unmount, wait_journaled
from streamsync.verify import verify

pytestmark = pytest.mark.gluster

_run = run


@pytest.fixture(scope="module")
def glusterd(tmp_path_factory):
    yield from glusterd_running(tmp_path_factory)


def _workload(mnt: str, rng: random.Random, brick: str) -> None:
    j = lambda *p: os.path.join(mnt, *p)  # noqa: E731
    os.makedirs(j("src", "app", "core"))
    os.makedirs(j("data", "raw"))
    os.mkdir(j("with space"))
    for i in range(40):
        with open(j("src", "app", f"m{i}.py"), "wb") as fh:
            fh.write(rng.randbytes(rng.randrange(0, 5000)))
    with open(j("data", "raw", "blob.bin"), "wb") as fh:
        fh.write(rng.randbytes(2 << 20))
    with open(j("with space", "new\nline %20.txt"), "w") as fh:
        fh.write("odd name\n")
    wait_journaled(brick, "CREATE", "new\nline %20.txt")  # the next phase in later journals
    # renames, links, attributes
    os.rename(j("src", "app", "m1.py"), j("data", "m1-moved.py"))
    os.rename(j("src", "app", "core"), j("data", "core-moved"))
    os.link(j("src", "app", "m2.py"), j("data", "m2-hardlink.py"))
    os.symlink("../src/app/m3.py", j("data", "m3-link"))
    os.symlink("/nonexistent/dangling", j("dangling"))
    os.chmod(j("src", "app", "m4.py"), 0o4750)
    os.chown(j("src", "app", "m5.py"), 1000, 1001)
    os.chmod(j("data"), 0o2775)
    wait_journaled(brick, "SYMLINK", "dangling")
    # writes, truncates, deletes
    with open(j("src", "app", "m6.py"), "ab") as fh:
        fh.write(b"appended\n")
    with open(j("data", "raw", "blob.bin"), "r+b") as fh:
        fh.seek(1 << 20)
        fh.write(b"\0" * 65536)
    os.truncate(j("src", "app", "m7.py"), 3)
    os.unlink(j("src", "app", "m8.py"))
    os.unlink(j("src", "app", "m2.py"))  # the hard link stays
    os.mkdir(j("gone"))
    open(j("gone", "f"), "w").close()
    os.unlink(j("gone", "f"))
    os.rmdir(j("gone"))
    os.rename(j("src", "app", "m9.py"), j("src", "app", "m10.py"))  # onto an existing file


# the lab's public workload_a.sh is the very script that made the bundled corpus
WORKLOAD_A = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "gluster-10.3",
                          "workload.sh")


def _workload_a(mnt: str, rng: random.Random, brick: str) -> None:
    """The lab's public corpus workload (9 phases: renames over files, hard links,
    fifos, a char device, xattrs, deep rmdir, 300 bulk files as uid 1000, ...)."""
    subprocess.run(["bash", WORKLOAD_A, mnt, "7", "2.5", "300"], check=True, timeout=120,
                   capture_output=True)


@pytest.mark.parametrize("encoding,delpath,workload", [("ascii", "on", _workload),
                                                       ("binary", "off", _workload_a)],
                         ids=["ascii-delpath-quick", "binary-nodelpath-workload_a"])
def test_follow_a_real_brick_then_verify_against_the_mount(glusterd, tmp_path, encoding, delpath,
                                                           workload):
    host = glusterd
    vol = f"ssit{os.getpid()}{encoding[0]}"
    brick = tmp_path / "brick"
    mnt = tmp_path / "mnt"
    replica = tmp_path / "replica"
    mnt.mkdir()
    rng = random.Random(4)
    _run("gluster", "--mode=script", "volume", "create", vol, f"{host}:{brick}", "force")
    mounted = False
    proc = None
    try:
        for k, v in (("changelog.changelog", "on"), ("changelog.rollover-time", "2"),
                     ("changelog.encoding", encoding),
                     ("changelog.capture-del-path", delpath)):
            _run("gluster", "volume", "set", vol, k, v)
        start_volume(vol)
        _run("mount", "-t", "glusterfs", f"{host}:/{vol}", str(mnt))
        mounted = True
        proc = subprocess.Popen([sys.executable, "-m", "streamsync", "replicate", "--follow",
                                 "-o", "change-interval=1", str(brick), str(replica)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        workload(str(mnt), rng, str(brick))
        deadline = time.monotonic() + 90
        diffs = ["not checked"]
        while time.monotonic() < deadline:
            time.sleep(2)
            if proc.poll() is not None:
                break
            diffs = verify(str(mnt), str(replica)) if replica.exists() else ["no replica yet"]
            if not diffs:
                break
        assert proc.poll() is None, f"replicate exited {proc.returncode}: {proc.stderr.read()}"
        assert diffs == [], [str(d) for d in diffs[:20]]
        from streamsync.verify import scan_tree
        nodes = scan_tree(str(replica))
        assert len(nodes) > 45
        if workload is _workload:
            assert nodes["data/raw/blob.bin"].size == 2 << 20
            assert nodes["src/app/m4.py"].mode == 0o4750 and nodes["dangling"].target == \
                "/nonexistent/dangling"
        else:
            assert nodes["top/overwrite_target"].size == 3  # "m2\n" renamed over it
            assert nodes["top/a"].mode == 0o2755 and "top/sym_abs" not in nodes
            assert nodes["dir with space/fifo 2"].type == "p"
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if mounted:
            unmount(mnt)
        _run("gluster", "--mode=script", "volume", "stop", vol, "force", check=False)
        _run("gluster", "--mode=script", "volume", "delete", vol, check=False)
