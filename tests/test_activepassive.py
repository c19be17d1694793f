"""Active/passive through the meta-volume lock: one active, the other passive,
takeover when the active worker dies, cluster stime catch-up."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest
from test_worker_brick import Brick

from streamsync.activepassive import ActivePassive, lock_path_for, purge_processed_before
from streamsync.errors import StateError
from streamsync.options import Options
from streamsync.records import Stime
from streamsync.state import SqliteState
from streamsync.verify import verify


def _opts(mnt, *extra):
    return Options.from_pairs(["use-meta-volume=true", f"meta-volume-mnt={mnt}",
                               "replica-failover-interval=1", *extra])


def _hold(path: str, ready) -> None:
    ap = ActivePassive(path)
    assert ap.should_crawl()
    ready.set()
    time.sleep(60)  # killed by the test


def test_lockf_one_active_then_takeover(tmp_path):
    mnt = tmp_path / "meta"
    mnt.mkdir()
    path = lock_path_for(str(mnt), "m_s", 1)
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    p = ctx.Process(target=_hold, args=(path, ready))
    p.start()
    try:
        assert ready.wait(10)
        me = ActivePassive.from_options(_opts(mnt), session="m_s", subvol=1)
        assert me.lock_path == path
        assert me.should_crawl() is False and me.active is False
        assert me.should_crawl() is False  # re-check: still taken
        os.kill(p.pid, signal.SIGKILL)  # the kernel drops a dead process' lock
        p.join(10)
        assert me.should_crawl() is True and me.active is True
        assert me.should_crawl() is True  # re-check while holding it
        with open(path) as fh:
            assert fh.read().strip() == str(os.getpid())
        me.release()
    finally:
        if p.is_alive():
            p.kill()
            p.join(10)


def test_without_meta_volume_every_worker_is_active(tmp_path):
    a = ActivePassive.from_options(Options(), session="x")
    b = ActivePassive.from_options(Options(), session="x")
    assert a.lock_path is None and a.should_crawl() and b.should_crawl()
    assert a.cluster_stime() is None


def test_meta_volume_must_be_mounted(tmp_path):
    with pytest.raises(StateError, match="not mounted"):
        ActivePassive.from_options(_opts(tmp_path / "absent"), session="x")


def test_passive_catch_up_raises_stime_and_purges(tmp_path):
    mnt = tmp_path / "meta"
    mnt.mkdir()
    active = ActivePassive.from_options(_opts(mnt), session="s")
    passive = ActivePassive.from_options(_opts(mnt), session="s")
    assert passive.passive_catch_up(SqliteState(":memory:")) is None  # nothing published
    active.publish_stime((1700000100, 0))
    active.publish_stime((1700000050, 0))  # never moves back
    assert passive.cluster_stime() == Stime(1700000100, 0)
    proc = tmp_path / ".processing"
    proc.mkdir()
    for ts in (1700000080, 1700000099, 1700000100, 1700000115):
        (proc / f"CHANGELOG.{ts}").write_text("")
    (proc / "other").write_text("")
    st = SqliteState(":memory:")
    st.set_data_stime((1700000010, 0))
    assert passive.passive_catch_up(st, processing_dir=str(proc)) == Stime(1700000100, 0)
    assert st.data_stime() == Stime(1700000100, 0)
    assert sorted(os.listdir(proc)) == ["CHANGELOG.1700000100", "CHANGELOG.1700000115", "other"]
    # already there: nothing to do
    assert passive.passive_catch_up(st) is None
    # the journals the active worker completed are marked done (by name)
    from streamsync.records import Changelog
    active.publish_stime((1700000114, 0), done_ts=1700000115)
    assert passive.cluster_done_ts() == 1700000115
    listing = [Changelog(f"/x/CHANGELOG.{t}", t, 1) for t in (1700000100, 1700000115, 1700000130)]
    assert passive.passive_catch_up(st, journals=lambda: listing) == Stime(1700000114, 0)
    assert st.done_names() == {"CHANGELOG.1700000100", "CHANGELOG.1700000115"}
    assert purge_processed_before(str(tmp_path / "nope"), (1, 0)) == []
    active.release()


_WORKER = r"""
import logging, sys
from streamsync.crawl.select import run_worker
from streamsync.options import Options
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
brick, rep, state, mnt = sys.argv[1:5]
opts = Options.from_pairs(["use-meta-volume=true", "meta-volume-mnt=" + mnt,
                           "replica-failover-interval=1", "change-interval=1"])
