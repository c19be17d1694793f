"""Nothing lost: what the replica could not take stays in the ledger with what it
still needs, and ``--retry-failed`` converges once the cause is gone (issue 9,
items 1 and 2). Real faults on the bundled real brick: an immutable replica root
(chattr +i) and a tmpfs that runs out of inodes."""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest

from streamsync.cli import main
from streamsync.target import default_state_path
from streamsync.state import SqliteState
from streamsync.verify import verify

from test_replicate import brick, demo_master, needs_rsync  # noqa: F401  (fixtures)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chattr, mount)")


def _open(replica, brick):
    st = SqliteState(default_state_path(brick, replica))
    try:
        return sorted(f.kind for f in st.failures())
    finally:
        st.close()


def _chattr(flag, path):
    return subprocess.run(["chattr", flag, path], capture_output=True).returncode == 0


@contextlib.contextmanager
def _immutable(replica):
    """A fresh replica whose root cannot take new entries while inside."""
    os.makedirs(os.path.join(replica, ".glusterfs"))
    if not _chattr("+i", replica):
        pytest.skip("the filesystem under tmp_path has no immutable flag")
    try:
        yield
    finally:
        _chattr("-i", replica)


def _retry_converges(brick, replica, capsys):
    assert main(["replicate", "--retry-failed", brick, replica]) == 0
    capsys.readouterr()
    assert _open(replica, brick) == []
    assert verify(brick, replica) == []


@needs_rsync
@root_only
def test_immutable_replica_root_is_owed_then_retry_is_equal(brick, tmp_path, capsys):
    replica = str(tmp_path / "replica")
    with _immutable(replica):
        rc = main(["replicate", brick, replica])
    out = capsys.readouterr().out
    assert rc == 1 and "open failures in the ledger" in out
    kinds = _open(replica, brick)
    # entries under the root, and the data and metadata behind them, are all owed
    assert {"entry", "data", "meta"} <= set(kinds)
    _retry_converges(brick, replica, capsys)


@needs_rsync
@root_only
def test_out_of_inodes_is_owed_then_retry_on_a_bigger_fs_is_equal(brick, tmp_path, capsys):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "nr_inodes=250,size=64m", "tmpfs",
                        str(mnt)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        replica = str(mnt / "replica")
        rc = main(["replicate", brick, replica])
        capsys.readouterr()
        assert rc == 1
        assert "entry" in _open(replica, brick)
        diffs = verify(brick, replica)
        assert diffs != []
        # move the replica (its state inside) to room enough, then retry
        bigger = str(tmp_path / "replica")
        subprocess.run(["cp", "-a", replica, bigger], check=True)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    _retry_converges(brick, bigger, capsys)


@needs_rsync
@root_only
def test_quiet_is_quiet_and_the_default_says_how_many_failed(brick, tmp_path, capsys, caplog):
    """Item 14: a planted file in a fresh replica used to print 162 long
    'ENTRY FAILED' lines without -v, and -q still printed error lines."""
    import logging
    caplog.set_level(logging.DEBUG, logger="streamsync")
    for flags, quiet in ((["-q"], True), ([], False)):
        caplog.clear()
        replica = str(tmp_path / f"replica{len(flags)}")
        with _immutable(replica):
            assert main(["replicate", *flags, brick, replica]) == 1
        err = capsys.readouterr().err
        if quiet:
            assert err == "" and caplog.records == []
            continue
        loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert not any("ENTRY FAILED" in m for m in loud)  # detail: -v (INFO) only
        [summary] = [m for m in loud if "failures recorded in the ledger" in m]
        assert "entry ENOENT" in summary and "--retry-failed" in summary
