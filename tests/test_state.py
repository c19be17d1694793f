"""State stores (SQLite, gsyncd xattrs) and the worker lock."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap

import pytest

from streamsync.errors import LockHeld, StateError
from streamsync.records import MINUS_INFINITY, Stime
from streamsync.state import SqliteState, WorkerLock
from streamsync.state.xattr import XattrState, stime_key


def test_sqlite_roundtrip_across_reopen(tmp_path):
    p = tmp_path / "s.sqlite"
    with SqliteState(p) as st:
        assert st.data_stime() is None and st.entry_stime() is None
        st.set_data_stime((1795470698, 0))
        st.set_entry_stime(Stime(1795470713, 0))
        st.set_data_stime(MINUS_INFINITY)  # never written
        st.set_status(worker_status="Active", last_synced=1795470698)
        st.add_status("data", 5)
        st.add_status("data", -9)
        st.mark_done(["CHANGELOG.1795470689", "CHANGELOG.1795470691"])
        assert st.count_failures() == 0
        fid = st.add_failure("entry", "g1", changelog="CHANGELOG.1795470691",
                             op={"op": "CREATE"}, errno=17, info={"gfid_mismatch": True})
        assert st.add_failure("entry", "g1", op={"op": "CREATE"}, errno=17) == fid
    with SqliteState(p) as st:
        assert st.data_stime() == Stime(1795470698, 0)
        assert st.entry_stime() == Stime(1795470713, 0)
        s = st.status()
        assert s["worker_status"] == "Active" and s["data"] == 0 and s["crawl_status"] == "N/A"
        assert st.is_done("CHANGELOG.1795470691") and not st.is_done("CHANGELOG.1795470692")
        [f] = st.failures()
        assert st.count_failures() == 1 and st.count_failures("data") == 0
        assert (f.kind, f.errno, f.attempts, f.op) == ("entry", 17, 2, {"op": "CREATE"})
        st.resolve_failures([f.id])
        assert st.failures() == [] and len(st.failures(include_resolved=True)) == 1


def test_transaction_is_all_or_nothing(tmp_path):
    st = SqliteState(tmp_path / "s.sqlite")
    st.set_data_stime((10, 0))
    with pytest.raises(RuntimeError):
        with st.transaction():
            st.set_data_stime((20, 0))
            st.mark_done(["CHANGELOG.20"])
            raise RuntimeError("crash")
    assert st.data_stime() == Stime(10, 0) and not st.is_done("CHANGELOG.20")


def test_sqlite_write_is_durable_against_kill(tmp_path):
    """A process killed right after a committed write leaves the value readable."""
    p = tmp_path / "s.sqlite"
    code = textwrap.dedent(f"""
        import os, signal
        from streamsync.state import SqliteState
        st = SqliteState({str(p)!r})
        with st.transaction():
            st.set_data_stime((42, 0))
            st.mark_done(["CHANGELOG.43"])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    subprocess.run([sys.executable, "-c", code])
    st = SqliteState(p)
    assert st.data_stime() == Stime(42, 0) and st.is_done("CHANGELOG.43")


def test_not_a_database_is_a_state_error(tmp_path):
    p = tmp_path / "junk"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="junk"):
        SqliteState(p).data_stime()


@pytest.mark.skipif(os.geteuid() != 0, reason="trusted.* xattrs need root")
def test_xattr_state_uses_gsyncd_keys_and_values(tmp_path):
    brick = tmp_path / "brick"
    brick.mkdir()
    st = XattrState(str(brick), "m-uuid", "s-uuid")
    assert st.data_stime() is None
    st.set_data_stime((1795470713, 0))
    st.set_entry_stime((1795470713, 5))
    raw = os.getxattr(brick, "trusted.glusterfs.m-uuid.s-uuid.stime")
    assert raw == struct.pack("!II", 1795470713, 0)
    assert os.getxattr(brick, stime_key("m-uuid", "s-uuid", "entry_stime")) == \
        struct.pack("!II", 1795470713, 5)
    # a value written by gsyncd is read back
    os.setxattr(brick, "trusted.glusterfs.m-uuid.s-uuid.stime", struct.pack("!II", 7, 9))
    assert st.data_stime() == Stime(7, 9)


def test_lock_refuses_a_second_worker_until_the_first_dies(tmp_path):
    p = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from streamsync.state import WorkerLock
            WorkerLock({str(p)!r}).acquire()
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld, match=rf"pid {holder.pid}.*refusing"):
            WorkerLock(p, what="b1 -> r1").acquire()
    finally:
        holder.kill()
        holder.wait()
    with WorkerLock(p) as lk:  # the kernel released it with the dead process
        assert lk.held
