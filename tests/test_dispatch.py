"""The dispatcher: seed order per changelog, stimes, retries of data only, the
failure ledger and gsyncd's log lines."""

from __future__ import annotations

import errno
import logging

import pytest

from streamsync.dispatch import Dispatcher
from streamsync.ops import Batch, ChangelogPlan, EntryFailure, EntryOp, FailureInfo
from streamsync.options import Options
from streamsync.records import ROOT_GFID, Changelog, Stat, Stime
from streamsync.sinks.engine import TransferResult
from streamsync.state import SqliteState
from streamsync.views import MemoryView

R = ROOT_GFID
FILE = Stat(0, 0, 0o100644, 1.0, 2.0)


def G(n: int) -> str:
    return f"5b1c2d3e-0000-4000-8000-{n:012x}"


class Events:
    def __init__(self):
        self.log = []


class Sink:
    def __init__(self, ev, fail=None):
        self.ev, self.fail = ev, fail or (lambda op: None)

    def apply_entries(self, ops, *, waiting=()):
        """As a real sink: ops that depend on ``waiting`` are held, not applied."""
        from streamsync.sinks.order import EntryOrder
        order = EntryOrder(waiting)
        ops = list(ops)
        held = {id(o): f for o in ops if (f := order.held(o)) is not None}
        self.ev.log.append(("entries", tuple(o.gfid for o in ops if id(o) not in held)))
        return [held.get(id(o)) or self.fail(o) for o in ops
                if id(o) in held or self.fail(o) is not None]

    def apply_meta(self, ops):
        self.ev.log.append(("meta", tuple(o.gfid for o in ops)))
        return []


class Engine:
    name = "fake"

    def __init__(self, ev, codes=()):
        self.ev, self.codes, self.calls = ev, list(codes), []

    def is_partial(self, code):
        return code in (23, 24)

    def transfer(self, gfids):
        self.calls.append(tuple(gfids))
        self.ev.log.append(("data", tuple(gfids)))
        code = self.codes.pop(0) if self.codes else 0
        return TransferResult(code, "partial" if code else "", len(gfids))


class State(SqliteState):
    def __init__(self, ev):
        super().__init__(":memory:")
        self.ev = ev

    def set_entry_stime(self, st):
        self.ev.log.append(("entry_stime", tuple(st)))
        super().set_entry_stime(st)

    def set_data_stime(self, st):
        self.ev.log.append(("data_stime", tuple(st)))
        super().set_data_stime(st)


class DataView(MemoryView):
    """A memory view whose files have data paths (those still present)."""

    def data_path(self, gfid):
        return None if self.lstat(gfid) is None else f"/data/{gfid}"


def plan(ts, entries=(), meta=(), data=(), gated=False, skipped=False):
    ops = tuple(EntryOp("CREATE", g, R, f"n{g[-3:]}", mode=0o100644, uid=0, gid=0)
                for g in entries)
    return ChangelogPlan(Changelog(f"/c/CHANGELOG.{ts}", ts, 100), skipped, gated,
                         () if gated else ops, tuple(meta), tuple(data),
                         (("CREATE", len(entries)),))


def make(ev, view=None, codes=(), fail=None, **opts):
    pairs = [f"{k.replace('_', '-')}={v}" for k, v in opts.items()]
    view = view or DataView({G(i): FILE for i in range(1, 40)})
    return Dispatcher(sink=Sink(ev, fail), engine=Engine(ev, codes), state=State(ev), view=view,
                      options=Options.from_pairs(["sync-jobs=1", *pairs]), retry_delay=0)


