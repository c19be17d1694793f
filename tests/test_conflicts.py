"""gfid-conflict resolution (spec 3.5) against a real replica directory, with the
source described by an in-memory view."""

from __future__ import annotations

import errno
import os

import pytest

from streamsync.ops import EntryOp
from streamsync.records import ROOT_GFID, Stat
from streamsync.sinks.conflicts import fix_round, resolve_conflicts
from streamsync.sinks.replica import ReplicaSink
from streamsync.views import MemoryView

R = ROOT_GFID
FILE = Stat(0, 0, 0o100644, 0.0, 0.0)
DIR = Stat(0, 0, 0o40755, 0.0, 0.0)


def G(n: int) -> str:
    return f"5b1c2d3e-0000-4000-8000-{n:012x}"


def mkdir(g, p, n):
    return EntryOp("MKDIR", g, p, n, mode=0o40755, uid=0, gid=0)


def create(g, p, n):
    return EntryOp("CREATE", g, p, n, mode=0o100644, uid=0, gid=0)


@pytest.fixture
def sink(tmp_path):
    s = ReplicaSink(tmp_path / "replica")
    yield s
    s.close()


class Counting:
    """Wraps a sink and counts apply_entries calls."""

    def __init__(self, sink):
        self.sink, self.calls = sink, 0

    def apply_entries(self, ops):
        self.calls += 1
        return self.sink.apply_entries(ops)


def run(sink, view, ops):
    failures = sink.apply_entries(ops)
    return resolve_conflicts(sink, ops, failures, view=view)


def test_replica_entry_gone_from_source_is_deleted(sink):
    sink.apply_entries([create(G(2), R, "a"), mkdir(G(3), R, "d")])
    # source: "a" and "d" now hold new inodes; G(2), G(3) are gone
    view = MemoryView({G(4): FILE, G(5): DIR}, {(R, "a"): G(4), (R, "d"): G(5)})
    ops, failures = run(sink, view, [create(G(4), R, "a"), mkdir(G(5), R, "d")])
    assert failures == []
    assert sink.entry_gfid(R, "a") == G(4) and sink.entry_gfid(R, "d") == G(5)
    assert sink.lstat(G(2)) is None and sink.lstat(G(3)) is None


def test_op_already_satisfied_is_dropped(sink):
    sink.apply_entries([create(G(2), R, "a")])
    # the source still has G(2) at "a": a stale CREATE of G(9) there is dropped
    view = MemoryView({G(2): FILE}, {(R, "a"): G(2)})
    ops, failures = run(sink, view, [create(G(9), R, "a")])
    assert failures == [] and ops == []
    assert sink.entry_gfid(R, "a") == G(2)


def test_directory_renamed_on_source_is_renamed_on_replica(sink):
    sink.apply_entries([mkdir(G(1), R, "old"), create(G(2), G(1), "f")])
    view = MemoryView({G(1): DIR, G(2): FILE}, {(R, "new"): G(1), (G(1), "f"): G(2)})
    ops, failures = run(sink, view, [mkdir(G(1), R, "new")])
    assert failures == []
    assert sink.entry_gfid(R, "new") == G(1) and sink.entry_gfid(R, "old") is None
    assert os.path.isfile(os.path.join(sink.root, "new", "f"))
    assert sink.dir_entry(G(1)) == (R, "new")


def test_file_mismatch_with_gfid_elsewhere_on_source_unlinks_replica_name(sink):
    sink.apply_entries([create(G(2), R, "a")])
    # source: G(2) lives on as "b" (renamed), "a" now holds G(3)
    view = MemoryView({G(2): FILE, G(3): FILE}, {(R, "b"): G(2), (R, "a"): G(3)})
    ops, failures = run(sink, view, [create(G(3), R, "a")])
    assert failures == []
    assert sink.entry_gfid(R, "a") == G(3)


def test_rename_onto_existing_file(sink):
    """The demo brick's P6 case: mv page9.md page10.md over an existing page10.md."""
    sink.apply_entries([create(G(2), R, "page9.md"), create(G(3), R, "page10.md")])
    view = MemoryView({G(2): FILE}, {(R, "page10.md"): G(2)})
    op = EntryOp("RENAME", G(2), R, "page9.md", pgfid1=R, bname1="page10.md", stat=FILE)
    ops, failures = run(sink, view, [op])
    assert failures == []
    assert sink.entry_gfid(R, "page10.md") == G(2) and sink.entry_gfid(R, "page9.md") is None
    assert sink.lstat(G(3)) is None


def test_enoent_parent_gone_on_source_is_dropped(sink):
    view = MemoryView({G(5): FILE}, {})
    ops, failures = run(sink, view, [create(G(5), G(1), "f")])
    assert failures == [] and ops == []


def test_enoent_parents_created_from_source_handles(sink):
    # source has /a/b/f; the replica has nothing (the MKDIRs were missed)
    view = MemoryView({G(1): DIR, G(2): DIR, G(3): FILE},
                      {(R, "a"): G(1), (G(1), "b"): G(2), (G(2), "f"): G(3)})
    ops, failures = run(sink, view, [create(G(3), G(2), "f")])
    assert failures == []
    assert os.path.isfile(os.path.join(sink.root, "a", "b", "f"))
    assert sink.dir_entry(G(2)) == (G(1), "b")


def test_unfixable_failures_stop_without_spinning(sink):
    counting = Counting(sink)
    view = MemoryView({G(2): FILE}, {(R, "x"): G(2)})
    bad = create(G(2), R, "../escape")
    failures = sink.apply_entries([bad])
    ops, left = resolve_conflicts(counting, [bad], failures, view=view)
    assert [f.errno for f in left] == [errno.EINVAL]
    assert counting.calls == 1  # one retry, no progress -> stop (newest gsyncd)


def test_fix_round_ops_match_the_seed_rules():
    from streamsync.ops import EntryFailure, FailureInfo
    view = MemoryView({G(1): DIR, G(7): FILE}, {(R, "elsewhere"): G(1), (R, "keep"): G(7)})
    f_gone = EntryFailure(create(G(5), R, "a"), errno.EEXIST,
                          FailureInfo(gfid_mismatch=True, slave_gfid=G(9)))
    f_gone_dir = EntryFailure(create(G(5), R, "d"), errno.EEXIST,
                              FailureInfo(gfid_mismatch=True, slave_isdir=True, slave_gfid=G(8)))
    f_dir = EntryFailure(mkdir(G(1), R, "x"), errno.EEXIST,
                         FailureInfo(name_mismatch=True, slave_isdir=True, slave_gfid=G(1),
                                     slave_entry=f".gfid/{R}/old"))
    kept = create(G(6), R, "keep")
    f_same = EntryFailure(kept, errno.EEXIST, FailureInfo(gfid_mismatch=True, slave_gfid=G(7)))
    ops = [f_gone.op, f_gone_dir.op, f_dir.op, kept]
    fixes = fix_round([f_gone, f_gone_dir, f_dir, f_same], ops, view=view)
    assert fixes == [EntryOp("UNLINK", G(9), R, "a"), EntryOp("RMDIR", G(8), R, "d"),
                     EntryOp("RENAME", G(1), R, "old", pgfid1=R, bname1="elsewhere", stat=DIR)]
    assert kept not in ops and len(ops) == 3
