"""Status fields, the gsyncd status file and its atomic update, checkpoints, and
``streamsync status`` as a user runs it."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from streamsync.cli import main
from streamsync.state import SqliteState
from streamsync.status import (STATUS_DEFAULTS, StatusFile, WorkerStatus, checkpoint_merge,
                               status_file_name)

SEED_FIELDS = ["slave_node", "worker_status", "crawl_status", "last_synced",
               "last_synced_entry", "entry", "data", "meta", "failures",
               "checkpoint_completed", "checkpoint_time", "checkpoint_completion_time"]


def test_defaults_are_gsyncds():
    assert list(STATUS_DEFAULTS) == SEED_FIELDS
    assert STATUS_DEFAULTS["worker_status"] == "N/A"
    assert STATUS_DEFAULTS["checkpoint_completed"] == "N/A"
    assert STATUS_DEFAULTS["last_synced"] == 0


def test_file_name_quotes_like_quote_plus():
    assert status_file_name("/bricks/b1") == "brick_%2Fbricks%2Fb1.status"
    assert status_file_name("/d/a b+c") == "brick_%2Fd%2Fa+b%2Bc.status"


def test_update_is_rename_of_a_temp_file(tmp_path):
    p = tmp_path / "brick_x.status"
    sf = StatusFile(p)
    assert sf.update(worker_status="Active") is True
    ino1 = os.stat(p).st_ino
    # nothing changed: the file is left alone
    assert sf.update(worker_status="Active") is False
    assert os.stat(p).st_ino == ino1
    assert sf.update(crawl_status="History Crawl") is True
    assert os.stat(p).st_ino != ino1  # replaced by rename, never rewritten in place
    assert json.loads(p.read_text()) == {**STATUS_DEFAULTS, "worker_status": "Active",
                                         "crawl_status": "History Crawl"}
    # no temp files left behind
    assert [f.name for f in tmp_path.iterdir()] == ["brick_x.status"]


def test_garbage_file_is_replaced_by_defaults(tmp_path):
    p = tmp_path / "s.status"
    p.write_text("{not json")
    StatusFile(p).update(entry=3)
    assert json.loads(p.read_text())["entry"] == 3
    assert json.loads(p.read_text())["worker_status"] == "N/A"


def _bump(path: str, n: int) -> None:
    sf = StatusFile(path)
    for _ in range(n):
        sf.update(merger=lambda d: d.__setitem__("entry", d["entry"] + 1))


def test_concurrent_writers_lose_no_update(tmp_path):
    """flock + re-open-until-same-inode: 4 processes x 50 increments = 200."""
    p = str(tmp_path / "brick_c.status")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump, args=(p, 50)) for _ in range(4)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(30)
        assert pr.exitcode == 0
    assert StatusFile(p).read()["entry"] == 200


@pytest.mark.parametrize("stored,checkpoint,last_synced,expect", [
    # no checkpoint configured: reset to No/0/0
    ({"checkpoint_completed": "Yes", "checkpoint_time": 50, "checkpoint_completion_time": 60},
     0, 100, ("No", 0, 0, False)),
    # configured, not reached yet
    ({}, 200, 100, ("No", 0, 0, False)),
    # reached exactly at last_synced == C
    ({}, 100, 100, ("Yes", 100, 7777, True)),
    # already completed with the same C: kept, completion time not moved
    ({"checkpoint_completed": "Yes", "checkpoint_time": 100, "checkpoint_completion_time": 5},
     100, 150, ("Yes", 100, 5, False)),
    # a new C replaces a completed old one and is reached at once
    ({"checkpoint_completed": "Yes", "checkpoint_time": 100, "checkpoint_completion_time": 5},
     120, 150, ("Yes", 120, 7777, True)),
    # a new C not reached yet: reset
    ({"checkpoint_completed": "Yes", "checkpoint_time": 100, "checkpoint_completion_time": 5},
     300, 150, ("No", 0, 0, False)),
])
def test_checkpoint_rule(stored, checkpoint, last_synced, expect):
    fields = {**STATUS_DEFAULTS, **stored}
    changed, done = checkpoint_merge(fields, last_synced=last_synced, checkpoint=checkpoint,
                                     now=7777.9)
    merged = {**fields, **changed}
    assert (merged["checkpoint_completed"], merged["checkpoint_time"],
            merged["checkpoint_completion_time"], done) == expect
    assert merged["last_synced"] == last_synced


def test_worker_status_phases_in_state_and_file(tmp_path):
    clock = iter(range(1700001000, 1700002000)).__next__
    st = SqliteState(tmp_path / "w.db")
    events = []
    ws = WorkerStatus(st, source="/bricks/b1", replica="/r", status_dir=tmp_path,
                      clock=clock, on_event=lambda n, f: events.append((n, f)),
                      counter_interval=0)  # every counter change written at once
    sfile = tmp_path / status_file_name("/bricks/b1")
    # leftovers of a previous run are reset at start (gsyncd's reset_on_worker_start)
    st.set_status(entry=9, data=4, meta=2, crawl_status="Changelog Crawl", last_synced=5)
    ws.start(checkpoint=1700000500)
    f = json.loads(sfile.read_text())
    assert f["worker_status"] == "Initializing..." and f["crawl_status"] == "N/A"
    assert (f["entry"], f["data"], f["meta"]) == (0, 0, 0)
    assert f["last_synced"] == 5  # not a start-time reset field

    ws.set_active()
    ws.set_crawl_mode("xsync")
    ws.inc("entry", 3)
    ws.inc("data", 2)
    ws.dec("entry", 5)  # never below 0
    f = json.loads(sfile.read_text())
    assert (f["worker_status"], f["crawl_status"], f["entry"], f["data"]) == \
        ("Active", "Hybrid Crawl", 0, 2)

    assert ws.set_last_synced((1700000400, 0), checkpoint=1700000500) is False
    assert json.loads(sfile.read_text())["checkpoint_completed"] == "No"
    assert ws.set_last_synced((1700000600, 0), checkpoint=1700000500) is True
    f = json.loads(sfile.read_text())
    assert f["checkpoint_completed"] == "Yes"
    assert f["checkpoint_time"] == 1700000500
    assert 1700001000 <= f["checkpoint_completion_time"] < 1700002000
    assert events and events[0][0] == "GEOREP_CHECKPOINT_COMPLETED"
    done_at = f["checkpoint_completion_time"]
    assert ws.set_last_synced((1700000700, 0), checkpoint=1700000500) is False
    assert json.loads(sfile.read_text())["checkpoint_completion_time"] == done_at
    assert len(events) == 1
    # the state holds the same seed fields as the file, plus identity
    s = st.status()
    assert {k: s[k] for k in SEED_FIELDS} == json.loads(sfile.read_text())
    assert s["source"] == "/bricks/b1" and s["replica"] == "/r"
    st.close()


def _make_worker_state(path, source, replica, *, status, crawl, last, cp=0, batches=()):
    st = SqliteState(path)
    ws = WorkerStatus(st, source=source, replica=replica)
    ws.start(checkpoint=cp)
    ws.set_worker_status(status)
    if crawl:
        ws.set_crawl_mode(crawl)
    st.set_data_stime((last, 0))
    ws.set_last_synced((last, 0), checkpoint=cp)
    ws.inc("data", 4)
    for b in batches:
        ws.record_batch(**b)
    st.add_failure("entry", "5b1c2d3e-0000-4000-8000-00000000000a", errno=17)
    st.close()


def test_status_cli_json_and_table(tmp_path, capsys):
    d = tmp_path / "states"
    d.mkdir()
    _make_worker_state(d / "b1.db", "/bricks/b1", "/rep", status="Active", crawl="live",
                       last=1700000000, cp=1600000000,
                       batches=[dict(changelogs=4, first_ts=1, last_ts=4, entries=10, data=6,
                                     meta=4, seconds=2.0)])
    _make_worker_state(d / "b2.db", "/bricks/b2", "user@host:/rep2", status="Passive",
                       crawl=None, last=1690000000)
    assert main(["status", "--state", str(d), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source"] for r in rows] == ["/bricks/b1", "/bricks/b2"]
    for r in rows:
        for k in SEED_FIELDS + ["source", "replica"]:
            assert k in r, k
    a, p = rows
    assert a["worker_status"] == "Active" and a["crawl_status"] == "Changelog Crawl"
    assert a["last_synced"] == 1700000000 and a["data"] == 4
    assert a["checkpoint_completed"] == "Yes" and a["checkpoint_time"] == 1600000000
    assert a["throughput"] == {"batches": 1, "changelogs_per_s": 2.0, "ops_per_s": 10.0}
    assert a["lag"] > 0 and a["open_failures"] == 1
    assert p["worker_status"] == "Passive" and p["replica"] == "user@host:/rep2"
    assert a["last_synced_utc"] == "2023-11-14 22:13:20" and a["checkpoint_time_utc"] == \
        "2020-09-13 12:26:40"
    assert a["last_synced_entry_utc"] == "N/A"

    assert main(["status", str(d / "b1.db"), str(d / "b2.db"), "--utc"]) == 0
    out = capsys.readouterr().out.splitlines()
    head = out[0]
    cols = ["PRIMARY NODE", "PRIMARY VOL", "PRIMARY BRICK", "SECONDARY USER", "SECONDARY",
            "SECONDARY NODE", "STATUS", "CRAWL STATUS", "LAST_SYNCED", "ENTRY", "DATA", "META",
            "FAILURES", "CHECKPOINT TIME", "CHECKPOINT COMPLETED", "CHECKPOINT COMPLETION TIME",
            "LAG", "THROUGHPUT"]
    starts = [head.index(c) for c in cols]
    assert starts == sorted(starts), head
    line1 = next(l for l in out if "/bricks/b1" in l)
    line2 = next(l for l in out if "/bricks/b2" in l)
    assert "2023-11-14 22:13:20 UTC" in line1 and "Changelog Crawl" in line1
    assert "2 journals/s, 10 ops/s" in line1
    assert line1[head.index("CHECKPOINT COMPLETED"):].split()[0] == "Yes"
    assert line2[head.index("SECONDARY USER"):].split()[:2] == ["user", "user@host:/rep2"]
    assert line2[head.index("SECONDARY NODE"):].split()[0] == "host"
    # counters hidden for a non-Active worker, as gsyncd's CLI does
    assert "Passive" in line2 and " 4 " not in line2


def test_status_cli_reads_gsyncd_status_file(tmp_path, capsys):
    StatusFile(tmp_path / status_file_name("/bricks/g1")).update(
        worker_status="Active", crawl_status="History Crawl", last_synced=1700000000)
    assert main(["status", str(tmp_path), "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["source"] == "/bricks/g1" and row["crawl_status"] == "History Crawl"


def test_status_cli_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "streamsync", "status", str(tmp_path / "nope")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "nope" in r.stderr and "Traceback" not in r.stderr
    st = SqliteState(tmp_path / "f.db")
    WorkerStatus(st, source="/b").set_faulty("boom")
    st.close()
    r = subprocess.run([sys.executable, "-m", "streamsync", "status", str(tmp_path / "f.db")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Faulty" in r.stdout


def test_status_of_a_replica_directory_and_the_default(tmp_path, capsys, monkeypatch):
    rep = tmp_path / "rep"
    sdir = rep / ".glusterfs" / "streamsync"
    sdir.mkdir(parents=True)
    _make_worker_state(sdir / "b1.sqlite", "/bricks/b1", str(rep), status="Active",
                       crawl="history", last=1700000000)
    assert main(["status", str(rep), "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["source"] == "/bricks/b1" and row["crawl_status"] == "History Crawl"
    # no argument: $STREAMSYNC_STATE, else the remote workers' states under XDG_STATE_HOME
    monkeypatch.delenv("STREAMSYNC_STATE", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert main(["status"]) == 2
    remote = tmp_path / "xdg" / "streamsync" / "bricks-b2_host-r"
    remote.mkdir(parents=True)
    _make_worker_state(remote / "state.sqlite", "/bricks/b2", "host:/r", status="Active",
                       crawl="live", last=1700000000)
    assert main(["status", "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["replica"] == "host:/r"
    monkeypatch.setenv("STREAMSYNC_STATE", str(sdir))
    assert main(["status", "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["source"] == "/bricks/b1"


def test_counter_updates_are_throttled_but_never_lost(tmp_path):
    st = SqliteState(tmp_path / "w.db")
    ws = WorkerStatus(st, source="/b", status_dir=tmp_path, counter_interval=3600)
    f = tmp_path / status_file_name("/b")
    ws.start()
    ws.inc("entry", 5)  # within the interval: state updated, file not yet
    ws.inc("data", 2)
    assert st.status()["entry"] == 5
    assert json.loads(f.read_text())["entry"] == 0
    ws.set_active()  # any other update writes the pending counters too
    d = json.loads(f.read_text())
    assert (d["worker_status"], d["entry"], d["data"]) == ("Active", 5, 2)
    m = ws.mirrored()
    m.add_status("meta", 3)
    m.set_status(last_synced_entry=7)
    assert json.loads(f.read_text())["meta"] == 3
    st.close()


def test_lag_is_measured_from_the_oldest_pending_journal(tmp_path, capsys):
    """LAG: 0 once every journal is applied (not now minus the last journal);
    else now minus the oldest journal still pending."""
    now = time.time()
    st = SqliteState(str(tmp_path / "w.db"))
    ws = WorkerStatus(st, source="/bricks/b1", replica="/rep", clock=lambda: now)
    ws.start()
    ws.set_last_synced((int(now) - 86400, 0))
    ws.set_pending(0, None)
    st.close()
    assert main(["status", "--json", str(tmp_path / "w.db")]) == 0
    assert json.loads(capsys.readouterr().out)["lag"] == 0
    st = SqliteState(str(tmp_path / "w.db"))
    WorkerStatus(st, source="/bricks/b1", replica="/rep").set_pending(3, int(now) - 50)
    st.close()
    assert main(["status", "--json", str(tmp_path / "w.db")]) == 0
    assert 50 <= json.loads(capsys.readouterr().out)["lag"] < 50 + 60
    assert main(["status", str(tmp_path / "w.db")]) == 0
    head, _, row = capsys.readouterr().out.splitlines()[:3]
    lag = row[head.index("LAG"):].split()[0]
    assert lag.endswith("s") and 50 <= int(lag.rstrip("s")) < 110, row
