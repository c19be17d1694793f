"""A large file written across many journals is sent once, not once per journal.

gsyncd sends a file's whole content for every batch whose journals write it
(gluster/glusterfs#4321). These tests run the real worker in live mode on a
journaled brick, one journal per live turn (the injected ``sleep`` of the
worker writes the next one, as a brick that rolls a journal over per change
interval), into a local replica with the real tar and rsync engines. What the
engines were handed is counted by wrapping their ``transfer``: the size of every
file at the moment it was handed over.
"""

from __future__ import annotations

import collections
import os
import threading

import pytest

from streamsync.crawl.select import run_worker
from streamsync.hold import Held, HoldRule, stime_floor
from streamsync.options import Options
from streamsync.records import DataRecord, Stime
from streamsync.sinks.replica import handle_relpath
from streamsync.sinks.rsync import RsyncEngine
from streamsync.sinks.smallfiles import SmallFileLane
from streamsync.sinks.tar import TarEngine
from streamsync.state import SqliteState
from streamsync.verify import verify

from test_worker_brick import Brick

T0 = 1700000015
MiB = 1 << 20


class Handed(collections.defaultdict):
    """gfid -> the sizes handed over; ``root``: the brick they are read from;
    ``by_engine``: the gfids a tar or rsync run was handed."""

    root = ""

    def __init__(self, *a) -> None:
        super().__init__(*a)
        self.by_engine: set[str] = set()


@pytest.fixture
def handed(monkeypatch):
    """Bytes handed to the data engines, per gfid: one size per transfer."""
    sent = Handed(list)

    def wrap(cls):
        original = cls.transfer

        def transfer(self, gfids):
            for g in gfids:
                path = os.path.join(sent.root, ".glusterfs", g[:2], g[2:4], g)
                sent[g].append(os.stat(path).st_size if os.path.exists(path) else 0)
                sent.by_engine.add(g)
            return original(self, gfids)
        monkeypatch.setattr(cls, "transfer", transfer)

    wrap(TarEngine)
    wrap(RsyncEngine)
    copy = SmallFileLane._copy

    def lane_copy(self, g):  # what rsync's in-process lane copies itself
        size = os.stat(os.path.join(sent.root, handle_relpath(g))).st_size
        how = copy(self, g)
        if how == 0:  # copied here, not handed on to rsync
            sent[g].append(size)
        return how
    monkeypatch.setattr(SmallFileLane, "_copy", lane_copy)
    return sent


class Appender:
    """Drives a live worker: every turn's sleep runs the next step of ``steps``
    (callables on the brick); when they are done, one idle turn, then stop."""

    def __init__(self, brick: Brick, steps, *, state_path: str) -> None:
        self.brick, self.steps = brick, list(steps)
        self.stop = threading.Event()
        self.state_path = state_path
        self.stimes: list[Stime | None] = []
        self._idle = 0

    def sleep(self, _seconds: float) -> None:
        with SqliteState(self.state_path) as st:
            self.stimes.append(st.data_stime())
        if self.steps:
            self.steps.pop(0)()
        else:
            self._idle += 1
            if self._idle > 1:
                self.stop.set()


def _append_steps(b: Brick, rel: str, chunk: bytes, n: int, first_ts: int, *, also=None):
    """``n`` journals, each appending ``chunk`` to ``rel`` (and running ``also``)."""
    def step(i: int):
        def run() -> None:
            b.write(rel, chunk, append=True)
            if also is not None:
                also(i)
            b.rollover(first_ts + i)
        return run
    return [step(i) for i in range(n)]


def _live(b: Brick, replica, engine: str, options: list[str], steps, *, follow=True,
          clock=None):
    """A live worker driven by ``steps``. rsync is handed files over 1 MiB (smaller
    ones are the in-process lane's): the counted engine sees the big file."""
    state_path = os.path.join(os.path.dirname(b.root), "state.sqlite")
    drive = Appender(b, steps, state_path=state_path)
    kw = {} if clock is None else {"clock": clock}
    s = run_worker(b.root, str(replica), mode="live", follow=follow, engine=engine,
                   options=Options.from_pairs(["change-interval=0", "copy-small-files=1048576",
                                               *options]),
                   state_path=state_path, stop=drive.stop, sleep=drive.sleep, **kw)
    return s, drive


