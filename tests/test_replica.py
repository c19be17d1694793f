"""The local replica sink: entry ops and failure tuples of spec 4.3-4.5, meta ops
of 4.6, the brick layout (handles), idempotence and confinement.

Expectations are written from the spec and checked on the filesystem itself
(os.lstat / readlink / xattrs), never from the sink's own answers.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid

import pytest

from streamsync.ops import EntryOp, FailureInfo, MetaOp
from streamsync.records import ROOT_GFID, Stat
from streamsync.sinks.replica import ReplicaSink, handle_relpath
from streamsync.verify import scan_tree

R = ROOT_GFID
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="owners and trusted.gfid need root")


def G(n: int) -> str:
    return f"5b1c2d3e-0000-4000-8000-{n:012x}"


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "replica")


@pytest.fixture
def sink(root):
    s = ReplicaSink(root)
    yield s
    s.close()


def handle(root, gfid):
    return os.path.join(root, handle_relpath(gfid))


def xattr_gfid(path):
    return str(uuid.UUID(bytes=os.getxattr(path, "trusted.gfid", follow_symlinks=False)))


def mkdir(g, parent, name, mode=0o40755, uid=0, gid=0):
    return EntryOp("MKDIR", g, parent, name, mode=mode, uid=uid, gid=gid)


def create(g, parent, name, mode=0o100644, uid=0, gid=0, op="CREATE"):
    return EntryOp(op, g, parent, name, mode=mode, uid=uid, gid=gid)


def tree(root):
    """Namespace + handle listing: an independent snapshot of the replica."""
    nodes = scan_tree(root)
    handles = {}
    gdir = os.path.join(root, ".glusterfs")
    for top, _dirs, files in os.walk(gdir):
        for f in files:
            p = os.path.join(top, f)
            if "streamsync" in p:
                continue
            st = os.lstat(p)
            handles[os.path.relpath(p, gdir)] = (stat.S_IFMT(st.st_mode), st.st_ino,
                                                 os.readlink(p) if stat.S_ISLNK(st.st_mode) else None)
    return nodes, handles


# --------------------------------------------------------------- layout
def test_fresh_replica_has_root_handle(root, sink):
    assert os.readlink(handle(root, R)) == "../../.."


def test_mkdir_makes_directory_handle_and_gfid(root, sink):
    assert sink.apply_entries([mkdir(G(1), R, "d", 0o42775, 1000, 1001)]) == []
    p = os.path.join(root, "d")
    st = os.lstat(p)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o2775
    assert os.readlink(handle(root, G(1))) == f"../../00/00/{R}/d"
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1000, 1001)
        assert xattr_gfid(p) == G(1)


def test_create_makes_hard_link_handle(root, sink):
    ops = [mkdir(G(1), R, "d"), create(G(2), G(1), "my notes.txt", 0o104750, 1000, 0)]
    assert sink.apply_entries(ops) == []
    p = os.path.join(root, "d", "my notes.txt")
    st, hst = os.lstat(p), os.lstat(handle(root, G(2)))
    assert st.st_ino == hst.st_ino and st.st_nlink == 2
    assert stat.S_IMODE(st.st_mode) == 0o4750  # set after chown, so suid survives
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0


def test_create_parent_missing_is_enoent(sink):
    [f] = sink.apply_entries([create(G(2), G(99), "f")])
    assert f.errno == errno.ENOENT and f.info == FailureInfo()


def test_create_gfid_present_is_noop(root, sink):
    sink.apply_entries([create(G(2), R, "a")])
    assert sink.apply_entries([create(G(2), R, "b")]) == []
    assert not os.path.lexists(os.path.join(root, "b"))


@ROOT_ONLY
def test_create_name_held_by_other_gfid_is_eexist_gfid_mismatch(sink):
    sink.apply_entries([create(G(2), R, "a")])
    [f] = sink.apply_entries([create(G(3), R, "a")])
    assert f.errno == errno.EEXIST
    assert f.info == FailureInfo(gfid_mismatch=True, slave_isdir=False, slave_gfid=G(2))


@ROOT_ONLY
def test_create_over_directory_reports_slave_isdir(sink):
    sink.apply_entries([mkdir(G(1), R, "d")])
    [f] = sink.apply_entries([create(G(3), R, "d")])
    assert f.info.gfid_mismatch and f.info.slave_isdir and f.info.slave_gfid == G(1)
    assert f.info.slave_name == f".gfid/{R}/d"


def test_mknod_fifo_and_self_healed_hard_link(root, sink):
    assert sink.apply_entries([create(G(4), R, "pipe", 0o10640, op="MKNOD")]) == []
    assert stat.S_ISFIFO(os.lstat(os.path.join(root, "pipe")).st_mode)
    # MKNOD of an existing gfid = a hard link made by self-heal
    assert sink.apply_entries([create(G(4), R, "pipe2", 0o10640, op="MKNOD")]) == []
    assert os.lstat(os.path.join(root, "pipe2")).st_ino == os.lstat(os.path.join(root, "pipe")).st_ino


def test_link_existing_gfid_hard_links(root, sink):
    sink.apply_entries([create(G(2), R, "a")])
    op = EntryOp("LINK", G(2), R, "b", stat=Stat(0, 0, 0o100644, 0, 0))
    assert sink.apply_entries([op]) == []
    assert os.lstat(os.path.join(root, "b")).st_ino == os.lstat(os.path.join(root, "a")).st_ino
    assert os.lstat(os.path.join(root, "a")).st_nlink == 3  # a, b, handle
    assert sink.apply_entries([op]) == []  # replay: EEXIST on the same gfid is success


def test_link_absent_gfid_creates_from_stat(root, sink):
    ops = [EntryOp("LINK", G(2), R, "reg", stat=Stat(0, 0, 0o100600, 0, 0)),
           EntryOp("LINK", G(3), R, "sym", stat=Stat(0, 0, 0o120777, 0, 0), link="t/a r")]
    assert sink.apply_entries(ops) == []
    assert stat.S_IMODE(os.lstat(os.path.join(root, "reg")).st_mode) == 0o600
    assert os.readlink(os.path.join(root, "sym")) == "t/a r"
    assert os.lstat(handle(root, G(3))).st_ino == os.lstat(os.path.join(root, "sym")).st_ino


def test_link_to_directory_gfid_fails(sink):
    sink.apply_entries([mkdir(G(1), R, "d")])
    [f] = sink.apply_entries([EntryOp("LINK", G(1), R, "d2", stat=Stat(0, 0, 0o40755, 0, 0))])
    assert f.errno == errno.EPERM


def test_symlink_create_and_owner(root, sink):
    op = EntryOp("SYMLINK", G(5), R, "ln", stat=Stat(1000, 1000, 0o120777, 0, 0),
                 link="/etc/hostname")
    assert sink.apply_entries([op]) == []
    p = os.path.join(root, "ln")
    assert os.readlink(p) == "/etc/hostname"
    assert os.lstat(handle(root, G(5))).st_ino == os.lstat(p).st_ino
    if os.geteuid() == 0:
        assert os.lstat(p).st_uid == 1000
        assert xattr_gfid(p) == G(5)
    assert sink.apply_entries([op]) == []  # same gfid: nothing


@ROOT_ONLY
def test_symlink_name_with_other_gfid_is_eexist(sink):
    sink.apply_entries([create(G(2), R, "ln")])
    [f] = sink.apply_entries([EntryOp("SYMLINK", G(5), R, "ln", stat=None, link="x")])
    assert f.errno == errno.EEXIST and f.info.gfid_mismatch and f.info.slave_gfid == G(2)


def test_unlink_removes_name_and_orphan_handle(root, sink):
    sink.apply_entries([create(G(2), R, "a"), EntryOp("LINK", G(2), R, "b",
                                                      stat=Stat(0, 0, 0o100644, 0, 0))])
    assert sink.apply_entries([EntryOp("UNLINK", G(2), R, "a")]) == []
    assert not os.path.lexists(os.path.join(root, "a"))
    assert os.path.exists(handle(root, G(2)))  # still linked as b
    assert sink.apply_entries([EntryOp("UNLINK", G(2), R, "b")]) == []
    assert not os.path.lexists(handle(root, G(2)))


def test_unlink_missing_name_or_gfid_is_nothing(sink):
    assert sink.apply_entries([EntryOp("UNLINK", G(2), R, "nope")]) == []
    assert sink.apply_entries([EntryOp("RMDIR", G(1), G(77), "nope")]) == []


@ROOT_ONLY
def test_unlink_gfid_mismatch_is_eexist(root, sink):
    sink.apply_entries([create(G(2), R, "a"), create(G(3), R, "b")])
    [f] = sink.apply_entries([EntryOp("UNLINK", G(3), R, "a")])
    assert f.errno == errno.EEXIST
    assert f.info == FailureInfo(gfid_mismatch=True, slave_gfid=G(2))
    assert os.path.exists(os.path.join(root, "a"))


def test_rmdir_non_empty_removes_recursively_with_handles(root, sink):
    sink.apply_entries([mkdir(G(1), R, "d"), mkdir(G(2), G(1), "sub"), create(G(3), G(2), "f"),
                        EntryOp("SYMLINK", G(4), G(1), "ln", stat=Stat(0, 0, 0o120777, 0, 0),
                                link="../..")])
    assert sink.apply_entries([EntryOp("RMDIR", G(1), R, "d")]) == []
    assert not os.path.lexists(os.path.join(root, "d"))
    for g in (G(1), G(2), G(3), G(4)):
        assert not os.path.lexists(handle(root, g)), g


def test_rename_file_across_directories(root, sink):
    sink.apply_entries([mkdir(G(1), R, "d"), create(G(2), R, "a")])
    op = EntryOp("RENAME", G(2), R, "a", pgfid1=G(1), bname1="b", stat=Stat(0, 0, 0o100644, 0, 0))
    assert sink.apply_entries([op]) == []
    assert not os.path.lexists(os.path.join(root, "a"))
    assert os.lstat(os.path.join(root, "d", "b")).st_ino == os.lstat(handle(root, G(2))).st_ino
    assert sink.apply_entries([op]) == []  # replay converges


def test_rename_old_missing_links_or_creates_at_new_name(root, sink):
    sink.apply_entries([create(G(2), R, "x")])
    st = Stat(0, 0, 0o100644, 0, 0)
    ops = [EntryOp("RENAME", G(2), R, "gone", pgfid1=R, bname1="y", stat=st),
           EntryOp("RENAME", G(3), R, "gone", pgfid1=R, bname1="z", stat=st),
           EntryOp("RENAME", G(4), R, "gone", pgfid1=R, bname1="s",
                   stat=Stat(0, 0, 0o120777, 0, 0), link="tgt"),
           EntryOp("RENAME", G(5), R, "gone", pgfid1=R, bname1="dd",
                   stat=Stat(0, 0, 0o40755, 0, 0))]
    [f] = sink.apply_entries(ops)
    assert os.lstat(os.path.join(root, "y")).st_ino == os.lstat(os.path.join(root, "x")).st_ino
    assert stat.S_ISREG(os.lstat(os.path.join(root, "z")).st_mode)
    assert os.readlink(os.path.join(root, "s")) == "tgt"
    # a directory that is nowhere on the replica is not renamed into being, and not
    # silently skipped either (gsyncd: nothing): the rename is owed (its MKDIR failed)
    assert (f.op.gfid, f.errno) == (G(5), errno.ENOENT)
    assert not os.path.lexists(os.path.join(root, "dd"))


def test_rename_of_a_directory_already_moved_heals_nothing_fails(root, sink):
    sink.apply_entries([EntryOp("MKDIR", G(5), R, "dd", mode=0o40755, uid=0, gid=0)])
    op = EntryOp("RENAME", G(5), R, "gone", pgfid1=R, bname1="dd", stat=Stat(0, 0, 0o40755, 0, 0))
    assert sink.apply_entries([op]) == []  # a replay: the directory is already there


@ROOT_ONLY
def test_rename_onto_other_gfid_is_eexist_dst(root, sink):
    sink.apply_entries([create(G(2), R, "a"), create(G(3), R, "b")])
    op = EntryOp("RENAME", G(2), R, "a", pgfid1=R, bname1="b", stat=Stat(0, 0, 0o100644, 0, 0))
    [f] = sink.apply_entries([op])
    assert f.errno == errno.EEXIST
    assert f.info == FailureInfo(gfid_mismatch=True, dst=True, slave_gfid=G(3))


def test_rename_same_inode_unlinks_old(root, sink):
    sink.apply_entries([create(G(2), R, "a"),
                        EntryOp("LINK", G(2), R, "b", stat=Stat(0, 0, 0o100644, 0, 0))])
    op = EntryOp("RENAME", G(2), R, "a", pgfid1=R, bname1="b", stat=Stat(0, 0, 0o100644, 0, 0))
    assert sink.apply_entries([op]) == []
    assert not os.path.lexists(os.path.join(root, "a"))
    assert os.lstat(os.path.join(root, "b")).st_nlink == 2


def test_rename_directory_updates_handle_and_children_resolve(root, sink):
    sink.apply_entries([mkdir(G(1), R, "d"), mkdir(G(2), R, "e"), mkdir(G(3), G(1), "sub")])
    op = EntryOp("RENAME", G(3), G(1), "sub", pgfid1=G(2), bname1="moved",
                 stat=Stat(0, 0, 0o40755, 0, 0))
    assert sink.apply_entries([op]) == []
    assert os.readlink(handle(root, G(3))) == f"../../{G(2)[0:2]}/{G(2)[2:4]}/{G(2)}/moved"
    assert sink.apply_entries([create(G(4), G(3), "child")]) == []
    assert os.path.isfile(os.path.join(root, "e", "moved", "child"))


def test_mkdir_of_directory_present_elsewhere_is_name_mismatch(root, sink):
    sink.apply_entries([mkdir(G(1), R, "old")])
    [f] = sink.apply_entries([mkdir(G(1), R, "new")])
    assert f.errno == errno.EEXIST
    assert f.info == FailureInfo(name_mismatch=True, slave_isdir=True, slave_gfid=G(1),
                                 slave_entry=f".gfid/{R}/old")


def test_replay_of_a_whole_sequence_is_idempotent(root, sink):
    st = Stat(0, 0, 0o100644, 0, 0)
    ops = [mkdir(G(1), R, "d"), create(G(2), G(1), "a"), create(G(3), R, "b"),
           EntryOp("LINK", G(2), R, "a-link", stat=st),
           EntryOp("RENAME", G(2), G(1), "a", pgfid1=R, bname1="a2", stat=st),
           EntryOp("SYMLINK", G(4), G(1), "s", stat=Stat(0, 0, 0o120777, 0, 0), link="../b"),
           EntryOp("UNLINK", G(3), R, "b"), mkdir(G(5), G(1), "e"),
           EntryOp("RENAME", G(5), G(1), "e", pgfid1=R, bname1="e2",
                   stat=Stat(0, 0, 0o40755, 0, 0)),
           create(G(6), G(5), "in-e")]
    assert sink.apply_entries(ops) == []
    first = tree(root)
    for _ in range(2):
        # the only complaint of a replay: the MKDIR of a directory renamed later
        # (gsyncd's name_mismatch, which conflict resolution drops)
        [f] = sink.apply_entries(ops)
        assert f.op == ops[7] and f.info.name_mismatch and f.info.slave_entry == f".gfid/{R}/e2"
        assert tree(root) == first
    # and every suffix replayed over the final state converges too (directory mtimes
    # aside: a suffix that re-creates then removes a name touches its directory, and
    # whole seconds may tick over in between on a busy machine)
    def settled(t):
        nodes, handles = t
        return {p: n._replace(mtime=None) for p, n in nodes.items()}, handles
    for i in range(len(ops)):
        sink.apply_entries(ops[i:])
        assert settled(tree(root)) == settled(first)


def test_crash_leftovers_are_adopted(root, sink):
    """A create cut short (name made, gfid/handle not yet) is completed on replay."""
    os.mkdir(os.path.join(root, "d"), 0o700)
    os.close(os.open(os.path.join(root, "f"), os.O_CREAT | os.O_WRONLY, 0o600))
    assert sink.apply_entries([mkdir(G(1), R, "d", 0o40755),
                               create(G(2), R, "f", 0o100644)]) == []
    assert os.readlink(handle(root, G(1))) == f"../../00/00/{R}/d"
    assert os.lstat(handle(root, G(2))).st_ino == os.lstat(os.path.join(root, "f")).st_ino
    # the attributes the interrupted create never set are set now
    assert stat.S_IMODE(os.lstat(os.path.join(root, "d")).st_mode) == 0o755
    assert stat.S_IMODE(os.lstat(os.path.join(root, "f")).st_mode) == 0o644


def test_stale_directory_handle_healed_by_rename_replay(root, sink):
    sink.apply_entries([mkdir(G(1), R, "d")])
    os.rename(os.path.join(root, "d"), os.path.join(root, "d2"))  # crash before handle update
    op = EntryOp("RENAME", G(1), R, "d", pgfid1=R, bname1="d2", stat=Stat(0, 0, 0o40755, 0, 0))
    if os.geteuid() == 0:
        assert sink.apply_entries([op]) == []
        assert os.readlink(handle(root, G(1))) == f"../../00/00/{R}/d2"


# ---------------------------------------------------------- confinement
HOSTILE = ["..", ".", "", "a/b", "../../etc/passwd", "/etc/passwd", "x\0y", "a" * 256]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_recorded_failures(tmp_path, root, sink, name):
    ops = [create(G(2), R, name), mkdir(G(3), R, name),
           EntryOp("SYMLINK", G(4), R, name, stat=None, link="/"),
           EntryOp("RENAME", G(5), R, "a", pgfid1=R, bname1=name, stat=Stat(0, 0, 0o100644, 0, 0)),
           EntryOp("UNLINK", G(6), R, name), EntryOp("RMDIR", G(7), R, name)]
    sink.apply_entries([create(G(5), R, "a")])
    before = sorted(os.listdir(tmp_path))
    failures = sink.apply_entries(ops)
    assert [f.op for f in failures] == ops
    assert all(f.errno in (errno.EINVAL, errno.EPERM) for f in failures)
    assert sorted(os.listdir(tmp_path)) == before
    assert sorted(os.listdir(root)) == [".glusterfs", "a"]


def test_reserved_glusterfs_name_and_bad_gfids(root, sink):
    failures = sink.apply_entries([mkdir(G(1), R, ".glusterfs"),
                                   create("../../../../tmp/x", R, "f"),
                                   create(G(2), "../..", "f"),
                                   EntryOp("UNLINK", R, R, "x")])
    assert [f.errno for f in failures] == [errno.EPERM, errno.EINVAL, errno.EINVAL, errno.EPERM]
    assert sorted(os.listdir(root)) == [".glusterfs"]


def test_symlink_swapped_for_directory_is_not_followed(tmp_path, root, sink):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    sink.apply_entries([mkdir(G(1), R, "d"), create(G(2), G(1), "f")])
    # an attacker swaps the replica directory for a symlink to the outside
    os.rename(os.path.join(root, "d"), os.path.join(root, "d.real"))
    os.symlink(str(outside), os.path.join(root, "d"))
    failures = sink.apply_entries([create(G(3), G(1), "new"), EntryOp("UNLINK", G(2), G(1), "f"),
                                   mkdir(G(4), G(1), "sub"),
                                   EntryOp("RMDIR", G(1), R, "d")])
    assert sorted(os.listdir(outside)) == ["keep"]
    assert (outside / "keep").read_text() == "precious"
    # every op under the swapped directory is a recorded failure, the UNLINK too
    # (it used to be skipped as "no such name", leaving f on the replica silently)
    assert [f.op.op for f in failures] == ["CREATE", "UNLINK", "MKDIR", "RMDIR"]
    assert all(f.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EEXIST) for f in failures)
    assert os.path.islink(os.path.join(root, "d"))
    # meta ops on that gfid do not touch the outside either
    before = os.stat(outside)
    sink.apply_meta([MetaOp(G(1), Stat(0, 0, 0o40700, 1.0, 2.0))])
    after = os.stat(outside)
    assert (before.st_mode, before.st_mtime) == (after.st_mode, after.st_mtime)


def test_handle_directory_swapped_for_symlink(tmp_path, root, sink):
    outside = tmp_path / "outside"
    outside.mkdir()
    sink.apply_entries([create(G(2), R, "f")])
    xx = os.path.join(root, ".glusterfs", G(2)[0:2])
    os.rename(xx, xx + ".real")
    os.symlink(str(outside), xx)
    sink.apply_entries([create(G(0x201), R, "g"), EntryOp("UNLINK", G(2), R, "f")])
    sink.apply_meta([MetaOp(G(2), Stat(0, 0, 0o100777, 1.0, 2.0))])
    assert os.listdir(outside) == []


def test_rmdir_recursive_does_not_follow_symlinks(tmp_path, root, sink):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    sink.apply_entries([mkdir(G(1), R, "d")])
    os.symlink(str(outside), os.path.join(root, "d", "escape"))
    assert sink.apply_entries([EntryOp("RMDIR", G(1), R, "d")]) == []
    assert (outside / "keep").read_text() == "x"
    assert not os.path.lexists(os.path.join(root, "d"))


# --------------------------------------------------------------- meta ops
def test_meta_ops_set_owner_mode_times(root, sink):
    sink.apply_entries([mkdir(G(1), R, "d"), create(G(2), G(1), "f"),
                        EntryOp("SYMLINK", G(3), G(1), "s", stat=None, link="f")])
    failures = sink.apply_meta([MetaOp(G(1), Stat(7, 8, 0o40711, 1000.5, 2000.0)),
                                MetaOp(G(2), Stat(9, 10, 0o102640, 3000.0, 4000.0)),
                                MetaOp(G(3), Stat(11, 12, 0o120777, 5000.0, 6000.0)),
                                MetaOp(G(99), Stat(0, 0, 0o100644, 1.0, 1.0)),
                                MetaOp(R, Stat(0, 0, 0o40751, 7000.0, 8000.0))])
    # a gfid the replica lacks is reported (the dispatcher asks only for gfids the
    # source still has, so the replica owes it), never skipped silently
    assert [(x.op.gfid, x.errno, x.what) for x in failures] == [(G(99), errno.ENOENT, "missing")]
    d, f, s = (os.lstat(os.path.join(root, *p)) for p in (("d",), ("d", "f"), ("d", "s")))
    assert stat.S_IMODE(d.st_mode) == 0o711 and d.st_mtime == 2000.0
    assert stat.S_IMODE(f.st_mode) == 0o2640 and f.st_mtime == 4000.0 and f.st_atime == 3000.0
    assert s.st_mtime != 6000.0  # symlinks: owner only
    r = os.lstat(root)
    assert stat.S_IMODE(r.st_mode) == 0o751 and r.st_mtime == 8000.0
    if os.geteuid() == 0:
        assert (d.st_uid, d.st_gid, f.st_uid, f.st_gid, s.st_uid, s.st_gid) == (7, 8, 9, 10, 11, 12)


def test_replica_is_readable_by_the_brick_view(root, sink):
    from streamsync.views import BrickView
    st = Stat(0, 0, 0o100644, 0, 0)
    sink.apply_entries([mkdir(G(1), R, "d"), create(G(2), G(1), "f"),
                        EntryOp("SYMLINK", G(3), R, "s", stat=None, link="d/f"),
                        EntryOp("LINK", G(2), R, "f2", stat=st)])
    v = BrickView(root)
    assert v.dir_entry(G(1)) == (R, "d")
    assert v.entry_gfid(G(1), "f") == G(2) and v.entry_gfid(R, "f2") == G(2)
    assert v.readlink(G(3)) == "d/f"
    assert stat.S_ISDIR(v.lstat(G(1)).mode)
    assert v.data_path(G(2)) == handle(root, G(2))


def test_symlink_cut_short_is_adopted_by_symlink_and_rename(root, sink):
    """A symlink made but not yet tagged with its gfid when the worker died."""
    os.symlink("does_not_exist.txt", os.path.join(root, "renamed"))
    os.symlink("t", os.path.join(root, "s"))
    lnk = Stat(0, 0, 0o120777, 0, 0)
    ops = [EntryOp("RENAME", G(8), R, "gone", pgfid1=R, bname1="renamed", stat=lnk,
                   link="does_not_exist.txt"),
           EntryOp("SYMLINK", G(9), R, "s", stat=lnk, link="t")]
    assert sink.apply_entries(ops) == []
    for g, n in ((G(8), "renamed"), (G(9), "s")):
        assert os.lstat(handle(root, g)).st_ino == os.lstat(os.path.join(root, n)).st_ino


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batched_create_runs_equal_serial_application(tmp_path, seed, monkeypatch):
    """Long CREATE runs are checked together and created in a row, on threads when
    the creates wait; with odd cases mixed in (existing names and gfids, missing
    parents, hostile names, repeated names) the replica and the failures are
    exactly those of one-by-one application, inline and on threads."""
    import random
    import streamsync.sinks.replica as replica_mod
    rng = random.Random(seed)
    pre = [mkdir(G(1), R, "d"), mkdir(G(2), R, "e"), create(G(3), G(1), "taken"),
           create(G(4), R, "other")]
    ops = []
    for i in range(300):
        parent = rng.choice([G(1), G(2), G(1), G(2), G(99)])
        r = rng.random()
        name = (f"f{i}" if r < 0.9 else "taken" if r < 0.93 else f"../x{i}" if r < 0.97
                else f"f{i // 2}")
        gfid = G(1000 + i) if rng.random() < 0.95 else rng.choice([G(3), G(4)])
        ops.append(create(gfid, parent, name, rng.choice([0o100644, 0o100600, 0o104755])))
        if rng.random() < 0.02:
            ops.append(EntryOp("UNLINK", G(3), G(1), "taken"))
    results = []
    ways = {"one by one": (1, 10 ** 9, False), "in a row": (1, 32, False),
            "on threads": (4, 32, True)}
    batched = {}
    monkeypatch.setattr(replica_mod, "_PROBE", 4)  # runs here are short: time 4 first
    for way, (threads, shortest, waits) in ways.items():
        monkeypatch.setattr(replica_mod, "_MIN_PARALLEL", shortest)
        root = str(tmp_path / way.replace(" ", "_"))
        s = ReplicaSink(root, threads=threads)
        s._slow = lambda per_call, waits=waits: waits  # as if the filesystem made them wait
        pooled = []
        s._pool = lambda real=s._pool: pooled.append(1) or real()
        real = s._create_run
        runs = batched[way] = []
        s._create_run = lambda run, real=real, runs=runs: runs.append(len(run)) or real(run)
        s.apply_entries(pre)
        fails = s.apply_entries(ops)
        s.close()
        results.append(([(f.op, f.errno, f.info) for f in fails], tree_without_inodes(root)))
        assert bool(pooled) == waits, way
    assert results[0] == results[1] == results[2]
    # many of the ops really went through the batches (a run stops before an op
    # that waits behind a failed one: a fifth of these ops fail, so fewer than half)
    assert batched["one by one"] == [] and sum(batched["in a row"]) > 75
    assert batched["on threads"] == batched["in a row"]


def tree_without_inodes(root):
    nodes, handles = tree(root)
    return ({p: n._replace(mtime=None) for p, n in nodes.items()},
            {k: (v[0], v[2]) for k, v in handles.items()})


def _open_sink(root: str) -> str:
    from streamsync.sinks.replica import ReplicaSink as _Sink
    with _Sink(root):
        return "ok"


def test_several_processes_may_set_up_the_same_fresh_replica_at_once(tmp_path):
    # workers of several bricks feed one replica: their sinks must not trip over
    # each other creating the root handle
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        root = str(tmp_path / f"r{round_}")
        with ctx.Pool(4) as pool:
            assert pool.map(_open_sink, [root] * 8) == ["ok"] * 8
        assert os.readlink(os.path.join(root, ".glusterfs", "00", "00",
                                        "00000000-0000-0000-0000-000000000001")) == "../../.."


def test_a_run_goes_to_threads_only_when_its_first_calls_are_slow(tmp_path, monkeypatch):
    """The first calls of a run are timed on the calling thread: slow ones (a
    create on a busy disk, here 1 ms each on the sink's clock) send the rest to
    the pool; quick ones (a create on tmpfs, here 10 µs) stay on the thread.
    Results keep their order either way."""
    import types
    import streamsync.sinks.replica as replica_mod
    clock = [0.0]
    monkeypatch.setattr(replica_mod, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def taking(seconds):
        def call(x):
            clock[0] += seconds
            return -x
        return call
    s = ReplicaSink(str(tmp_path / "r"), threads=2)
    pooled = []
    real = s._pool
    s._pool = lambda: pooled.append(1) or real()
    items = list(range(100))
    assert s._in_slices(taking(1e-3), items) == [-x for x in items]
    assert pooled
    pooled.clear()
    assert s._in_slices(taking(10e-6), items) == [-x for x in items]
    assert not pooled
    s.close()
