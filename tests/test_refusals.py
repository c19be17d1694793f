"""Wrong input and unlucky setups are refused with one clear line (issue 9,
items 3-6 and 11): journal names are not trusted, the replica identity and the
worker lock hold under concurrency and aliasing, the replica stays apart from
the brick, and every state-store failure is a StateError (exit 2)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import subprocess

import pytest

from streamsync.cli import main
from streamsync.errors import StateError
from streamsync.target import default_state_path, lock_path
from streamsync.state import SqliteState, WorkerLock
from streamsync.verify import verify

from conftest import tmpfs
from test_replicate import brick, demo_master, journals, needs_rsync  # noqa: F401  (fixtures)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount)")


def _stime(replica, brick):
    st = SqliteState(default_state_path(brick, replica))
    try:
        return st.data_stime(), st.entry_stime()
    finally:
        st.close()


# ------------------------------------------------------------- item 3: stamps
@needs_rsync
def test_a_future_journal_name_is_refused_and_moves_nothing(brick, tmp_path, capsys):
    js = journals(brick)
    planted = os.path.join(os.path.dirname(js[-1]), "CHANGELOG.1900000000")
    shutil.copy(js[0], planted)
    replica = str(tmp_path / "replica")
    assert main(["replicate", brick, replica]) == 2
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if "error:" in x]
    assert "CHANGELOG.1900000000" in line and "future" in line
    assert _stime(replica, brick) == (None, None)
    os.unlink(planted)
    assert main(["replicate", brick, replica]) == 0
    assert verify(brick, replica) == []


@pytest.mark.parametrize("stamp", [2**63, 2**64 + 5, 2**32])
def test_a_stamp_beyond_a_stime_is_refused_everywhere(brick, tmp_path, capsys, stamp):
    js = journals(brick)
    planted = os.path.join(os.path.dirname(js[-1]), f"CHANGELOG.{stamp}")
    shutil.copy(js[0], planted)
    replica = str(tmp_path / "replica")
    cl_dir = os.path.dirname(js[-1])
    for argv in (["replicate", brick, replica], ["decode", brick],
                 ["plan", "--changelogs", cl_dir, "--brick", brick]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"CHANGELOG.{stamp}: impossible journal stamp" in err, (argv, err)
    assert _stime(replica, brick) == (None, None)
    assert main(["status", replica]) == 1  # the worker that refused is Faulty; status reads it
    assert "Faulty" in capsys.readouterr().out


def test_a_stored_stime_in_the_future_is_refused(brick, tmp_path, capsys):
    replica = str(tmp_path / "replica")
    os.makedirs(os.path.join(replica, ".glusterfs", "streamsync"))
    st = SqliteState(default_state_path(brick, replica))
    st.set_data_stime((1900000000, 0))
    st.close()
    assert main(["replicate", brick, replica]) == 2
    assert "stored data stime 1900000000 lies in the future" in capsys.readouterr().err


def test_an_impossible_stored_stime_is_a_state_error_and_status_says_so(tmp_path, capsys):
    path = str(tmp_path / "s.sqlite")
    st = SqliteState(path)
    with pytest.raises(StateError, match="impossible"):
        st.set_data_stime((2**63 - 1, 0))
    st.close()
    db = sqlite3.connect(path)  # as an older streamsync left it
    db.execute("INSERT INTO kv(key, value) VALUES('stime', '[9223372036854775807,0]')")
    db.commit()
    db.close()
    assert main(["status", path]) == 2
    err = capsys.readouterr().err
    assert "s.sqlite: stored stime [9223372036854775807, 0] is impossible" in err


# ------------------------------------------------------- item 4: replica id race
def _start_on_fresh_replica(args):
    barrier, replica = args
    from streamsync.target import _replica_id
    barrier.wait()
    try:
        return _replica_id(replica)
    except Exception as exc:  # the race must not raise: report it
        return f"ERROR {type(exc).__name__}: {exc}"


def test_bricks_starting_together_on_a_fresh_replica_agree_on_its_id(tmp_path):
    ctx = multiprocessing.get_context("fork")
    n = 8
    with ctx.Manager() as mgr, ctx.Pool(n) as pool:
        for round_ in range(15):
            replica = str(tmp_path / f"r{round_}")
            barrier = mgr.Barrier(n)
            ids = pool.map(_start_on_fresh_replica, [(barrier, replica)] * n)
            assert len(set(ids)) == 1 and not ids[0].startswith("ERROR"), ids
            listed = os.listdir(os.path.join(replica, ".glusterfs", "streamsync"))
            assert listed == ["replica-id"]  # no temporary left behind


# --------------------------------------------------- item 5: lock on the brick
def test_the_lock_follows_the_brick_through_a_symlink(brick, tmp_path, capsys):
    replica = str(tmp_path / "replica")
    alias = str(tmp_path / "alias")
    os.symlink(brick, alias)
    assert lock_path(alias, replica) == lock_path(brick, replica)
    os.makedirs(os.path.join(replica, ".glusterfs", "streamsync"))
    with WorkerLock(lock_path(brick, replica)):
        assert main(["replicate", alias, replica]) == 2
        assert "already running" in capsys.readouterr().err


@root_only
def test_the_lock_follows_the_brick_through_a_bind_mount(brick, tmp_path, capsys):
    replica = str(tmp_path / "replica")
    bind = tmp_path / "bind"
    bind.mkdir()
    r = subprocess.run(["mount", "--bind", brick, str(bind)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot bind-mount here: {r.stderr.strip()}")
    try:
        os.makedirs(os.path.join(replica, ".glusterfs", "streamsync"))
        with WorkerLock(lock_path(brick, replica)):
            assert main(["replicate", str(bind), replica]) == 2
            assert "already running" in capsys.readouterr().err
    finally:
        subprocess.run(["umount", str(bind)], check=True)


# ------------------------------------------- item 6: replica apart, state paths
@pytest.mark.parametrize("where", ["inside", "through-symlink", "holding"])
def test_a_replica_inside_the_brick_or_holding_it_is_refused(brick, tmp_path, capsys, where):
    if where == "inside":
        replica = os.path.join(brick, "sub_replica")
    elif where == "through-symlink":
        os.symlink(brick, tmp_path / "link")
        replica = str(tmp_path / "link" / "sub_replica")
    else:
        replica = str(tmp_path)
    before = sorted(os.listdir(brick))
    assert main(["replicate", brick, replica]) == 2
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if "error:" in x]
    assert "the replica cannot" in line
    assert sorted(os.listdir(brick)) == before


def test_a_state_in_a_missing_directory_is_refused_not_created(brick, tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    replica = tmp_path / "replica"
    assert main(["replicate", "--state", str(missing / "x.sqlite"), brick, str(replica)]) == 2
    assert f"directory {missing} does not exist" in capsys.readouterr().err
    assert not missing.exists() and not replica.exists()


# ------------------------------------------------ item 11: state store errors
def test_a_corrupt_state_file_is_one_line_and_exit_2(brick, tmp_path, capsys):
    state = tmp_path / "st.sqlite"
    state.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    assert main(["replicate", "--state", str(state), brick, str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("streamsync replicate: error: ") and str(state) in err
    assert len(err.splitlines()) == 1
    assert main(["status", str(state)]) == 2
    assert str(state) in capsys.readouterr().err


def test_a_state_locked_elsewhere_is_a_state_error(tmp_path):
    path = str(tmp_path / "s.sqlite")
    SqliteState(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        st = SqliteState(path, timeout=0.2)
        with pytest.raises(StateError, match="another process holds the state file"):
            st.set_data_stime((1700000000, 0))
        st.close()
    finally:
        other.execute("ROLLBACK")
        other.close()


@needs_rsync
@root_only
def test_a_full_disk_under_the_state_is_a_state_error(brick, tmp_path, capsys):
    mnt = tmp_path / "tiny"
    with tmpfs(mnt, "size=96k"):
        state = mnt / "st.sqlite"
        SqliteState(state).close()
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # leave no room for the state to grow
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        rc = main(["replicate", "--state", str(state), brick, str(tmp_path / "r")])
        err = capsys.readouterr().err.strip()
        assert rc == 2, err
        [line] = [x for x in err.splitlines() if "error:" in x]
        assert str(state) in line and "full" in line