def _big_brick(tmp_path, handed, size: int = 2 * MiB):
    """A journaled brick whose first journal creates ``big`` (``size`` bytes)."""
    b = Brick(tmp_path / "b")
    handed.root = b.root
    big = b.create("big", b"a" * size)
    return b, big


def _stopped_while_holding(b: Brick, tmp_path, appends: int, chunk: int) -> str:
    """A live worker stopped after ``appends`` more journals wrote ``big`` (held,
    no idle turn); returns its state file."""
    state_path = os.path.join(tmp_path, "state.sqlite")
    drive = Appender(b, _append_steps(b, "big", b"b" * chunk, appends, T0 + 1),
                     state_path=state_path)
    drive.steps.append(drive.stop.set)
    run_worker(b.root, str(tmp_path / "r"), mode="live", follow=True, engine="tar",
               options=Options.from_pairs(["change-interval=0", "hot-file-size=1048576"]),
               state_path=state_path, stop=drive.stop, sleep=drive.sleep)
    return state_path


@pytest.mark.parametrize("engine", ["tar", "rsync", "rsync's lane"])
def test_file_appended_over_journals_is_sent_once(tmp_path, handed, engine):
    """tar; rsync for files over 1 MiB; and the default, where rsync's in-process
    lane copies files up to 1 GiB itself (the big one by the kernel)."""
    b, big = _big_brick(tmp_path, handed)
    small = b.create("small", b"s")
    b.rollover(T0)
    chunk = b"b" * (2 * MiB)

    def touch_small(i: int) -> None:
        b.write("small", b"%d" % i, append=True)

    lane = ["copy-small-files=1073741824"] if engine == "rsync's lane" else []
    s, drive = _live(b, tmp_path / "r", engine.split("'")[0], ["hot-file-size=1048576", *lane],
                     _append_steps(b, "big", chunk, 11, T0 + 1, also=touch_small))
    final = os.path.getsize(b.path("big"))
    assert final == 24 * MiB
    # the big file was sent once, whole; the small one in every batch (with rsync
    # the first time at its CREATE, written into the file being created: not a send)
    assert handed[big] == [final]
    assert (big in handed.by_engine) == (engine != "rsync's lane")
    assert len(handed[small]) == (12 if engine == "tar" else 11)
    assert verify(b.root, tmp_path / "r", gfids=True) == []
    # the data stime never passed the first journal whose data was held
    held_stimes = drive.stimes[1:12]
    assert held_stimes and all(st == Stime(T0 - 1, 0) for st in held_stimes), drive.stimes
    assert s.data_stime == Stime(T0 + 11 - 1, 0) and s.open_failures == 0


def test_without_holding_every_batch_resends_the_file(tmp_path, handed):
    b, big = _big_brick(tmp_path, handed, MiB)
    b.rollover(T0)
    _live(b, tmp_path / "r", "tar", ["hot-file-size=0"],
          _append_steps(b, "big", b"b" * MiB, 5, T0 + 1))
    assert handed[big] == [MiB * k for k in range(1, 7)]
    assert verify(b.root, tmp_path / "r") == []


def test_held_file_survives_a_stop_and_is_sent_by_the_next_run(tmp_path, handed):
    b, big = _big_brick(tmp_path, handed)
    b.rollover(T0)
    state_path = _stopped_while_holding(b, tmp_path, 3, 2 * MiB)
    assert handed[big] == []
    assert verify(b.root, tmp_path / "r") != []
    with SqliteState(state_path) as st:
        assert st.data_stime() == Stime(T0 - 1, 0)
        assert set(st.note("held")) == {big}
    # a one-shot run finds no new journal and sends what was held, once
    s = run_worker(b.root, str(tmp_path / "r"), mode="live", engine="tar",
                   options=Options.from_pairs(["hot-file-size=1048576"]),
                   state_path=state_path)
    assert handed[big] == [8 * MiB]
    assert verify(b.root, tmp_path / "r", gfids=True) == []
    assert s.data_stime == Stime(T0 + 3 - 1, 0)
    with SqliteState(state_path) as st:
        assert st.note("held") is None


