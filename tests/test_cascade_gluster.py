"""Cascades (issue 12, item 4): A -> B -> C on real volumes.

B is a GlusterFS volume that streamsync writes (through its aux-gfid mount, as
gsyncd's secondary side) and whose own brick journals feed the second hop to C.
After a workload on A, C equals A, gfids included, and so does a last-byte
change of an existing file that keeps its size (gluster/glusterfs#4200: gsyncd's
third volume never saw such a change: its rsync quick check skipped it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest

from gluster_lab import (equal_with_gfids, glusterd_running, remove_volumes, run,
                         start_volume, wait_for)

pytestmark = pytest.mark.gluster


@pytest.fixture(scope="module")
def glusterd(tmp_path_factory):
    yield from glusterd_running(tmp_path_factory)



def test_a_to_b_to_c_and_a_last_byte_change(glusterd, tmp_path):
    host = glusterd
    tag = uuid.uuid4().hex[:6]
    vols = {k: f"sscc{tag}{k}" for k in "abc"}
    bricks = {k: str(tmp_path / "bricks" / v) for k, v in vols.items()}
    (tmp_path / "bricks").mkdir()
    made, mounts, workers = [], [], []
    try:
        for k, v in vols.items():
            run("gluster", "--mode=script", "volume", "create", v, f"{host}:{bricks[k]}", "force")
            made.append(v)
            if k in "ab":  # the sources of a hop journal their changes
                for opt, val in (("changelog.changelog", "on"),
                                 ("changelog.rollover-time", "3")):
                    run("gluster", "volume", "set", v, opt, val)
            start_volume(v)
        pa, pc = tmp_path / "pa", tmp_path / "pc"
        for k, m in (("a", pa), ("c", pc)):
            m.mkdir()
            run("mount", "-t", "glusterfs", f"{host}:/{vols[k]}", str(m))
            mounts.append(m)
        for src, dst in (("a", "b"), ("b", "c")):
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "streamsync", "replicate", "--follow", "-q",
                 "-o", "change-interval=1", bricks[src], f"{host}::{vols[dst]}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        p = lambda *x: os.path.join(pa, *x)  # noqa: E731
        os.makedirs(p("d", "e"))
        for i in range(30):
            with open(p("d", f"f{i}"), "wb") as fh:
                fh.write(os.urandom(100 * i + 1))
        os.rename(p("d", "f3"), p("d", "e", "moved"))
        os.symlink("f4", p("d", "sl"))
        os.link(p("d", "f5"), p("d", "hl"))
        with open(p("data.bin"), "wb") as fh:
            fh.write(os.urandom(65536))
        wait_for(lambda: equal_with_gfids(str(pa), str(pc)), "C to equal A through B", timeout=180,
                 interval=1)
        # the case of #4200: the last byte of an existing file, same size
        with open(p("data.bin"), "r+b") as fh:
            fh.seek(-1, os.SEEK_END)
            last = fh.read(1)
            fh.seek(-1, os.SEEK_END)
            fh.write(bytes([last[0] ^ 0xFF]))
        wait_for(lambda: equal_with_gfids(str(pa), str(pc)), "C to see A's last-byte change",
                 timeout=180, interval=1)
        for w in workers:
            assert w.poll() is None, w.stderr.read()[-2000:]
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                w.wait(timeout=120)
        remove_volumes(made, mounts)
