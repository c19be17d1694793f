"""History crawl over the corpus' real HTIME index; live crawl turns; mode choice."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from streamsync.crawl import (HistoryUnavailable, NoStimeAvailable, PartialHistory,
                              WorkerContext)
from streamsync.crawl.history import history_crawl
from streamsync.crawl.live import live_crawl, scan_new
from streamsync.crawl.select import choose_mode
from streamsync.dispatch import Dispatcher
from streamsync.options import Options
from streamsync.records import Stime
from streamsync.sinks.recording import RecordingEngine, RecordingSink
from streamsync.state import SqliteState
from streamsync.views import MemoryView

RAW = Path(__file__).parent / "data" / "gluster-10.3" / "raw" / "ascii-delpath-on"


def _htime_stamps(path: Path) -> list[tuple[int, bool]]:
    """Independent reading of an HTIME file: (stamp, is-empty) per NUL-separated entry."""
    out = []
    for raw in path.read_bytes().split(b"\0"):
        if raw:
            base = os.path.basename(raw.decode())
            out.append((int(base[-10:]), base.startswith("changelog.")))
    return out


def _files() -> list[int]:
    return sorted(int(n.split(".")[1]) for n in os.listdir(RAW) if n.startswith("CHANGELOG."))


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def _ctx(tmp_path, *, stime=None, register_time, clock=None, cdir=RAW, options=None):
    state = SqliteState(":memory:")
    if stime is not None:
        state.set_data_stime(stime)
    clock = clock or FakeClock(register_time)
    opts = options or Options()
    disp = Dispatcher(sink=RecordingSink(), engine=RecordingEngine(), state=state,
                      view=MemoryView(), options=opts, retry_delay=0)
    return WorkerContext(source=str(tmp_path), view=MemoryView(), options=opts, state=state,
                         dispatcher=disp, changelog_dir=str(cdir), working_dir=str(tmp_path),
                         register_time=register_time, clock=clock, sleep=clock.sleep)


def test_corpus_htime_shape():
    (htime,) = (RAW / "htime").iterdir()
    stamps = _htime_stamps(htime)
    assert [t for t, empty in stamps if not empty] == _files()
    assert any(empty for _, empty in stamps)  # empty rollovers are listed lower-case


def test_history_range_inside(tmp_path):
    (htime,) = (RAW / "htime").iterdir()
    stamps = _htime_stamps(htime)
    last_ts = stamps[-1][0]
    files = _files()
    start = files[4]
    ctx = _ctx(tmp_path, stime=(start, 0), register_time=last_ts)
    res = history_crawl(ctx)
    want = {f"CHANGELOG.{t}" for t in files if t >= start}
    assert ctx.state.done_names() == want
    assert res.changelogs == len(want)
    assert ctx.state.data_stime() == Stime(files[-1] - 1, 0)
    assert ctx.clock.sleeps == []  # history reached the registration time at once


def test_history_stime_between_rollovers_skips_older(tmp_path):
    files = _files()
    start = files[3] + 1  # inside the interval of files[4]
    (htime,) = (RAW / "htime").iterdir()
    ctx = _ctx(tmp_path, stime=(start, 0), register_time=_htime_stamps(htime)[-1][0])
    history_crawl(ctx)
    assert ctx.state.done_names() == {f"CHANGELOG.{t}" for t in files if t >= start}


@pytest.mark.parametrize("where", ["before", "after"])
def test_history_outside_the_index_is_unavailable(tmp_path, where):
    (htime,) = (RAW / "htime").iterdir()
    first = int(htime.name.split(".")[1])
    last_ts = _htime_stamps(htime)[-1][0]
    stime = first - 100 if where == "before" else last_ts + 100
    ctx = _ctx(tmp_path, stime=(stime, 0), register_time=last_ts + 200)
    with pytest.raises(HistoryUnavailable):
        history_crawl(ctx)
    assert ctx.state.done_names() == set()


def test_history_without_stime(tmp_path):
    ctx = _ctx(tmp_path, register_time=1795467113)
    with pytest.raises(NoStimeAvailable):
        history_crawl(ctx)


def test_partial_history_retries_once_then_hands_over(tmp_path):
    (htime,) = (RAW / "htime").iterdir()
    last_ts = _htime_stamps(htime)[-1][0]
    files = _files()
    reg = last_ts + 100
    clock = FakeClock(reg + 3)  # 3 s after registration
    ctx = _ctx(tmp_path, stime=(files[0], 0), register_time=reg, clock=clock)
    with pytest.raises(PartialHistory) as ei:
        history_crawl(ctx)
    assert ei.value.actual_end == last_ts
    # first turn: everything processed; then sleep 15 - elapsed, second turn, give up
    assert clock.sleeps == [12]
    assert ctx.state.done_names() == {f"CHANGELOG.{t}" for t in files}
    assert ctx.state.data_stime() == Stime(files[-1] - 1, 0)


def test_partial_history_slow_first_turn_sleeps_at_least_one_second(tmp_path):
    (htime,) = (RAW / "htime").iterdir()
    last_ts = _htime_stamps(htime)[-1][0]
    clock = FakeClock(last_ts + 500)
    ctx = _ctx(tmp_path, stime=(_files()[0], 0), register_time=last_ts + 100, clock=clock)
    with pytest.raises(PartialHistory):
        history_crawl(ctx)
    assert clock.sleeps == [1]


def test_live_turns_pick_up_new_journals(tmp_path):
    cdir = tmp_path / "cl"
    cdir.mkdir()
    files = _files()
    for t in files[:5]:
        shutil.copy(RAW / f"CHANGELOG.{t}", cdir)
    ctx = _ctx(tmp_path, register_time=files[0], cdir=cdir,
               options=Options.from_pairs(["change-interval=0"]))
    r = live_crawl(ctx, turns=1)
    assert r.changelogs == 5 and ctx.state.data_stime() == Stime(files[4] - 1, 0)
    assert scan_new(str(cdir), done=ctx.state.done_names()) == []
    for t in files[5:8]:
        shutil.copy(RAW / f"CHANGELOG.{t}", cdir)
    assert [c.ts for c in scan_new(str(cdir), done=ctx.state.done_names())] == files[5:8]
    r = live_crawl(ctx, turns=2)
    assert r.changelogs == 3 and ctx.state.data_stime() == Stime(files[7] - 1, 0)
    assert len(ctx.clock.sleeps) == 1  # slept change-interval between the two scans


def test_live_marks_journals_older_than_stime_done_without_reading(tmp_path):
    cdir = tmp_path / "cl"
    cdir.mkdir()
    files = _files()
    for t in files[:4]:
        shutil.copy(RAW / f"CHANGELOG.{t}", cdir)
    (cdir / f"CHANGELOG.{files[0]}").write_bytes(b"garbage that would not parse\n")
    ctx = _ctx(tmp_path, stime=(files[1], 0), register_time=files[0], cdir=cdir)
    live_crawl(ctx, turns=1)
    assert ctx.state.done_names() == {f"CHANGELOG.{t}" for t in files[:4]}
    assert ctx.state.data_stime() == Stime(files[3] - 1, 0)


def test_choose_mode():
    st = SqliteState(":memory:")
    o = Options()
    assert choose_mode(st, o) == "xsync"
    st.set_data_stime((5, 0))
    assert choose_mode(st, o) == "history"
    assert choose_mode(st, Options.from_pairs(["change-detector=xsync"])) == "xsync"


def test_live_scan_skips_old_dated_directories(tmp_path):
    import calendar
    cdir = tmp_path / "changelogs"
    old = calendar.timegm((2026, 1, 5, 12, 0, 0))
    new = calendar.timegm((2026, 11, 23, 12, 0, 0))
    for ts in (old, old + 15, new - 3 * 86400, new, new + 15):
        t = time.gmtime(ts)
        d = cdir / f"{t.tm_year:04d}" / f"{t.tm_mon:02d}" / f"{t.tm_mday:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"CHANGELOG.{ts}").write_text("")
    (cdir / "htime").mkdir()
    every = [c.ts for c in scan_new(str(cdir), done=set())]
    assert every == [old, old + 15, new - 3 * 86400, new, new + 15]
    # with the stime: directories more than two days before it are not listed
    assert [c.ts for c in scan_new(str(cdir), done=set(), since=new)] == [new, new + 15]
    assert [c.ts for c in scan_new(str(cdir), done={f"CHANGELOG.{new}"}.__contains__,
                                   since=new)] == [new + 15]
    # flat layout (GlusterFS < 8) still works with a stime
    flat = tmp_path / "flat"
    flat.mkdir()
    for ts in (old, new):
        (flat / f"CHANGELOG.{ts}").write_text("")
    assert [c.ts for c in scan_new(str(flat), done=set(), since=new)] == [old, new]