def test_idle_turn_waits_while_the_file_is_still_changing(tmp_path, handed):
    b, big = _big_brick(tmp_path, handed)
    b.rollover(T0)

    def append_unjournaled() -> None:  # changed, its journal not rolled over yet
        with open(b.path("big"), "ab") as fh:
            fh.write(b"c" * MiB)
        b._log(DataRecord(big))

    # the first idle turn must not send: the file changed after it was held
    steps = [lambda: b.write("big", b"b" * MiB, append=True) or b.rollover(T0 + 1),
             append_unjournaled,          # the next turn is idle, the file changed meanwhile
             lambda: b.rollover(T0 + 2)]  # then its journal: held again
    s, drive = _live(b, tmp_path / "r", "tar", ["hot-file-size=1048576"], steps)
    assert handed[big] == [4 * MiB]
    assert verify(b.root, tmp_path / "r") == []
    assert s.data_stime == Stime(T0 + 2 - 1, 0)


def test_file_changing_for_longer_than_max_wait_is_sent_anyway(tmp_path, handed):
    b, big = _big_brick(tmp_path, handed)
    b.rollover(T0)
    now = [float(T0 + 100)]

    def clock() -> float:
        return now[0]

    def step(i: int):
        def run() -> None:
            now[0] += 40.0
            b.write("big", b"b" * MiB, append=True)
            b.rollover(T0 + 1 + i)
        return run
    _live(b, tmp_path / "r", "tar", ["hot-file-size=1048576", "hot-file-max-wait=100"],
          [step(i) for i in range(8)], clock=clock)
    # a journal every 40 s, 1 MiB each: held from the first batch (2 MiB); at 40 s
    # and 80 s still waiting; at 120 s overdue, sent (5 MiB); held again by the
    # next batch and sent 120 s later (9 MiB); held by the last, sent once idle
    assert handed[big] == [5 * MiB, 9 * MiB, 10 * MiB]
    assert verify(b.root, tmp_path / "r") == []


def test_held_file_deleted_before_its_turn_is_not_a_failure(tmp_path, handed):
    b, big = _big_brick(tmp_path, handed)
    b.rollover(T0)
    steps = [lambda: b.write("big", b"b" * MiB, append=True) or b.rollover(T0 + 1),
             lambda: b.unlink("big") or b.rollover(T0 + 2)]
    s, _ = _live(b, tmp_path / "r", "tar", ["hot-file-size=1048576"], steps)
    assert handed[big] == []
    assert s.open_failures == 0 and s.data_stime == Stime(T0 + 2 - 1, 0)
    assert verify(b.root, tmp_path / "r") == []


def test_rule():
    rule = HoldRule(min_size=10, max_wait=60.0)
    assert not rule.hold(size=9, hot=True, held=None, now=0.0)
    assert not rule.hold(size=None, hot=True, held=None, now=0.0)
    assert rule.hold(size=10, hot=True, held=Held(0.0, 5, 1), now=59.9)
    assert not rule.hold(size=10, hot=True, held=Held(0.0, 5, 1), now=60.0)
    assert rule.release_when_idle(Held(0.0, 5, 1), ctime=None, now=0.0)
    assert rule.release_when_idle(Held(0.0, 5, 1), ctime=2, now=60.0)
    assert stime_floor({"a": Held(0.0, 9, 1), "b": Held(0.0, 7, 1)}) == 6
    assert stime_floor({}) is None
    assert HoldRule.from_options(Options.from_pairs(["hot-file-size=0"])) is None


def test_status_says_what_is_held(tmp_path, handed, capsys):
    """A worker stopped while it holds a file: `streamsync status` says so under the
    table and in JSON, and LAST_SYNCED is the stime before the held journal."""
    import json

    from streamsync.cli import main
    b, _big = _big_brick(tmp_path, handed)
    b.rollover(T0)
    state_path = _stopped_while_holding(b, tmp_path, 2, MiB)
    assert main(["status", "--json", "--state", state_path]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["held_files"] == 1 and row["held_since"] == T0
    assert row["last_synced"] == T0 - 1
    assert main(["status", "--utc", "--state", state_path]) == 0
    text = capsys.readouterr().out
    assert "1 large file still changing, held since the journal of" in text
    assert main(["metrics", "--once", state_path]) == 0
    held = [ln for ln in capsys.readouterr().out.splitlines()
            if ln.startswith("streamsync_held_files{")]
    assert len(held) == 1 and held[0].endswith(" 1.0")