def test_seed_order_per_changelog():
    ev = Events()
    d = make(ev)
    d.run_batch(Batch(0, (plan(100, [G(1)], [G(2)], [G(3)]), plan(105, [G(4)], [G(5)], [G(6)]))))
    names = [e[0] for e in ev.log]
    # entry ops, then entry stime, then meta, per changelog; data stime last
    i1, i2 = names.index("entries"), names.index("entries", names.index("entries") + 1)
    assert ev.log[i1:i1 + 3] == [("entries", (G(1),)), ("entry_stime", (99, 0)), ("meta", (G(2),))]
    assert ev.log[i2:i2 + 3] == [("entries", (G(4),)), ("entry_stime", (104, 0)), ("meta", (G(5),))]
    assert ev.log[-1] == ("data_stime", (104, 0))
    assert sorted(g for e in ev.log if e[0] == "data" for g in e[1]) == [G(3), G(6)]
    assert d.state.is_done("CHANGELOG.100") and d.state.is_done("CHANGELOG.105")
    assert d.state.status()["last_synced"] == 104 and d.state.status()["last_synced_entry"] == 104


def test_gated_changelog_sends_no_entries_but_meta_and_data():
    ev = Events()
    d = make(ev)
    d.run_batch(Batch(0, (plan(100, [G(1)], [G(2)], [G(3)], gated=True),)))
    assert [e[0] for e in ev.log] == ["meta", "data", "data_stime"]


def test_meta_skips_gfids_gone_from_the_source():
    ev = Events()
    d = make(ev, view=MemoryView({G(2): FILE}))
    d.run_batch(Batch(0, (plan(100, meta=[G(2), G(33)]),)))
    assert ("meta", (G(2),)) in ev.log


def test_a_gfid_queued_by_several_changelogs_is_sent_once():
    ev = Events()
    d = make(ev)
    d.run_batch(Batch(0, tuple(plan(100 + i, data=[G(7), G(8 + i)]) for i in range(5))))
    sent = [g for c in d.syncer.engine.calls for g in c]
    assert sorted(sent) == sorted([G(7)] + [G(8 + i) for i in range(5)])


def test_partial_failure_retries_data_only_minus_vanished():
    ev = Events()
    view = DataView({G(1): FILE, G(3): FILE})  # G(2) vanished from the source
    d = make(ev, view=view, codes=[23, 0])
    r = d.run_batch(Batch(0, (plan(100, [G(1)], data=[G(1), G(2), G(3)]),)))
    assert d.syncer.engine.calls == [(G(1), G(2), G(3)), (G(1), G(3))]
    assert [e[0] for e in ev.log].count("entries") == 1  # entry ops are not retried
    assert r.attempts == 2 and r.data_abandoned == 0 and d.state.failures() == []


def test_exhausted_retries_advance_stime_and_fill_the_ledger():
    ev = Events()
    d = make(ev, codes=[23] * 10, max_rsync_retries=3)
    r = d.run_batch(Batch(0, (plan(100, data=[G(1), G(2)]),)))
    assert len(d.syncer.engine.calls) == 3 and r.data_abandoned == 2
    assert d.state.data_stime() == Stime(99, 0) and d.state.is_done("CHANGELOG.100")
    assert sorted(f.gfid for f in d.state.failures("data")) == [G(1), G(2)]
    # the ledger is re-queued later: now the transfer works
    d.syncer.engine.codes = []
    assert d.retry_failed() == (2, 0)
    assert d.state.failures() == []


def test_entry_failures_go_to_the_ledger_only_while_the_gfid_exists():
    ev = Events()

    def fail(op):
        return EntryFailure(op, errno.EACCES, FailureInfo())

    d = make(ev, fail=fail, gfid_conflict_resolution="false")
    d.view = MemoryView({G(1): FILE})
    d.run_batch(Batch(0, (plan(100, [G(1), G(30)]),)))
    [f] = d.state.failures("entry")
    assert (f.gfid, f.errno, f.changelog) == (G(1), errno.EACCES, "CHANGELOG.100")
    assert f.op["op"] == "CREATE" and d.state.status()["failures"] == 1


def test_skipped_changelogs_are_marked_done_without_moving_stime_back():
    ev = Events()
    d = make(ev)
    d.state.set_data_stime((500, 0))
    d.run_batch(Batch(0, (plan(100, [G(1)], skipped=True),)))
    assert d.state.data_stime() == Stime(500, 0) and d.state.is_done("CHANGELOG.100")
    assert not any(e[0] == "entries" for e in ev.log)


