"""The worker end to end: mode choice and hand-over driven by the stimes, status
file contents per phase, checkpoints, a real brick snapshot, many bricks."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from test_worker_brick import Brick

from streamsync.crawl.select import run_worker, run_workers
from streamsync.target import default_state_path
from streamsync.options import Options
from streamsync.records import Stime
from streamsync.state import SqliteState
from streamsync.status import status_file_name
from streamsync.verify import verify, verify_manifest

DEMO = Path(__file__).parent.parent / "examples" / "demo-brick"


class Recorder:
    """Snapshot of the gsyncd status file after every batch, plus sleeps."""

    def __init__(self, status_path: str) -> None:
        self.path = status_path
        self.phases: list[tuple[str, str, str]] = []
        self.sleeps: list[float] = []

    def progress(self, mode, result) -> None:
        with open(self.path) as fh:
            f = json.load(fh)
        self.phases.append((mode, f["worker_status"], f["crawl_status"]))

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)

    def file(self) -> dict:
        with open(self.path) as fh:
            return json.load(fh)


def _dedup(seq):
    out = []
    for x in seq:
        if not out or out[-1] != x:
            out.append(x)
    return out


def test_handover_history_xsync_live(tmp_path):
    T = int(time.time()) - 100000
    b = Brick(tmp_path / "brick")
    rep = str(tmp_path / "rep")
    b.mkdir("a")
    b.create("a/f1", b"one")
    b.symlink("f1", "a/s")
    b.rollover(T + 15)
    b.create("a/f2", b"two")
    b.link("a/f1", "l1")
    b.rollover(T + 30)
    src = os.path.abspath(b.root)
    status_path = os.path.join(os.path.dirname(default_state_path(src, rep)), status_file_name(src))

    # run 1 - no stime: history cannot start -> hybrid crawl capped at registration -> live
    R1 = T + 40
    rec = Recorder(status_path)
    opts = Options.from_pairs(["checkpoint=%d" % (T + 42), "change-interval=0"])
    s1 = run_worker(b.root, rep, register_time=R1, options=opts, sleep=rec.sleep,
                    progress=rec.progress, retry_delay=0)
    assert s1.modes == ("xsync", "live")
    assert s1.fallback.startswith("NoStimeAvailable")
    assert s1.data_stime == Stime(R1, 0)
    assert verify(b.root, rep) == []
    assert _dedup(rec.phases) == [("xsync", "Active", "Hybrid Crawl"),
                                  ("live", "Active", "Changelog Crawl")]
    f = rec.file()
    assert f["last_synced"] == R1 and f["checkpoint_completed"] == "No"
    assert f["worker_status"] == "Stopped" and (f["entry"], f["data"], f["meta"]) == (0, 0, 0)

    # changes after the registration, journaled
    b.create("a/f3", b"three")
    b.rename("a/f2", "f2moved")
    b.unlink("l1")
    b.write("a/f1", b"ONE, rewritten")
    b.chmod("a/f1", 0o600)
    b.rollover(T + 45)
    b.rollover(T + 60)  # an empty rollover: history reaches past the registration

    # run 2 - stime R1 is inside the HTIME index: history, then live (no xsync)
    rec = Recorder(status_path)
    s2 = run_worker(b.root, rep, register_time=T + 55, options=opts, sleep=rec.sleep,
                    progress=rec.progress, retry_delay=0)
    assert s2.modes == ("history", "live") and s2.fallback is None
    assert s2.data_stime == Stime(T + 44, 0)
    assert verify(b.root, rep) == []
    assert ("history", "Active", "History Crawl") in rec.phases
    assert rec.sleeps == []
    f = rec.file()
    # checkpoint T+42 <= last_synced T+44: completed, with its time
    assert f["checkpoint_completed"] == "Yes" and f["checkpoint_time"] == T + 42
    assert abs(f["checkpoint_completion_time"] - time.time()) < 60
    done_at = f["checkpoint_completion_time"]

    # changelog switched off: a gap nobody journaled; on again with a new HTIME
    b.changelog_off()
    b.create("gap", b"made while changelog was off")
    b.mkdir("gapdir")
    b.changelog_on()
    b.create("a/after", b"after")
    b.rollover(T + 200)

    # run 3 - history ends before the registration (twice) -> hybrid crawl -> live
    rec = Recorder(status_path)
    s3 = run_worker(b.root, rep, register_time=T + 210, options=opts, sleep=rec.sleep,
                    progress=rec.progress, retry_delay=0)
    assert s3.modes == ("xsync", "live")
    assert s3.fallback.startswith("PartialHistory")
    assert rec.sleeps[:1] == [1]  # the seed's wait before its second history turn
    assert s3.data_stime == Stime(T + 210, 0)
    assert verify(b.root, rep) == []
    f = rec.file()
    assert f["checkpoint_completion_time"] == done_at  # not moved by later updates
    st = SqliteState(default_state_path(src, rep))
    assert "CHANGELOG.%d" % (T + 200) in st.done_names()
    st.close()


def test_forced_modes(tmp_path):
    T = int(time.time()) - 100000
    b = Brick(tmp_path / "brick")
    b.mkdir("d")
    b.create("d/f", b"x")
    b.rollover(T + 15)
    rep = str(tmp_path / "rep")
    s = run_worker(b.root, rep, mode="live", register_time=T, retry_delay=0)
    assert s.modes == ("live",) and s.data_stime == Stime(T + 14, 0)
    assert verify(b.root, rep) == []
    b.create("d/g", b"y")
    b.rollover(T + 30)
    b.rollover(T + 45)
    s = run_worker(b.root, rep, mode="history", register_time=T + 40, retry_delay=0)
    assert s.modes == ("history",) and s.data_stime == Stime(T + 29, 0)
    assert verify(b.root, rep) == []
    b.journaling = False
    b.create("d/unjournaled", b"z")
    s = run_worker(b.root, rep, mode="xsync", register_time=T + 50, retry_delay=0)
    assert s.modes == ("xsync",)
    assert verify(b.root, rep) == []
    with pytest.raises(Exception, match="unknown crawl mode"):
        run_worker(b.root, rep, mode="bogus")
    with pytest.raises(Exception, match="one state file per brick"):
        run_workers([b.root, b.root], rep, state_path=str(tmp_path / "x.sqlite"))


def _demo_brick(tmp_path) -> str:
    brick = tmp_path / "demo"
    brick.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xzf",
                    str(DEMO / "demo.tar.gz"), "-C", str(brick)], check=True)
    return str(brick)


def test_real_brick_snapshot_without_stime(tmp_path):
    """A brick with existing data and no stime: hybrid crawl then live; the replica
    equals the FUSE manifest, the two fifos included (our hybrid crawl journals
    fifos, sockets and devices too; gsyncd's drops them: specials=False)."""
    brick = _demo_brick(tmp_path)
    rep = str(tmp_path / "rep")
    s = run_worker(brick, rep, register_time=1795470720, retry_delay=0)
    assert s.modes == ("xsync", "live") and s.open_failures == 0
    assert verify_manifest(DEMO / "demo.manifest.jsonl", rep) == []
    rep2 = str(tmp_path / "rep2")
    s = run_worker(brick, rep2, register_time=1795470720, retry_delay=0,
                   xsync_kwargs={"specials": False})
    diffs = verify_manifest(DEMO / "demo.manifest.jsonl", rep2)
    assert sorted(d.path for d in diffs) == ["media/pipe", "with space/named pipe"]
    assert {d.field for d in diffs} == {"missing"}


def test_real_brick_snapshot_with_stime_uses_history(tmp_path):
    """A brick with a stime at the start of its journals: history replays them all
    (fifos included) and the replica equals the manifest."""
    brick = _demo_brick(tmp_path)
    rep = str(tmp_path / "rep")
    os.makedirs(os.path.join(rep, ".glusterfs", "streamsync"))
    st = SqliteState(default_state_path(os.path.abspath(brick), rep))
    st.set_data_stime((1795470688, 0))
    st.close()
    s = run_worker(brick, rep, register_time=1795470710, retry_delay=0)
    assert s.modes == ("history", "live")
    assert s.data_stime == Stime(1795470713, 0)
    assert verify_manifest(DEMO / "demo.manifest.jsonl", rep) == []


def test_many_bricks_in_parallel_processes(tmp_path):
    T = int(time.time()) - 100000
    bricks = []
    for i in range(3):
        b = Brick(tmp_path / f"b{i}", seed=i + 1)
        b.mkdir("shared")  # DHT: directories exist on every brick
        b.create(f"shared/file{i}", b"x" * (i + 1))
        b.rollover(T + 15)
        bricks.append(b)
    # same gfid for the shared directory on every brick, as DHT makes it
    g = bricks[0].gfid_of("shared")
    import uuid
    for b in bricks[1:]:
        old = b.gfid_of("shared")
        os.setxattr(b.path("shared"), "trusted.gfid", uuid.UUID(g).bytes)
        oh = os.path.join(b.root, ".glusterfs", old[:2], old[2:4], old)
        nh = os.path.join(b.root, ".glusterfs", g[:2], g[2:4], g)
        os.makedirs(os.path.dirname(nh), exist_ok=True)
        os.rename(oh, nh)
    rep = str(tmp_path / "rep")
    seen = []
    out = run_workers([b.root for b in bricks], rep, register_time=T + 20, retry_delay=0,
                      progress=seen.append, poll=0.1)
    assert [r["ok"] for r in out] == [True, True, True], out
    # one combined display: the last call shows every worker, done
    assert len(seen[-1]) == 3
    assert {r["worker_status"] for r in seen[-1]} == {"Stopped"}
    assert {r["crawl_status"] for r in seen[-1]} == {"Changelog Crawl"}
    assert sorted(os.listdir(os.path.join(rep, "shared"))) == ["file0", "file1", "file2"]
    # one state and one lock per brick
    sdir = os.path.join(rep, ".glusterfs", "streamsync")
    assert len([n for n in os.listdir(sdir) if n.endswith(".sqlite")]) == 3
    from streamsync.cli.status import collect
    rows = collect([sdir])
    assert sorted(r["source"] for r in rows) == sorted(os.path.abspath(b.root) for b in bricks)
    assert all(r["last_synced"] == T + 20 for r in rows)


def _cli_args(**kw):
    import argparse
    base = dict(source=[], replica="", state=None, xattr_stime=None, status_dir=None, option=[],
                config=None, engine=None, changelogs=None, archive=False, once=False,
                follow=False, retry_failed=False, json=False, quiet=False, verbose=False,
                mode=None, bricks=None, remote_command=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_replicate_worker_path(tmp_path, capsys):
    """What 'streamsync replicate' runs for --mode / several bricks / --bricks FILE."""
    from streamsync.crawl.cli import replicate_main, wants_worker
    b1 = Brick(tmp_path / "b1", seed=1)
    b1.mkdir("x")
    b1.create("x/f", b"1")
    b2 = Brick(tmp_path / "b2", seed=2)
    b2.create("g", b"2")
    rep = str(tmp_path / "rep")
    args = _cli_args(source=[b1.root], replica=rep)
    assert not wants_worker(args)  # one local brick, no mode: the plain replicate path
    args = _cli_args(source=[b1.root], replica=rep, mode="auto", json=True)
    assert wants_worker(args)
    assert replicate_main(args, Options()) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["summary"]["modes"] == ["xsync", "live"]
    assert verify(b1.root, rep) == []
    lst = tmp_path / "bricks.txt"
    lst.write_text(f"# bricks\n{b2.root}\n\n")
    args = _cli_args(source=[b1.root], replica=rep, bricks=str(lst), mode="xsync")
    assert replicate_main(args, Options()) == 0
    text = capsys.readouterr().out
    assert f"{os.path.abspath(b1.root)} -> {rep}: xsync" in text
    assert f"{os.path.abspath(b2.root)} -> {rep}: xsync" in text
    assert sorted(os.listdir(rep)) == [".glusterfs", "g", "x"]
    with pytest.raises(Exception, match="one brick"):
        replicate_main(_cli_args(source=[b1.root, b2.root], replica=rep,
                                 xattr_stime="m:s"), Options())


def test_second_worker_on_the_same_brick_and_replica_is_refused(tmp_path):
    from streamsync.errors import LockHeld
    from streamsync.state.lock import WorkerLock
    b = Brick(tmp_path / "b")
    b.create("f", b"x")
    rep = str(tmp_path / "rep")
    src = os.path.abspath(b.root)
    os.makedirs(os.path.join(rep, ".glusterfs", "streamsync"))
    from streamsync.target import lock_path
    lk = WorkerLock(lock_path(src, rep)).acquire()
    try:
        with pytest.raises(LockHeld):
            run_worker(b.root, rep, register_time=1, retry_delay=0)
        st = SqliteState(default_state_path(src, rep))
        assert st.status()["worker_status"] == "Faulty"
        st.close()
    finally:
        lk.release()


def test_retry_failed_requeues_the_ledger(tmp_path):
    T = int(time.time()) - 100000
    b = Brick(tmp_path / "b")
    g = b.create("f", b"x")
    b.rollover(T + 15)
    rep = str(tmp_path / "rep")
    src = os.path.abspath(b.root)
    os.makedirs(os.path.join(rep, ".glusterfs", "streamsync"))
    st = SqliteState(default_state_path(src, rep))
    st.add_failure("data", g, changelog=f"CHANGELOG.{T + 15}")
    st.close()
    s = run_worker(b.root, rep, mode="live", register_time=T, retry_delay=0, retry_failed=True)
    assert s.open_failures == 0
    assert verify(b.root, rep) == []


def test_brick_list_file_with_subvolumes(tmp_path):
    from streamsync.crawl.select import lock_session, read_brick_entries
    from streamsync.errors import ConfigError
    f = tmp_path / "bricks"
    f.write_text("# node1\n/bricks/a 1\n/bricks/b\n\n/bricks/c 2\n")
    assert read_brick_entries(str(f)) == [("/bricks/a", 1), ("/bricks/b", None), ("/bricks/c", 2)]
    f.write_text("/bricks/a one\n")
    with pytest.raises(ConfigError, match=":1:"):
        read_brick_entries(str(f))
    # peers feeding one replica share a session whatever their brick paths
    assert lock_session("h:/r") == lock_session("h:/r") != lock_session("h:/other")


def test_cli_replicate_mode_auto_then_status(tmp_path):
    """As a user runs it: 'streamsync replicate --mode auto' on a brick with data and
    no stime, then 'streamsync status' on the replica."""
    import sys
    T = int(time.time()) - 100000
    b = Brick(tmp_path / "b")
    b.mkdir("docs")
    b.create("docs/a b.txt", b"hello")
    b.rollover(T + 15)
    rep = tmp_path / "rep"
    r = subprocess.run([sys.executable, "-m", "streamsync", "replicate", "--mode", "auto",
                        "--json", b.root, str(rep)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and out["summary"]["modes"] == ["xsync", "live"]
    assert verify(b.root, rep) == []
    r = subprocess.run([sys.executable, "-m", "streamsync", "status", str(rep), "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert row["source"] == os.path.abspath(b.root) and row["replica"] == str(rep)
    assert row["crawl_status"] == "Changelog Crawl" and row["worker_status"] == "Stopped"
    assert row["last_synced"] == out["summary"]["data_stime"][0]
    r = subprocess.run([sys.executable, "-m", "streamsync", "replicate", "--mode", "bogus",
                        b.root, str(rep)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "invalid choice" in r.stderr
