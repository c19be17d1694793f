"""What the invariant test (``test_invariant.py``) found, one case each.

* nothing overtakes a failed entry op on the same gfid, in a batch (the sink)
  and across runs (the dispatcher holds ops behind open ledger rows);
* a create that cannot be finished is undone, not left half made;
* a directory moved below a directory whose RENAME failed waits for it;
* a directory RENAME whose source parent cannot be reached is owed, not a no-op;
* a RENAME dropped because its target parent is gone leaves the gfid at its old
  name, and the next RENAME starts from there;
* a failed UNLINK/RMDIR/RENAME of a gfid gone from the source is still ledgered
  (the replica keeps the name);
* a rewrite of the same size whose mtime the replica already has is sent.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from streamsync.dispatch import Dispatcher
from streamsync.ops import Batch, EntryFailure, EntryOp, FailureInfo
from streamsync.options import Options
from streamsync.records import ROOT_GFID, Stat
from streamsync.sinks.conflicts import resolve_conflicts
from streamsync.sinks.replica import ReplicaSink, handle_relpath
from streamsync.views import MemoryView

from test_dispatch import DataView, Engine, Events, Sink, State, plan

R = ROOT_GFID
DIR = Stat(0, 0, 0o40755, 0, 0)
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chattr)")


def G(n: int) -> str:
    return f"5b1c2d3e-0000-4000-8000-{n:012x}"


def mkdir(g, parent, name):
    return EntryOp("MKDIR", g, parent, name, mode=0o40755, uid=0, gid=0, stat=DIR)


def rename(g, p, n, p1, n1, st=DIR):
    return EntryOp("RENAME", g, p, n, pgfid1=p1, bname1=n1, stat=st)


def _chattr(flag, path):
    r = subprocess.run(["chattr", flag, path], capture_output=True)
    if r.returncode:
        pytest.skip("no immutable flag on this filesystem")


@pytest.fixture
def replica(tmp_path):
    root = str(tmp_path / "replica")
    sink = ReplicaSink(root)
    yield root, sink
    sink.close()
    subprocess.run(["chattr", "-R", "-i", root], capture_output=True)


@root_only
def test_a_later_rename_waits_behind_a_failed_one_then_the_retry_converges(replica):
    root, sink = replica
    assert sink.apply_entries([mkdir(G(1), R, "a"), mkdir(G(2), R, "locked"),
                               mkdir(G(3), G(1), "d")]) == []
    _chattr("+i", os.path.join(root, "locked"))
    ops = [rename(G(3), G(1), "d", G(2), "d1"),   # into the immutable directory: EPERM
           rename(G(3), G(2), "d1", R, "d2")]     # would be a no-op, and lose the move
    failures = sink.apply_entries(ops)
    assert [(f.op, f.errno) for f in failures] == [(ops[0], errno.EPERM), (ops[1], errno.EPERM)]
    assert os.path.isdir(os.path.join(root, "a", "d"))  # nothing moved
    _chattr("-i", os.path.join(root, "locked"))
    assert sink.apply_entries([f.op for f in failures]) == []
    assert os.path.isdir(os.path.join(root, "d2")) and not os.path.exists(
        os.path.join(root, "locked", "d1"))
    assert os.readlink(os.path.join(root, handle_relpath(G(3)))).endswith(f"{R}/d2")


@root_only
def test_a_directory_moved_below_a_directory_whose_rename_failed_waits(replica):
    """Source: D moves out of L into P/T, then to the root; S is made in D; P moves
    into S. On the replica the first move fails (L immutable): moving P into S
    there would put P/T inside D, and the retry of D's move would get EINVAL."""
    root, sink = replica
    L, D, P, T, S = G(1), G(2), G(3), G(4), G(5)
    assert sink.apply_entries([mkdir(L, R, "l"), mkdir(D, L, "d"), mkdir(P, R, "p"),
                               mkdir(T, P, "t")]) == []
    _chattr("+i", os.path.join(root, "l"))
    ops = [rename(D, L, "d", T, "n"), rename(D, T, "n", R, "d59"), mkdir(S, D, "s"),
           rename(P, R, "p", S, "p")]
    failures = sink.apply_entries(ops)
    assert [f.op for f in failures] == [ops[0], ops[1], ops[3]]  # MKDIR S in D is fine
    assert os.path.isdir(os.path.join(root, "p", "t"))  # P did not move under D
    _chattr("-i", os.path.join(root, "l"))
    assert sink.apply_entries([f.op for f in failures]) == []
    assert os.path.isdir(os.path.join(root, "d59", "s", "p", "t"))


@root_only
def test_a_create_whose_handle_cannot_be_made_is_undone(replica):
    root, sink = replica
    assert sink.apply_entries([mkdir(G(1), R, "first")]) == []  # makes .glusterfs/5b
    _chattr("+i", os.path.join(root, ".glusterfs", "5b", "1c"))
    ops = [mkdir(G(2), R, "d"),
           EntryOp("CREATE", G(3), R, "f", mode=0o100644, uid=0, gid=0),
           EntryOp("SYMLINK", G(4), R, "s", stat=Stat(0, 0, 0o120777, 0, 0), link="t")]
    failures = sink.apply_entries(ops)
    assert [f.errno for f in failures] == [errno.EPERM] * 3
    assert sorted(os.listdir(root)) == [".glusterfs", "first"]  # no half-made name left


