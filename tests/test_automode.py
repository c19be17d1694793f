"""``streamsync replicate`` without ``--mode`` picks replay or the hybrid crawl by itself.

The coverage check (every gfid of the brick created by a journal present) is
checked against independent oracles: the gfids the GlusterFS mount showed for
the real demo brick (its manifest) and bricks built by the test whose
unjournaled objects are known. The end-to-end tests compare the replica with
the source brick with ``verify`` (an independent tree walk).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from test_worker_brick import Brick, _handle

from streamsync.cli import main
from streamsync.crawl.cli import ModeChoice, choose_default_mode
from streamsync.crawl.coverage import brick_gfids, journal_coverage
from streamsync.records import ROOT_GFID, EntryRecord, Stime
from streamsync.verify import verify, verify_manifest

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo-brick"
T = 1700000000

needs_rsync = pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync not installed")


def _demo_brick(tmp_path) -> str:
    brick = tmp_path / "demo"
    brick.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xzf",
                    str(DEMO / "demo.tar.gz"), "-C", str(brick)], check=True)
    return str(brick)


def _special(b: Brick, rel: str, kind: int, mode: int = 0o640, rdev: int = 0) -> str:
    """A fifo/socket/device with a gfid and its handle (a hard link), journaled as
    the changelog translator journals a mknod."""
    pg, name = b._parent(rel)
    g = b._gfid()
    os.mknod(b.path(rel), kind | mode, rdev)
    os.chmod(b.path(rel), mode)
    os.setxattr(b.path(rel), "trusted.gfid", uuid.UUID(g).bytes, follow_symlinks=False)
    h = _handle(b.root, g)
    os.makedirs(os.path.dirname(h), exist_ok=True)
    os.link(b.path(rel), h)
    b._log(EntryRecord(g, "MKNOD", pg, name, mode=os.lstat(b.path(rel)).st_mode, uid=0, gid=0))
    return g


def _run(capsys, *argv):
    rc = main(["replicate", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ------------------------------------------------------------- the coverage check
def test_demo_brick_handles_are_the_gfids_the_mount_showed_and_all_journaled(tmp_path):
    brick = _demo_brick(tmp_path)
    shown = {json.loads(line)["gfid"] for line in open(DEMO / "demo.manifest.jsonl")}
    shown.discard(ROOT_GFID)
    assert brick_gfids(brick) == shown
    cov = journal_coverage(brick)
    assert cov.covered and cov.missing == 0 and cov.handles == len(shown)
    assert cov.journals == 11 and cov.htimes == 1
    # without the journal that created the fifos, they are exactly what is missing
    fifos = {json.loads(line)["gfid"] for line in open(DEMO / "demo.manifest.jsonl")
             if json.loads(line)["type"] == "p"}
    assert len(fifos) == 2
    cdir = os.path.join(brick, ".glusterfs", "changelogs")
    out = tmp_path / "without"
    out.mkdir()
    from streamsync.discover import discover, read_changelog
    for cl in discover(cdir):
        if not any(r.TYPE == "E" and r.fop == "MKNOD" for r in read_changelog(cl)):
            shutil.copy(cl.path, out / os.path.basename(cl.path))
    cov = journal_coverage(brick, changelogs=str(out))
    assert not cov.covered and cov.missing >= 2
    assert fifos <= set(brick_gfids(brick)) and set(cov.examples) <= brick_gfids(brick)


def test_preexisting_data_is_not_covered_and_named(tmp_path):
    b = Brick(tmp_path / "b")
    b.journaling = False
    old = {b.mkdir("old"), b.create("old/f", b"before changelog"),
           b.symlink("old/f", "oldlink")}
    b.journaling = True
    new = {b.mkdir("new"), b.create("new/g", b"journaled")}
    b.rollover(T + 15)
    assert brick_gfids(b.root) == old | new
    cov = journal_coverage(b.root)
    assert not cov.covered and cov.missing == 3 and cov.handles == 5
    assert cov.examples == tuple(sorted(old)) and cov.journals == 1
    assert "3 of 5 gfids" in cov.reason
    # once those are unlinked, the journals present cover what is left
    b.unlink("oldlink")
    b.unlink("old/f")
    b.rmdir("old")
    assert journal_coverage(b.root).covered


def test_a_changelog_off_period_is_not_covered_even_with_every_gfid_created(tmp_path):
    b = Brick(tmp_path / "b")
    b.create("f", b"one")
    b.rollover(T + 15)
    assert journal_coverage(b.root).covered
    b.changelog_off()
    b.write("f", b"changed while changelog was off")  # never journaled
    b.changelog_on()
    b.create("g", b"two")
    b.rollover(T + 60)
    cov = journal_coverage(b.root)
    assert cov.missing == 0 and cov.htimes == 2 and not cov.covered
    assert "HTIME" in cov.reason


def test_names_without_any_handle_are_not_covered(tmp_path):
    root = tmp_path / "b"
    (root / ".glusterfs").mkdir(parents=True)
    (root / ".trashcan").mkdir()
    assert journal_coverage(str(root)).covered  # an empty brick
    (root / "plain.txt").write_text("no gfid, no handle")
    cov = journal_coverage(str(root))
    assert not cov.covered and "1 names at the brick root (e.g. 'plain.txt')" in cov.reason


def test_choice_rules():
    assert choose_default_mode("/nonexistent", data_stime=Stime(T, 0)).mode == "replay"
    c = ModeChoice("xsync", "why")
    assert c.line() == "streamsync replicate: mode xsync: why"
    assert c.to_dict() == {"mode": "xsync", "reason": "why", "coverage": None}


# ------------------------------------------------------- replicate picks the mode
@needs_rsync
def test_brick_with_preexisting_data_gets_the_hybrid_crawl_then_replay(tmp_path, capsys):
    b = Brick(tmp_path / "b")
    b.journaling = False  # data from before changelog was turned on
    b.mkdir("old", 0o750)
    b.create("old/f", b"before changelog" * 100, 0o600)
    b.create("old/hard", b"two names")
    b.link("old/hard", "hard2")
    b.symlink("old/f", "oldlink")
    _special(b, "old/fifo", stat.S_IFIFO, 0o620)
    _special(b, "sock", stat.S_IFSOCK, 0o755)
    b.journaling = True
    b.mkdir("new")
    b.create("new/g", b"journaled")
    b.write("old/f", b"rewritten", append=True)
    b.rollover(T + 15)
    rep = tmp_path / "rep"
    rc, out, err = _run(capsys, "--json", b.root, str(rep))
    assert rc == 0
    assert "streamsync replicate: mode xsync: no stime, and 6 of 8 gfids" in err
    doc = json.loads(out)
    assert doc["choice"]["mode"] == "xsync" and doc["choice"]["coverage"]["missing"] == 6
    assert doc["summary"]["modes"] == ["xsync", "live"]
    assert verify(b.root, str(rep)) == []
    assert stat.S_ISFIFO(os.lstat(rep / "old" / "fifo").st_mode)
    assert stat.S_ISSOCK(os.lstat(rep / "sock").st_mode)
    # the next run has a stime: replay of the newer journals
    b.create("new/h", b"after the crawl")
    b.unlink("old/fifo")
    b.rollover(int(time.time()) + 100)
    rc, out, err = _run(capsys, b.root, str(rep))
    assert rc == 0 and "streamsync replicate: mode replay: data stime 20" in err  # a date
    assert "mode replay" not in out  # the mode line is printed once, on stderr
    assert verify(b.root, str(rep)) == []
    assert not os.path.lexists(rep / "old" / "fifo")


@needs_rsync
def test_fully_journaled_demo_brick_is_replayed_fifos_included(tmp_path, capsys):
    brick = _demo_brick(tmp_path)
    rep = tmp_path / "rep"
    shown = {json.loads(line)["gfid"] for line in open(DEMO / "demo.manifest.jsonl")}
    rc, out, err = _run(capsys, "--json", brick, str(rep))
    assert rc == 0
    assert ("streamsync replicate: mode replay: no stime, and the 11 journals present "
            f"create all {len(shown) - 1} gfids in the brick") in err
    doc = json.loads(out)
    assert doc["choice"]["mode"] == "replay" and doc["changelogs"] == 11
    assert verify(brick, str(rep)) == []
    assert verify_manifest(DEMO / "demo.manifest.jsonl", str(rep)) == []
    assert stat.S_ISFIFO(os.lstat(rep / "media" / "pipe").st_mode)


@needs_rsync
def test_mode_replay_forces_the_old_default_and_is_local_only(tmp_path, capsys):
    b = Brick(tmp_path / "b")
    b.journaling = False
    b.create("unjournaled", b"x")
    b.journaling = True
    b.create("journaled", b"y")
    b.rollover(T + 15)
    rep = tmp_path / "rep"
    rc, out, err = _run(capsys, "--mode", "replay", b.root, str(rep))
    assert rc == 0 and "mode replay: forced by --mode replay" in err
    assert sorted(d.path for d in verify(b.root, str(rep))) == ["unjournaled"]
    rc, out, err = _run(capsys, "--mode", "replay", b.root, "nobody@127.0.0.1:/x")
    assert rc == 2 and "--mode replay works with one brick and a local replica" in err
    # --quiet: no mode line
    rc, out, err = _run(capsys, "-q", b.root, str(tmp_path / "rep2"))
    assert rc == 0 and err == "" and out == ""
    assert verify(b.root, str(tmp_path / "rep2")) == []


def test_archive_refuses_an_uncovered_brick(tmp_path, capsys):
    b = Brick(tmp_path / "b")
    b.journaling = False
    b.create("unjournaled", b"x")
    rc, out, err = _run(capsys, "--archive", "--changelogs", b.cdir, b.root,
                        str(tmp_path / "rep"))
    assert rc == 2 and "run once without --archive" in err
    assert not os.path.exists(tmp_path / "rep")


# ------------------------------------------------------ fifos/sockets/devices
@needs_rsync
def test_xsync_replicates_fifos_sockets_and_devices(tmp_path):
    from streamsync.crawl.select import run_worker
    b = Brick(tmp_path / "b")
    b.journaling = False
    b.mkdir("d")
    fifo = _special(b, "d/fifo", stat.S_IFIFO, 0o604)
    sock = _special(b, "d/sock", stat.S_IFSOCK, 0o700)
    os.link(b.path("d/fifo"), b.path("fifo2"))  # a second name: LINK
    os.chown(b.path("d/sock"), 1234, 5678, follow_symlinks=False)
    os.utime(b.path("d/fifo"), (1600000000, 1600000001))
    try:
        dev = _special(b, "null", stat.S_IFCHR, 0o666, os.makedev(1, 3))
    except PermissionError:  # no CAP_MKNOD here: fifos and sockets still checked
        dev = None
    rep = tmp_path / "rep"
    s = run_worker(b.root, str(rep), mode="xsync", retry_delay=0)
    assert s.modes == ("xsync",) and s.open_failures == 0
    assert verify(b.root, str(rep), mtimes=True) == []
    f1, f2 = os.lstat(rep / "d" / "fifo"), os.lstat(rep / "fifo2")
    assert stat.S_ISFIFO(f1.st_mode) and (f1.st_ino, f1.st_nlink) == (f2.st_ino, 3)
    assert int(f1.st_mtime) == 1600000001 and stat.S_IMODE(f1.st_mode) == 0o604
    so = os.lstat(rep / "d" / "sock")
    assert stat.S_ISSOCK(so.st_mode) and (so.st_uid, so.st_gid) == (1234, 5678)
    assert os.path.exists(_handle(str(rep), fifo)) and os.path.exists(_handle(str(rep), sock))
    if dev is not None:
        assert stat.S_ISCHR(os.lstat(rep / "null").st_mode)