def test_gsyncd_log_lines(caplog):
    ev = Events()
    d = make(ev)
    with caplog.at_level(logging.INFO):
        d.run_batch(Batch(0, (plan(100, [G(1)], [G(2)], [G(3)]),)))
    text = caplog.text
    assert "Entry Time Taken [{UNL=0}, {RMD=0}, {CRE=1}, {MKN=0}, {MKD=0}, {REN=0}, {LIN=0}, " \
           "{SYM=0}, {duration=" in text
    assert "Data/Metadata Time Taken [{SETA=0}, {meta_duration=" in text
    assert "Batch Completed [{mode=live_changelog}, {duration=" in text
    assert "{changelog_start=100}, {changelog_end=100}, {num_changelogs=1}, {stime=(99, 0)}, " \
           "{entry_stime=(99, 0)}]" in text
    assert "Sync Time Taken [{job=1}, {num_files=1}, {return_code=0}, {duration=" in text


def test_the_bulk_data_filter_decides_as_the_single_one():
    """A sink that answers many gfids at once (a volume asks them on threads) sends
    and owes exactly what the one-at-a-time filter would; it is asked once per
    changelog (and once more, at the end of the batch, for what was owed), not
    once per gfid."""
    targets = {G(3), G(5)}
    owed_view = DataView({G(i): FILE for i in range(1, 40)})
    results = {}
    for bulk in (False, True):
        ev = Events()
        asked: list[tuple[str, ...]] = []

        def many(gfids):
            asked.append(tuple(gfids))
            return [g in targets for g in gfids]

        d = Dispatcher(sink=Sink(ev), engine=Engine(ev), state=State(ev), view=owed_view,
                       options=Options.from_pairs(["sync-jobs=1"]), retry_delay=0,
                       data_filter=lambda g: g in targets,
                       data_filter_many=many if bulk else None)
        r = d.run_batch(Batch(0, (plan(100, data=[G(3), G(4), G(5)]),)))
        sent = sorted(g for c in d.syncer.engine.calls for g in c)
        owed = sorted(f.gfid for f in d.state.failures("data"))
        results[bulk] = (sent, owed, r.data_files)
        if bulk:
            assert asked == [(G(3), G(4), G(5)), (G(4),)]
    assert results[True] == results[False] == ([G(3), G(5)], [G(4)], 2)


def test_a_sink_that_reports_files_as_it_makes_them_gets_their_data_started_at_once():
    """A volume makes long CREATE runs on threads and reports each chunk of files as
    they are made (``on_created``): their data is queued then, while the entry phase
    goes on; each is sent once, files not named by a D record are not sent, and the
    counts are what the batch would report without the hook."""
    seen_queued_during_entries = []

    class ReportingSink(Sink):
        on_created = None

        def apply_entries(self, ops, *, waiting=()):
            ops = list(ops)
            failures = super().apply_entries(ops, waiting=waiting)
            made = [o.gfid for o in ops if o.op == "CREATE"]
            if self.on_created is not None:
                self.on_created(made[:2])
                seen_queued_during_entries.append(set(d.syncer._sent))
                self.on_created(made[2:])
            return failures

    ev = Events()
    d = Dispatcher(sink=ReportingSink(ev), engine=Engine(ev), state=State(ev),
                   view=DataView({G(i): FILE for i in range(1, 40)}),
                   options=Options.from_pairs(["sync-jobs=1"]), retry_delay=0)
    p = plan(100, entries=[G(1), G(2), G(3), G(4)], data=[G(1), G(2), G(4), G(9)])
    r = d.run_batch(Batch(0, (p,)))
    assert seen_queued_during_entries == [{G(1), G(2)}]  # before the entries were done
    sent = [g for c in d.syncer.engine.calls for g in c]
    assert sorted(sent) == [G(1), G(2), G(4), G(9)]  # once each; G(3) has no D record
    assert r.data_files == 4 and d.sink.on_created is None  # the hook is removed after
