"""Take over a gsyncd session and hand it back (issue 12, item 1), on real volumes.

A real gsyncd geo-replication session (``scripts/gsyncd_session.sh``: sshd on
127.0.0.1:22, push-pem, the secondary read-only) syncs a first workload; it is
stopped, with its stimes left in the primary brick root's xattrs. ``streamsync
replicate --xattr-stime auto BRICK HOST::SECONDARY`` continues from those stimes:
it sends exactly the entry ops and files of the second workload, nothing gsyncd
had synced, and the secondary equals the primary, gfids included. Then gsyncd is
started again and continues from the stimes streamsync left: it creates only the
third workload's files.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid

import pytest

from gluster_lab import (GSYNCD_SESSION, glusterd_running, gsyncd_ready, remove_volumes, run,
                         start_volume, wait_for)
from streamsync.cli import main
from streamsync.discover import discover, read_changelog, read_htime
from streamsync.errors import SourceError
from streamsync.state.xattr import unpack_stime
from streamsync.verify import verify

pytestmark = pytest.mark.gluster


@pytest.fixture(scope="module")
def glusterd(tmp_path_factory):
    yield from glusterd_running(tmp_path_factory)


def _volume_id(brick: str) -> str:
    return str(uuid.UUID(bytes=os.getxattr(brick, "trusted.glusterfs.volume-id")))


def _mount_gfid(path: str) -> str:
    return os.getxattr(path, "glusterfs.gfid.string").rstrip(b"\0").decode()


def _stime(brick: str, key: str) -> int:
    try:
        return unpack_stime(os.getxattr(brick, key)).sec
    except OSError:
        return 0


def _rolled_over_after(brick: str, t: float) -> bool:
    hdir = os.path.join(brick, ".glusterfs", "changelogs", "htime")
    return any(e.ts > t + 1 for n in os.listdir(hdir) for e in read_htime(os.path.join(hdir, n)))


def _last_journal_with(brick: str, gfids: set[str]) -> int:
    """The stamp of the last published journal holding a record of one of ``gfids``."""
    return max(c.ts for c in discover(brick) if any(r.gfid in gfids for r in read_changelog(c)))


def _owed(brick: str, since: int) -> tuple[int, set[str]]:
    """Entry records, and gfids of data records, of the journals stamped at or after
    ``since``: what a worker continuing from that stime sends (gsyncd's rule)."""
    entries, data = 0, set()
    for c in discover(brick):
        if c.ts >= since:
            for r in read_changelog(c):
                if r.TYPE == "E":
                    entries += 1
                elif r.TYPE == "D":
                    data.add(r.gfid)
    return entries, data


def _creates_from(brick: str, since: int) -> int:
    return sum(1 for c in discover(brick) if c.ts >= since for r in read_changelog(c)
               if r.TYPE == "E" and r.fop == "CREATE")


def _creates_logged(log: str, since: int) -> int:
    """CREATEs gsyncd says it applied in the log written after byte ``since``."""
    try:
        with open(log, errors="replace") as fh:
            fh.seek(since)
            text = fh.read()
    except FileNotFoundError:
        return 0
    return sum(int(n) for n in re.findall(r"Entry Time Taken \[.*?\{CRE=(\d+)\}", text))


def test_streamsync_takes_over_a_gsyncd_session_and_hands_it_back(glusterd, tmp_path,
                                                                   tmp_path_factory, capsys):
    host = glusterd
    tag = uuid.uuid4().hex[:6]
    pri, sec = f"sstk{tag}p", f"sstk{tag}s"
    pm, sm, bricks = tmp_path / "pm", tmp_path / "sm", tmp_path / "bricks"
    for d in (pm, sm, bricks):
        d.mkdir()
    brick = str(bricks / pri)
    made: list[str] = []
    mounted: list = []
    session = False
    log = f"/var/log/glusterfs/geo-replication/{pri}_{host}_{sec}/gsyncd.log"
    with gsyncd_ready(tmp_path / "sshd", tmp_path_factory) as env:
        try:
            for v in (pri, sec):
                run("gluster", "--mode=script", "volume", "create", v, f"{host}:{bricks / v}",
                    "force")
                made.append(v)
            run("gluster", "volume", "set", pri, "changelog.changelog", "on")
            run("gluster", "volume", "set", pri, "changelog.rollover-time", "3")
            start_volume(pri)
            start_volume(sec)
            run("bash", GSYNCD_SESSION, "create", pri, sec, timeout=300, env=env)
            session = True

            def gsyncd_start() -> None:
                # on a freshly started brick: a brick running since before the session
                # sends gsyncd no changelog notifications (the lab notes' stall)
                run("gluster", "--mode=script", "volume", "stop", pri, "force")
                start_volume(pri)
                run("bash", GSYNCD_SESSION, "start", pri, sec, timeout=300)

            run("mount", "-t", "glusterfs", f"{host}:/{pri}", str(pm))
            mounted.append(pm)
            run("mount", "-t", "glusterfs", f"{host}:/{sec}", str(sm))
            mounted.append(sm)
            p = lambda *a: os.path.join(pm, *a)  # noqa: E731
            key = f"trusted.glusterfs.{_volume_id(brick)}.{_volume_id(str(bricks / sec))}.stime"

            def equal() -> bool:
                try:
                    return not verify(str(pm), str(sm), gfids=True)
                except (OSError, SourceError):  # the primary's client reconnecting after
                    return False                # the volume restart gsyncd_start does

            def published(written: float) -> None:
                """Wait for a rollover after ``written`` (HTIME lists every rollover,
                also those that wrote no journal): every record before it is out."""
                wait_for(lambda: _rolled_over_after(brick, written),
                         "a rollover after the last write", timeout=60, interval=0.5)

            def stime() -> int:
                return _stime(brick, key)

            def gsyncd_until(what: str, done) -> None:
                """gsyncd from a freshly started primary until ``done()``, then paused.
                Its first crawl (hybrid, or history from a stime) covers every journal
                published before it registered, which is all this test asks of it:
                its live notifications are the path the lab saw stall, and the test
                writes nothing while gsyncd runs."""
                gsyncd_start()
                wait_for(done, f"gsyncd to sync {what}", timeout=240, interval=1)
                run("bash", GSYNCD_SESSION, "pause", pri, sec, timeout=300)

            # 0. gsyncd's first run, on an empty primary: its hybrid crawl sets a stime
            gsyncd_until("an empty volume", lambda: stime() > 0 and equal())

            # 1. a first workload through gsyncd's history crawl from that stime
            os.mkdir(p("a"))
            for i in range(20):  # in two journals at least: the last one holding a
                with open(p("a", f"f{i}"), "wb") as fh:  # record is taken up again
                    fh.write(os.urandom(1000 + i))
                if i == 9:
                    published(time.time())
            published(time.time())
            ours = {_mount_gfid(p("a"))} | {_mount_gfid(p("a", f"f{i}")) for i in range(20)}
            last_a = _last_journal_with(brick, ours)
            gsyncd_until("the first workload", lambda: stime() >= last_a - 1 and equal())
            gsyncd_stime = unpack_stime(os.getxattr(brick, key))

            # 2. streamsync continues from gsyncd's stime: exactly the journals gsyncd
            # would take up itself (its rule: every journal stamped at or after the
            # stime), none before; what it sends is counted from those journals
            os.mkdir(p("b"))
            for i in range(15):
                with open(p("b", f"g{i}"), "wb") as fh:
                    fh.write(os.urandom(500 + i))
            os.rename(p("a", "f0"), p("b", "moved"))
            published(time.time())
            entries, data = _owed(brick, gsyncd_stime.sec)
            skipped_entries, _ = _owed(brick, 0)
            assert skipped_entries > entries >= 17  # the first workload is not sent again
            capsys.readouterr()
            assert main(["replicate", "--json", "--xattr-stime", "auto", brick,
                         f"{host}::{sec}"]) == 0
            summary = json.loads(capsys.readouterr().out)
            assert (summary["entry_ops"], summary["data_files"]) == (entries, len(data)), summary
            wait_for(equal, "the secondary to equal the primary after streamsync", timeout=30,
                     interval=0.5)
            streamsync_stime = unpack_stime(os.getxattr(brick, key))
            assert streamsync_stime > gsyncd_stime

            # 3. gsyncd continues from streamsync's stime (history crawl from it)
            os.mkdir(p("c"))
            for i in range(10):
                with open(p("c", f"h{i}"), "wb") as fh:
                    fh.write(os.urandom(300 + i))
            os.unlink(p("a", "f1"))
            published(time.time())
            creates = _creates_from(brick, streamsync_stime.sec)
            assert creates >= 10
            since = os.path.getsize(log) if os.path.exists(log) else 0
            last_c = _last_journal_with(brick, {_mount_gfid(p("c"))})
            gsyncd_until("the third workload", lambda: stime() >= last_c - 1 and equal())
            assert _creates_logged(log, since) == creates  # nothing before streamsync's stime
        finally:
            remove_volumes(made, mounted, (pri, sec) if session else None)
