"""A large file appended across many journals of a real volume is sent once
(issue 12, item 7; gluster/glusterfs#4321: gsyncd re-sent a 92 GB file 127 times).

A live worker follows a real GlusterFS brick (rollover 1 s) into a local replica
with the rsync engine and ``log-rsync-performance``, so rsync itself reports
what it moved. A file is appended every 0.2 s until six journals wrote it; rsync's
``Total transferred file size`` over the whole run must stay within 1.2x the
file's final size, while the brick's journals show the file written in at least
five of them (gsyncd would send it whole once per batch).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

from gluster_lab import (equal_with_gfids, glusterd_running, remove_volumes, run,
                         start_volume, wait_for)
from streamsync.decode import decode_journal
from streamsync.records import DataRecord

pytestmark = pytest.mark.gluster

MiB = 1 << 20


@pytest.fixture(scope="module")
def glusterd(tmp_path_factory):
    yield from glusterd_running(tmp_path_factory)



def _journals_writing(brick: str, gfid: str) -> int:
    cdir = os.path.join(brick, ".glusterfs", "changelogs")
    n = 0
    for top, _dirs, names in os.walk(cdir):  # GlusterFS 10 keeps them in YYYY/MM/DD
        for name in names:
            if name.startswith("CHANGELOG."):
                with open(os.path.join(top, name), "rb") as fh:
                    if any(isinstance(r, DataRecord) and r.gfid == gfid
                           for r in decode_journal(fh.read())):
                        n += 1
    return n


def _transferred(log: str) -> list[int]:
    """rsync's own ``Total transferred file size`` of each run, in bytes."""
    return [int(m.replace(",", "")) for m in
            re.findall(r"Total transferred file size: ([\d,]+) bytes", log)]


def test_appended_file_is_sent_once(glusterd, tmp_path):
    host = glusterd
    vol = f"sshot{uuid.uuid4().hex[:6]}"
    brick = str(tmp_path / "brick")
    made, mounts = [], []
    worker = None
    err = tmp_path / "worker.log"
    try:
        run("gluster", "--mode=script", "volume", "create", vol, f"{host}:{brick}", "force")
        made.append(vol)
        for opt, val in (("changelog.changelog", "on"), ("changelog.rollover-time", "1")):
            run("gluster", "volume", "set", vol, opt, val)
        start_volume(vol)
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        run("mount", "-t", "glusterfs", f"{host}:/{vol}", str(mnt))
        mounts.append(mnt)
        replica = str(tmp_path / "replica")
        with open(err, "w") as fh:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streamsync", "replicate", "--follow", "-v",
                 "--engine", "rsync", "-o", "change-interval=1",
                 "-o", "hot-file-size=1048576", "-o", "log-rsync-performance=true",
                 "-o", "copy-small-files=1048576",  # the big file goes to rsync: its --stats
                 brick, replica], stdout=subprocess.DEVNULL, stderr=fh)
        (mnt / "ready").write_bytes(b"r")  # the worker follows journals once this lands
        wait_for(lambda: os.path.exists(os.path.join(replica, "ready")),
                 "the worker to follow the journals", timeout=120, interval=0.5)
        big = mnt / "big.log"
        with open(big, "wb") as fh:
            fh.write(os.urandom(2 * MiB))
            fh.flush()
            gfid = str(uuid.UUID(bytes=os.getxattr(os.path.join(brick, "big.log"),
                                                   "trusted.gfid")))
            # a writer that keeps appending (it never pauses for a whole change
            # interval) until six published journals have written the file
            give_up = time.monotonic() + 60
            while _journals_writing(brick, gfid) < 6:
                assert time.monotonic() < give_up, "six journals writing big.log"
                fh.write(os.urandom(MiB // 8))
                fh.flush()
                time.sleep(0.2)  # the writer's pace, not a wait for a condition
        wait_for(lambda: equal_with_gfids(brick, replica), "the replica to equal the brick",
                 timeout=120, interval=1)
        assert worker.poll() is None, err.read_text()[-2000:]
        assert _journals_writing(brick, gfid) >= 5
        final = os.path.getsize(os.path.join(brick, "big.log"))
        sent = _transferred(err.read_text())
        assert sent, err.read_text()[-2000:]
        assert sum(sent) <= 1.2 * final, (sent, final)
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=120)
        remove_volumes(made, mounts)