run_worker(brick, rep, state_path=state, options=opts, follow=True, passive_sleep=0.2,
           retry_delay=0, session="demo_sess")
"""


def _status(path: str) -> dict:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_workers_kill_the_active_passive_takes_over(tmp_path):
    b = Brick(tmp_path / "brick")
    b.mkdir("d")
    b.create("d/before", b"existing data")
    b.journaling = True
    b.pending = []  # existing data: no journals, the first worker crawls it
    mnt = tmp_path / "meta"
    mnt.mkdir()
    rep = str(tmp_path / "rep")
    sa, sb = str(tmp_path / "a" / "state.sqlite"), str(tmp_path / "b" / "state.sqlite")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    from streamsync.status import status_file_name
    fa = os.path.join(os.path.dirname(sa), status_file_name(os.path.abspath(b.root)))
    fb = os.path.join(os.path.dirname(sb), status_file_name(os.path.abspath(b.root)))
    logs = {n: open(tmp_path / f"{n}.log", "wb") for n in "ab"}
    env = dict(os.environ)

    def start(n, state):
        return subprocess.Popen([sys.executable, "-c", _WORKER, b.root, rep, state, str(mnt)],
                                stdout=logs[n], stderr=logs[n], env=env)

    pa = start("a", sa)
    pb = None
    try:
        _wait(lambda: _status(fa).get("worker_status") == "Active", 20, "worker A active")
        pb = start("b", sb)
        _wait(lambda: _status(fb).get("worker_status") == "Passive", 20, "worker B passive")
        # A crawled the existing data and follows the journals
        _wait(lambda: os.path.exists(os.path.join(rep, "d", "before")), 20, "A's hybrid crawl")
        ts = int(time.time()) + 2
        b.create("d/one", b"1")
        b.mkdir("d/sub")
        b.rollover(ts)
        _wait(lambda: _status(fa).get("last_synced", 0) >= ts - 1, 20, "A to apply the journal")
        assert _status(fb).get("worker_status") == "Passive"
        # B raised its stime to the cluster stime while passive
        _wait(lambda: _status(fb).get("last_synced", 0) >= ts - 1, 20, "B's catch-up")
        shared = ActivePassive(lock_path_for(str(mnt), "demo_sess", 1))
        cluster = shared.cluster_stime()
        assert cluster is not None and cluster[0] >= ts - 1
        _wait(lambda: SqliteState(sb).is_done(f"CHANGELOG.{ts}"), 20,
              "B to mark A's journal done")
        a_done = shared.cluster_done_ts()
        assert a_done == ts

        os.kill(pa.pid, signal.SIGKILL)
        pa.wait(10)
        killed_at = time.monotonic()
        _wait(lambda: _status(fb).get("worker_status") == "Active", 20, "B to take over")
        assert time.monotonic() - killed_at < 10  # a few failover intervals
        ts2 = max(int(time.time()) + 2, ts + 2)
        b.create("d/sub/two", b"22")
        b.rename("d/one", "one-moved")
        b.write("d/before", b"rewritten after the takeover")
        b.rollover(ts2)
        _wait(lambda: _status(fb).get("last_synced", 0) >= ts2 - 1, 30, "B to apply")
        # the batch is recorded after its stime moved: wait for the record too
        _wait(lambda: any((x["last_ts"] or 0) >= ts2 for x in _worked(sb)), 30,
              "B to record its batch")
        assert verify(b.root, rep) == []
    finally:
        for p in (pa, pb):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for fh in logs.values():
            fh.close()
    # B applied only what came after the last journal A completed: that one
    # (within the stime's one-second tolerance) was marked done, not applied again
    worked = _worked(sb)
    assert worked and all(x["first_ts"] > a_done for x in worked), worked
    stb = SqliteState(sb)
    assert f"CHANGELOG.{ts2}" in stb.done_names()
    stb.close()


def _worked(state_path: str) -> list[dict]:
    """The batches a worker recorded that applied something."""
    st = SqliteState(state_path)
    try:
        return [x for x in st.status().get("batches", []) if x["entries"] or x["data"]
                or x["meta"]]
    finally:
        st.close()


def test_one_shot_passive_worker_catches_up_and_exits(tmp_path):
    """Without --follow a passive worker raises its stime once and returns."""
    import time as _t
    from streamsync.crawl.select import run_worker
    T = int(_t.time()) - 100000
    b = Brick(tmp_path / "brick")
    b.create("f", b"x")
    b.rollover(T + 15)
    mnt = tmp_path / "meta"
    mnt.mkdir()
    opts = _opts(mnt)
    holder = ActivePassive.from_options(opts, session="sess")
    assert holder.should_crawl()
    holder.publish_stime((T + 14, 0), done_ts=T + 15)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()

    def worker():
        s = run_worker(b.root, str(tmp_path / "rep"), options=opts, session="sess",
                       state_path=str(tmp_path / "p.sqlite"), register_time=T, retry_delay=0)
        q.put((s.modes, tuple(s.data_stime)))

    p = ctx.Process(target=worker)  # another process: lockf locks are per process
    p.start()
    try:
        modes, stime = q.get(timeout=30)
    finally:
        p.join(10)
        holder.release()
    assert modes == () and stime == (T + 14, 0)
    st = SqliteState(tmp_path / "p.sqlite")
    assert st.status()["worker_status"] == "Stopped"
    assert f"CHANGELOG.{T + 15}" in st.done_names()
    st.close()
    assert not os.path.exists(tmp_path / "rep" / "f")  # a passive worker writes nothing


def test_the_monitor_starts_a_killed_worker_again_and_stops_on_request(tmp_path, monkeypatch):
    """run_workers is gsyncd's monitor too: a following worker killed with SIGKILL (no
    result ever comes from it) is started again after a delay, never waited for
    forever; a stop request then ends every worker and run_workers returns."""
    import threading
    import streamsync.crawl.select as sel
    from streamsync.cli.status import worker_row
    monkeypatch.setattr(sel, "RESTART_DELAY", 0.5)
    bricks = []
    for n in "ab":
        b = Brick(tmp_path / n)
        b.mkdir("d")
        b.create("d/f", b"x")
        b.rollover(int(time.time()) - 100)
        bricks.append(b.root)
    rep = str(tmp_path / "rep")
    stop = threading.Event()
    out: list = []
    t = threading.Thread(target=lambda: out.extend(sel.run_workers(
        bricks, rep, follow=True, stop=stop, options=Options.from_pairs(["change-interval=1"]),
        poll=0.2)))
    t.start()
    try:
        state = sel.resolve_target(bricks[0], rep).state_path

        def pid() -> int | None:
            try:
                row = worker_row(state)
            except Exception:
                return None
            return row.get("pid") if row.get("worker_status") == "Active" else None

        _wait(pid, 60, "worker a to be Active")
        first = pid()
        os.kill(first, signal.SIGKILL)
        _wait(lambda: (p := pid()) and p != first, 60, "worker a started again")
    finally:
        stop.set()
        t.join(120)
    assert not t.is_alive() and [r["ok"] for r in out] == [True, True], out