@root_only
def test_a_directory_rename_out_of_an_unreachable_parent_is_owed(replica):
    root, sink = replica
    assert sink.apply_entries([mkdir(G(1), R, "a"), mkdir(G(3), G(1), "d")]) == []
    # the replica's handle says G(3) is at G(9)/x, but G(9) never made it here
    h = os.path.join(root, handle_relpath(G(3)))
    os.unlink(h)
    os.symlink(f"../../{G(9)[:2]}/{G(9)[2:4]}/{G(9)}/x", h)
    [f] = sink.apply_entries([rename(G(3), G(9), "x", R, "y")])
    assert f.errno == errno.ENOENT
    # ... while a replay of a rename already applied (old name gone, parent there) heals
    os.unlink(h)
    os.symlink(f"../../{G(1)[:2]}/{G(1)[2:4]}/{G(1)}/d", h)
    os.rename(os.path.join(root, "a", "d"), os.path.join(root, "a", "e"))
    assert sink.apply_entries([rename(G(3), G(1), "d", G(1), "e")]) == []
    assert os.readlink(h).endswith(f"{G(1)}/e")


def test_a_rename_dropped_for_a_gone_parent_hands_its_source_to_the_next(tmp_path):
    sink = ReplicaSink(str(tmp_path / "r"))
    A, X, M, Z = G(1), G(2), G(3), G(4)
    assert sink.apply_entries([mkdir(A, R, "a"), mkdir(Z, R, "z"), mkdir(X, A, "f41")]) == []
    view = MemoryView({A: DIR, Z: DIR, X: DIR})  # M: created and removed on the source
    ops = [rename(X, A, "f41", M, "via"), rename(X, M, "via", A, "d77"),
           rename(X, A, "d77", Z, "d82")]
    failures = sink.apply_entries(ops)
    _, left = resolve_conflicts(sink, ops, failures, view=view)
    assert left == []
    assert os.listdir(tmp_path / "r" / "z") == ["d82"] and os.listdir(tmp_path / "r" / "a") == []
    sink.close()


# ------------------------------------------------------------------ the dispatcher
def _dispatcher(ev, view, fail):
    return Dispatcher(sink=Sink(ev, fail), engine=Engine(ev), state=State(ev), view=view,
                      options=Options.from_pairs(["sync-jobs=1",
                                                  "gfid-conflict-resolution=false"]),
                      retry_delay=0)


def test_ops_on_a_gfid_with_an_open_entry_row_wait_behind_it():
    ev = Events()
    broken = {G(1)}
    d = _dispatcher(ev, DataView({G(i): Stat(0, 0, 0o100644, 0, 0) for i in (1, 2)}),
                    lambda op: EntryFailure(op, errno.ENOSPC, FailureInfo())
                    if op.gfid in broken else None)
    d.run_batch(Batch(0, (plan(100, [G(1)]),)))
    assert [f.gfid for f in d.state.failures("entry")] == [G(1)]
    broken.clear()  # the fault is gone, but no retry was asked for yet
    later = (EntryOp("RENAME", G(1), R, "n001", pgfid1=R, bname1="moved",
                     stat=Stat(0, 0, 0o100644, 0, 0)),
             EntryOp("CREATE", G(2), R, "n002", mode=0o100644, uid=0, gid=0))
    d.run_batch(Batch(1, (plan(105)._replace(entry_ops=later),)))
    sent = [e[1] for e in ev.log if e[0] == "entries"]
    assert sent[-1] == (G(2),)  # G(1)'s new op was held, not applied out of order
    rows = d.state.failures("entry")
    assert [(r.gfid, r.changelog) for r in rows] == [(G(1), "CHANGELOG.100"),
                                                     (G(1), "CHANGELOG.105")]
    assert d.retry_failed()[1] == 0 and d.state.failures("entry") == []


@pytest.mark.parametrize("op", ["UNLINK", "RMDIR", "RENAME"])
def test_a_failed_removal_of_a_gone_gfid_is_ledgered(op):
    ev = Events()
    gone = G(7)  # not in the view: gone from the source
    d = _dispatcher(ev, DataView({}), lambda o: EntryFailure(o, errno.EPERM, FailureInfo()))
    entry = EntryOp(op, gone, R, "x", **({"pgfid1": R, "bname1": "y"} if op == "RENAME" else {}))
    p = plan(100)
    d.run_batch(Batch(0, (p._replace(entry_ops=(entry,)),)))
    [row] = d.state.failures("entry")
    assert row.gfid == gone and row.op["op"] == op


# ------------------------------------------------------------------ data
def test_a_same_size_rewrite_with_the_mtime_already_on_the_replica_is_sent(tmp_path):
    pytest.importorskip("shutil").which("rsync") or pytest.skip("needs rsync")
    from streamsync.cli import main
    from streamsync.verify import verify
    from test_worker_brick import Brick
    b = Brick(tmp_path / "brick")
    b.create("f", b"aaaa")
    os.utime(b.path("f"), (1795000000, 1795000000))
    b.rollover(1795000015)
    replica = str(tmp_path / "replica")
    assert main(["replicate", "-q", b.root, replica]) == 0
    b.write("f", b"bbbb")  # same size; a meta op (or a crash) gave the replica this mtime
    os.utime(b.path("f"), (1795000000, 1795000000))
    b.rollover(1795000030)
    assert main(["replicate", "-q", b.root, replica]) == 0
    assert open(os.path.join(replica, "f"), "rb").read() == b"bbbb"
    assert verify(b.root, replica) == []
