"""End to end on the bundled real GlusterFS 10.3 brick (examples/demo-brick):
replicate, then compare with the namespace the GlusterFS mount showed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import pytest

from streamsync.cli import main
from streamsync.errors import LockHeld
from streamsync.replicate import replicate
from streamsync.target import default_state_path, lock_path
from streamsync.state import SqliteState, WorkerLock
from streamsync.snapshot import extract_brick_snapshot
from streamsync.verify import compare, load_manifest, scan_tree, verify

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "examples", "demo-brick")
MANIFEST = os.path.join(DEMO, "demo.manifest.jsonl")
OWNERS = () if os.geteuid() == 0 else ("uid", "gid")
needs_rsync = pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")


def extract_demo(dest: str) -> str:
    return extract_brick_snapshot(os.path.join(DEMO, "demo.tar.gz"), dest)


@pytest.fixture(scope="module")
def demo_master(tmp_path_factory):
    return extract_demo(str(tmp_path_factory.mktemp("demo") / "brick"))


@pytest.fixture
def brick(demo_master, tmp_path):
    dest = str(tmp_path / "brick")
    subprocess.run(["cp", "-a", demo_master, dest], check=True)
    return dest


def journals(brick):
    return sorted((os.path.join(top, f) for top, _, files in
                   os.walk(os.path.join(brick, ".glusterfs", "changelogs"))
                   for f in files if f.startswith("CHANGELOG.")),
                  key=lambda p: int(p.rsplit(".", 1)[1]))


@needs_rsync
def test_demo_brick_replica_equals_the_mount_manifest(brick, tmp_path):
    replica = str(tmp_path / "replica")
    s = replicate(brick, replica)
    assert (s.changelogs, s.batches, s.entry_failures, s.open_failures) == (11, 1, 0, 0)
    assert s.data_stime == (1795470713, 0) and s.entry_stime == (1795470713, 0)
    manifest = load_manifest(MANIFEST)
    assert len(manifest) == 336
    assert compare(manifest, scan_tree(replica), ignore=OWNERS) == []
    assert verify(brick, replica) == []
    # beyond gsyncd: times converge too (directories, symlinks, empty files included)
    assert compare(manifest, scan_tree(replica), ignore=OWNERS, mtimes=True) == []
    # the replica is itself a brick: a next hop reads it with the same view class
    from streamsync.views import BrickView
    v = BrickView(replica)
    gfids = {json.loads(l)["gfid"] for l in open(MANIFEST, encoding="utf-8")}
    assert all(v.lstat(g) is not None for g in gfids)


@needs_rsync
def test_rerun_is_a_noop_and_resume_from_a_prefix_converges(brick, tmp_path):
    replica = str(tmp_path / "replica")
    part = tmp_path / "first-five"
    part.mkdir()
    for p in journals(brick)[:5]:
        shutil.copy(p, part)
    s1 = replicate(brick, replica, changelogs=str(part))
    assert s1.changelogs == 5 and s1.data_stime == (1795470697, 0)
    s2 = replicate(brick, replica)
    assert s2.changelogs == 6  # only the journals not done yet
    assert verify(brick, replica) == []
    s3 = replicate(brick, replica)
    assert (s3.changelogs, s3.entry_ops) == (0, 0)


@needs_rsync
def test_tar_engine_end_to_end(brick, tmp_path):
    replica = str(tmp_path / "replica")
    s = replicate(brick, replica, engine="tar")
    assert s.open_failures == 0
    assert verify(brick, replica) == []


@needs_rsync
def test_cli_replicate_and_verify(brick, tmp_path, capsys):
    replica = str(tmp_path / "replica")
    state = str(tmp_path / "st.sqlite")
    assert main(["replicate", "--state", state, "-o", "sync-jobs=2", brick, replica]) == 0
    out = capsys.readouterr().out
    assert "replicated 11 changelogs in 1 batch (" in out
    assert "stime 2026-11-23 21:51:53 UTC (1795470713);" in out
    assert SqliteState(state).data_stime() == (1795470713, 0)
    assert main(["verify", brick, replica]) == 0
    assert "equal: 336 names" in capsys.readouterr().out
    assert main(["verify", MANIFEST, replica]) == (0 if not OWNERS else 1)
    capsys.readouterr()
    # damage the replica: verify finds it, readable and as JSON
    with open(os.path.join(replica, "data", "blob.bin"), "r+b") as fh:
        fh.write(b"X")
    os.chmod(os.path.join(replica, "docs"), 0o700)
    assert main(["verify", brick, replica]) == 1
    out = capsys.readouterr().out
    assert "data/blob.bin: sha256 differs" in out and "docs: mode differs: source='0755' " \
           "replica='0700'" in out
    assert main(["verify", "--json", brick, replica]) == 1
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert lines[-1]["equal"] is False and lines[-1]["differences"] == 2
    assert {(d["path"], d["field"]) for d in lines[:-1]} == {("data/blob.bin", "sha256"),
                                                              ("docs", "mode")}


def test_not_a_brick_is_a_clear_error(tmp_path, capsys):
    assert main(["replicate", str(tmp_path), str(tmp_path / "r")]) == 2
    assert "not a brick" in capsys.readouterr().err


def test_second_worker_is_refused(brick, tmp_path, capsys):
    replica = str(tmp_path / "replica")
    os.makedirs(os.path.join(replica, ".glusterfs", "streamsync"))
    with WorkerLock(lock_path(brick, replica)):
        with pytest.raises(LockHeld):
            replicate(brick, replica)
        assert main(["replicate", brick, replica]) == 2
        assert "already running" in capsys.readouterr().err


@needs_rsync
def test_follow_picks_up_new_journals_and_stops_on_sigterm(brick, tmp_path):
    replica = str(tmp_path / "replica")
    cl = tmp_path / "incoming"
    cl.mkdir()
    js = journals(brick)
    for p in js[:3]:
        shutil.copy(p, cl)
    # --mode replay: the first 3 journals alone do not cover the brick, so the default
    # would (rightly) start with the hybrid crawl; this test is about following journals
    proc = subprocess.Popen([sys.executable, "-m", "streamsync", "replicate", "--follow", "-q",
                             "--mode", "replay",
                             "-o", "change-interval=1", "--changelogs", str(cl), brick, replica],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for p in js[3:]:
            shutil.copy(p, cl)
            time.sleep(0.1)
        deadline = time.monotonic() + 30
        done = 0
        while time.monotonic() < deadline:
            if os.path.exists(default_state_path(brick, replica)):
                st = SqliteState(default_state_path(brick, replica))
                done = len(st.done_names())
                st.close()
                if done == len(js):
                    break
            time.sleep(0.3)
        assert done == len(js)
        assert verify(brick, replica) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def _fake_rsync(tmp_path, code):
    script = tmp_path / f"rsync-{code}"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && echo 'rsync  version 3.2.7' && exit 0\n"
                      f"cat >/dev/null\necho 'rsync: injected failure' >&2\nexit {code}\n")
    script.chmod(0o755)
    return str(script)


@needs_rsync
def test_abandoned_data_is_ledgered_then_retry_failed_completes(brick, tmp_path, capsys):
    replica = str(tmp_path / "replica")
    bad = _fake_rsync(tmp_path, 23)
    rc = main(["replicate", "-o", f"rsync-command={bad}", "-o", "max-rsync-retries=2",
               brick, replica])
    out = capsys.readouterr().out
    st = SqliteState(default_state_path(brick, replica))
    n = len(st.failures("data"))
    assert rc == 1 and f"files synced ({n} abandoned)" in out
    assert f"{n} open failures in the ledger" in out
    # the files with D records among the brick's 289 regular-file inodes
    assert 250 < n <= 289
    assert st.data_stime() == (1795470713, 0)
    st.close()
    assert verify(brick, replica) != []  # names are there, bytes are not
    assert main(["replicate", "--retry-failed", brick, replica]) == 0
    capsys.readouterr()
    assert verify(brick, replica) == []
    st = SqliteState(default_state_path(brick, replica))
    assert st.failures() == []


def test_fatal_engine_error_stops_with_its_stderr(brick, tmp_path, capsys):
    bad = _fake_rsync(tmp_path, 12)
    assert main(["replicate", "-o", f"rsync-command={bad}", brick,
                 str(tmp_path / "replica")]) == 2
    assert "status 12: rsync: injected failure" in capsys.readouterr().err


def _hostile_brick(tmp_path, lines):
    from streamsync.ops import EntryOp
    from streamsync.records import ROOT_GFID as R
    from streamsync.sinks.replica import ReplicaSink
    src = tmp_path / "brick"
    s = ReplicaSink(src)
    s.apply_entries([EntryOp("MKDIR", "5b1c2d3e-0000-4000-8000-000000000001", R, "d",
                             mode=0o40755, uid=0, gid=0)])
    s.close()
    cl = src / ".glusterfs" / "changelogs"
    cl.mkdir()
    (cl / "CHANGELOG.1700000015").write_text("\n".join(lines) + "\n")
    return src


R0 = "00000000-0000-0000-0000-000000000001"
GOOD = "5b1c2d3e-0000-4000-8000-000000000001"


def _g(n):
    return f"6b1c2d3e-0000-4000-8000-{n:012x}"


@pytest.mark.parametrize("name", ["../escaped", "..", "a/../../escaped", "/etc/escaped"])
def test_journal_with_path_names_is_refused_with_file_and_line(tmp_path, capsys, name):
    src = _hostile_brick(tmp_path, [f"E {_g(7)} CREATE 33188 0 0 {R0}/fine.txt",
                                    f"E {_g(1)} CREATE 33188 0 0 {GOOD}/{name}"])
    replica = tmp_path / "replica"
    assert main(["replicate", str(src), str(replica)]) == 2
    err = capsys.readouterr().err
    assert "CHANGELOG.1700000015:2:" in err
    assert sorted(os.listdir(tmp_path)) == ["brick", "replica"]
    assert sorted(os.listdir(replica)) == [".glusterfs"]


def test_journal_aiming_at_the_index_is_recorded_never_applied(tmp_path, capsys):
    src = _hostile_brick(tmp_path, [
        f"E {_g(3)} MKDIR 16877 0 0 {R0}/.glusterfs",
        f"E {_g(4)} CREATE 33188 0 0 {R0}/.glusterfs",
        f"E {_g(5)} SYMLINK {R0}/.glusterfs",
        f"E {R0} MKDIR 16877 0 0 {GOOD}/root-again",
        f"E {_g(7)} CREATE 33188 0 0 {R0}/fine.txt"])
    # the source view must see these gfids for their failures to count
    replica = tmp_path / "replica"
    # --mode replay: the brick's 'd' was never journaled, the default would crawl it
    rc = main(["replicate", "--mode", "replay", str(src), str(replica)])
    capsys.readouterr()
    assert rc in (0, 1)
    assert sorted(os.listdir(replica)) == [".glusterfs", "fine.txt"]
    assert sorted(os.listdir(replica / ".glusterfs")) == sorted(
        os.listdir(replica / ".glusterfs"))  # listing works: still a directory
    assert os.path.isdir(replica / ".glusterfs" / "00" / "00")
    assert os.readlink(replica / ".glusterfs" / "00" / "00" / R0) == "../../.."
    assert sorted(os.listdir(tmp_path)) == ["brick", "replica"]


@needs_rsync
@pytest.mark.skipif(os.geteuid() != 0, reason="trusted.* xattrs need root")
def test_xattr_stimes_on_the_brick_root_like_gsyncd(brick, tmp_path, capsys):
    import struct
    replica = str(tmp_path / "replica")
    assert main(["replicate", "--xattr-stime", "m-uuid:s-uuid", brick, replica]) == 0
    capsys.readouterr()
    key = "trusted.glusterfs.m-uuid.s-uuid"
    assert os.getxattr(brick, key + ".stime") == struct.pack("!II", 1795470713, 0)
    assert os.getxattr(brick, key + ".entry_stime") == struct.pack("!II", 1795470713, 0)
    # a fresh replica under a stime of (last ts - 1): as in gsyncd, journals with
    # ts < stime are skipped and only the last one (ts = stime + 1) is applied again
    other = str(tmp_path / "other")
    # the fresh replica lacks what earlier journals made: what the last journal's
    # data and meta ops could not reach is owed, in the ledger, exit 1 (gsyncd: 0)
    assert main(["replicate", "--xattr-stime", "m-uuid:s-uuid", brick, other]) == 1
    out = capsys.readouterr().out
    assert "replicated 11 changelogs" in out and "3 open failures in the ledger" in out
    assert sorted(os.listdir(other)) == [".glusterfs", "late"]  # P8's MKDIR, last journal
    st = SqliteState(default_state_path(brick, other))
    assert sorted(f.kind for f in st.failures()) == ["data", "meta", "meta"]
    st.close()


@needs_rsync
def test_status_fields_and_gsyncd_status_file(brick, tmp_path, capsys):
    replica = str(tmp_path / "replica")
    sdir = tmp_path / "status"
    assert main(["replicate", "--status-dir", str(sdir), "-o", "checkpoint=1795470700",
                 brick, replica]) == 0
    capsys.readouterr()
    [f] = os.listdir(sdir)
    assert f.startswith("brick_") and f.endswith(".status")
    doc = json.loads((sdir / f).read_text())
    assert doc["worker_status"] == "Stopped" and doc["last_synced"] == 1795470713
    assert doc["checkpoint_completed"] == "Yes" and doc["checkpoint_time"] == 1795470700
    assert main(["status", "--json", os.path.dirname(default_state_path(brick, replica))]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["source"] == os.path.abspath(brick) and row["open_failures"] == 0


@needs_rsync
def test_archive_processed_journals_of_an_owned_directory(brick, tmp_path, capsys):
    own = tmp_path / "working"
    own.mkdir()
    for p in journals(brick):
        shutil.copy(p, own)
    replica = str(tmp_path / "replica")
    assert main(["replicate", "--archive", "--changelogs", str(own), brick, replica]) == 0
    [arch] = os.listdir(own)
    assert arch.startswith("archive_") and arch.endswith(".tar")
    with tarfile.open(own / arch) as tf:
        assert sorted(tf.getnames()) == sorted(os.path.basename(p) for p in journals(brick))
    # a rerun sees the archived journals as done: nothing to do
    assert main(["replicate", "--changelogs", str(own), brick, replica]) == 0
    assert "replicated 0 changelogs" in capsys.readouterr().out.splitlines()[-2]
    assert verify(brick, replica) == []
    # the brick's own journals are never archived
    assert main(["replicate", "--archive", brick, str(tmp_path / "r2")]) == 2


@needs_rsync
def test_state_of_another_replica_is_refused(brick, tmp_path, capsys):
    state = str(tmp_path / "st.sqlite")
    r1 = str(tmp_path / "r1")
    assert main(["replicate", "--state", state, brick, r1]) == 0
    shutil.rmtree(r1)  # the replica is recreated, the state still says "all done"
    assert main(["replicate", "--state", state, brick, r1]) == 2
    assert "belongs to another replica" in capsys.readouterr().err


@needs_rsync
def test_mode_option_hands_over_to_the_crawl_worker(brick, tmp_path, capsys):
    pytest.importorskip("streamsync.crawl.cli")
    replica = str(tmp_path / "replica")
    assert main(["replicate", "--mode", "live", brick, replica]) == 0
    assert "live; 11 changelogs" in capsys.readouterr().out
    assert verify(brick, replica) == []
    # the worker path takes --retry-failed too (nothing open: a no-op that still verifies)
    assert main(["replicate", "--mode", "live", "--retry-failed", brick, replica]) == 0
    assert verify(brick, replica) == []
    assert main(["replicate", "--mode", "live", "--archive", brick, replica]) == 2


def test_several_bricks_on_the_command_line_run_one_worker_each(brick, tmp_path, monkeypatch):
    cli = pytest.importorskip("streamsync.crawl.cli")
    seen = {}

    def fake_run_workers(sources, replica, **kw):
        seen["sources"], seen["replica"] = list(sources), replica
        return [{"ok": True, "source": s, "summary": {
            "source": s, "replica": replica, "modes": ["history"], "results": [],
            "data_stime": None, "open_failures": 0}} for s in sources]

    monkeypatch.setattr(cli, "run_workers", fake_run_workers)
    replica = str(tmp_path / "replica")
    assert main(["replicate", brick, "/bricks/other", replica]) == 0
    assert seen == {"sources": [brick, "/bricks/other"], "replica": replica}


@needs_rsync
def test_exit_0_with_nothing_transferred_is_a_failure_not_a_success(brick, tmp_path, capsys):
    """rsync 3.5.0 receiving into a detached mount: rc 0, nothing sent, files stay
    empty (the lab saw gsyncd report success). A file rsync was given but did not
    report as transferred is retried, then ledgered."""
    replica = str(tmp_path / "replica")
    silent = _fake_rsync(tmp_path, 0)  # reads the list, transfers nothing, exit 0
    rc = main(["replicate", "-q", "-o", f"rsync-command={silent}", "-o", "max-rsync-retries=2",
               brick, replica])
    assert rc == 1
    st = SqliteState(default_state_path(brick, replica))
    assert 250 < len(st.failures("data")) <= 289
    st.close()
    assert main(["replicate", "-q", "--retry-failed", brick, replica]) == 0
    assert verify(brick, replica) == []
