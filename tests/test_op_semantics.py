"""One op-semantics suite, run against every secondary backend (issue 11).

The secondary's per-op rules (spec 4.3-4.6) live once in
:mod:`streamsync.secondary.rules`; each backend implements only the namespace
protocol. This suite states the rules as cases and runs each against:

* ``replica``: the brick-layout directory replica (:class:`ReplicaSink`);
* ``volume``: a real GlusterFS volume through an aux-gfid mount
  (:class:`VolumeSink`), mounted as gsyncd's secondary mounts it (marker
  ``gluster``).

Expectations come from the spec and are checked on the target itself: names
listed with ``os.listdir``, types and owners with ``os.lstat``, gfids read from
the target's own xattr (``trusted.gfid`` on the replica, the volume's
``glusterfs.gfid.string``), never from the sink's answers. Every case works in
a fresh directory (``top``) with fresh gfids, so the volume is shared by the
module without one case seeing another's names.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from typing import Any, Callable, NamedTuple

import pytest

from gluster_lab import glusterd_running, run, start_volume, wait_for
from streamsync.ops import EntryOp, FailureInfo, MetaOp
from streamsync.records import ROOT_GFID, Stat
from streamsync.secondary.gfid_mount import is_gfid_mount
from streamsync.sinks.replica import ReplicaSink
from streamsync.sinks.volume import VolumeSink

R = ROOT_GFID
FILE = Stat(0, 0, 0o100644, 0, 0)
DIR = Stat(0, 0, 0o40755, 0, 0)
LNK = Stat(0, 0, 0o120777, 0, 0)

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="owners, trusted.gfid and volumes need root")


class Backend(NamedTuple):
    kind: str
    sink: Any
    root: str
    gfid_at: Callable[[str], str | None]


def _xattr_gfid(name: str) -> Callable[[str], str | None]:
    def gfid_at(path: str) -> str | None:
        try:
            raw = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            return None
        if name == "trusted.gfid":
            return str(uuid.UUID(bytes=raw))
        return raw.rstrip(b"\0").decode()
    return gfid_at


@pytest.fixture(scope="module")
def volume_mount(tmp_path_factory):
    """An aux-gfid mount of a fresh one-brick volume, for the whole module."""
    gen = glusterd_running(tmp_path_factory)
    host = next(gen)
    base = tmp_path_factory.mktemp("opsem")
    vol, mnt = f"ssop{os.getpid()}", base / "mnt"
    mnt.mkdir()
    made = mounted = False
    try:
        run("gluster", "--mode=script", "volume", "create", vol, f"{host}:{base / 'brick'}",
            "force")
        made = True
        start_volume(vol)
        run("glusterfs", "--aux-gfid-mount", "--acl", "--client-pid=-1", "--entry-timeout=0",
            "--attribute-timeout=0", "--negative-timeout=0", f"--volfile-server={host}",
            f"--volfile-id={vol}", str(mnt))
        mounted = True
        wait_for(lambda: is_gfid_mount(mnt), f"the aux-gfid mount of {vol}", timeout=30)
        yield str(mnt)
    finally:
        if mounted:
            run("umount", str(mnt), check=False)
        if made:
            run("gluster", "--mode=script", "volume", "stop", vol, "force", check=False)
            run("gluster", "--mode=script", "volume", "delete", vol, check=False)
        next(gen, None)


@pytest.fixture(params=["replica", pytest.param("volume", marks=pytest.mark.gluster)])
def be(request, tmp_path):
    if request.param == "replica":
        root = str(tmp_path / "replica")
        sink: Any = ReplicaSink(root)
        gfid_at = _xattr_gfid("trusted.gfid")
    else:
        root = request.getfixturevalue("volume_mount")
        sink = VolumeSink(root)
        gfid_at = _xattr_gfid("glusterfs.gfid.string")
    yield Backend(request.param, sink, root, gfid_at)
    sink.close()


@pytest.fixture
def g() -> Callable[[int], str]:
    """Fresh gfids for one case: ``g(1)``, ``g(2)``, ... (the same number, the same gfid)."""
    tag = uuid.uuid4().hex[:12]
    return lambda n: f"{tag[:8]}-{tag[8:12]}-4000-8000-{n:012x}"


@pytest.fixture
def top(be, g):
    """``(gfid, path)`` of a fresh directory at the target's root for one case."""
    name = f"case-{g(0)}"
    assert be.sink.apply_entries([EntryOp("MKDIR", g(0), R, name, mode=0o40755, uid=0,
                                          gid=0)]) == []
    return g(0), os.path.join(be.root, name)


def mkdir(gfid, parent, name, mode=0o40755, uid=0, gid=0):
    return EntryOp("MKDIR", gfid, parent, name, mode=mode, uid=uid, gid=gid)


def create(gfid, parent, name, mode=0o100644, uid=0, gid=0):
    return EntryOp("CREATE", gfid, parent, name, mode=mode, uid=uid, gid=gid)


def names(path: str) -> list[str]:
    return sorted(os.listdir(path))


# ------------------------------------------------------------------ creation
def test_each_kind_is_made_with_the_primarys_gfid_and_owner(be, g, top):
    T, d = top
    assert be.sink.apply_entries([
        mkdir(g(1), T, "sub", mode=0o42775, uid=1234, gid=5678),
        create(g(2), g(1), "f", mode=0o100640, uid=1000, gid=1001),
        EntryOp("MKNOD", g(3), T, "fifo", mode=0o10644, uid=0, gid=0),
        EntryOp("SYMLINK", g(4), T, "ln", stat=Stat(7, 8, 0o120777, 0, 0), link="../x y"),
        EntryOp("LINK", g(2), T, "hard", stat=FILE),
    ]) == []
    assert names(d) == ["fifo", "hard", "ln", "sub"]
    for rel, gfid in (("sub", 1), (os.path.join("sub", "f"), 2), ("fifo", 3), ("ln", 4),
                      ("hard", 2)):
        assert be.gfid_at(os.path.join(d, rel)) == g(gfid), rel
    sub, f = os.lstat(os.path.join(d, "sub")), os.lstat(os.path.join(d, "sub", "f"))
    assert stat.S_ISDIR(sub.st_mode) and (sub.st_uid, sub.st_gid) == (1234, 5678)
    assert stat.S_IMODE(sub.st_mode) == 0o2775
    # in a set-group-id directory a new entry takes the directory's group, as on the
    # primary's brick (the journal carries the caller's gid)
    assert stat.S_ISREG(f.st_mode) and (f.st_uid, f.st_gid) == (1000, 5678)
    assert stat.S_IMODE(f.st_mode) == 0o640
    assert be.sink.apply_entries([mkdir(g(5), g(1), "inner", mode=0o40755, uid=1, gid=2)]) == []
    inner = os.lstat(os.path.join(d, "sub", "inner"))
    assert (inner.st_gid, stat.S_IMODE(inner.st_mode)) == (5678, 0o2755)
    assert stat.S_ISFIFO(os.lstat(os.path.join(d, "fifo")).st_mode)
    assert os.readlink(os.path.join(d, "ln")) == "../x y"
    assert (os.lstat(os.path.join(d, "ln")).st_uid, os.lstat(os.path.join(d, "ln")).st_gid) == (7, 8)
    assert os.lstat(os.path.join(d, "hard")).st_ino == f.st_ino


def test_a_create_already_done_is_nothing(be, g, top):
    T, d = top
    assert be.sink.apply_entries([create(g(1), T, "f")]) == []
    assert be.sink.apply_entries([create(g(1), T, "f"), mkdir(g(2), T, "e"),
                                  mkdir(g(2), T, "e")]) == []
    assert names(d) == ["e", "f"]


def test_a_name_holding_another_gfid_is_eexist_with_that_gfid(be, g, top):
    T, d = top
    be.sink.apply_entries([create(g(1), T, "f")])
    [fail] = be.sink.apply_entries([create(g(9), T, "f")])
    assert fail.errno == errno.EEXIST
    assert fail.info.gfid_mismatch and fail.info.slave_gfid == g(1)
    assert be.gfid_at(os.path.join(d, "f")) == g(1)
    [fail] = be.sink.apply_entries([EntryOp("SYMLINK", g(8), T, "f", stat=LNK, link="t")])
    assert fail.errno == errno.EEXIST and fail.info.slave_gfid == g(1)


def test_a_create_over_a_directory_reports_slave_isdir(be, g, top):
    T, d = top
    be.sink.apply_entries([mkdir(g(1), T, "x")])
    [fail] = be.sink.apply_entries([create(g(2), T, "x")])
    assert fail.errno == errno.EEXIST and fail.info.slave_isdir
    assert stat.S_ISDIR(os.lstat(os.path.join(d, "x")).st_mode)


def test_a_directory_gfid_present_elsewhere_is_name_mismatch_and_not_made(be, g, top):
    T, d = top
    be.sink.apply_entries([mkdir(g(1), T, "old"), create(g(2), g(1), "inside")])
    [fail] = be.sink.apply_entries([mkdir(g(1), T, "new")])
    assert fail.errno == errno.EEXIST
    assert fail.info == FailureInfo(name_mismatch=True, slave_isdir=True, slave_gfid=g(1),
                                    slave_entry=f".gfid/{T}/old")
    assert names(d) == ["old"]
    assert names(os.path.join(d, "old")) == ["inside"]  # (a duplicate would hide these)


def test_a_missing_parent_is_enoent(be, g, top):
    [fail] = be.sink.apply_entries([create(g(1), g(77), "f")])
    assert fail.errno == errno.ENOENT


@pytest.mark.parametrize("name", ["a/b", ".", "..", ""])
def test_names_the_target_would_misread_are_refused(be, g, top, name):
    T, d = top
    [fail] = be.sink.apply_entries([create(g(1), T, name)])
    assert fail.errno == errno.EINVAL
    assert names(d) == []


def test_a_link_of_a_gfid_gone_makes_the_file_from_its_stat_and_owes_its_bytes(be, g, top):
    T, d = top
    be.sink.take_made()
    assert be.sink.apply_entries([EntryOp("LINK", g(1), T, "made",
                                          stat=Stat(1000, 1000, 0o100600, 0, 0))]) == []
    assert be.gfid_at(os.path.join(d, "made")) == g(1)
    assert stat.S_IMODE(os.lstat(os.path.join(d, "made")).st_mode) == 0o600
    assert be.sink.take_made() == [g(1)]


def test_a_link_to_a_directory_gfid_fails(be, g, top):
    T, d = top
    be.sink.apply_entries([mkdir(g(1), T, "dir")])
    [fail] = be.sink.apply_entries([EntryOp("LINK", g(1), T, "alias", stat=DIR)])
    assert fail.errno in (errno.EPERM, errno.EISDIR, errno.EEXIST)
    assert names(d) == ["dir"]


# ------------------------------------------------------------------ removal
def test_unlink_of_a_missing_name_is_nothing_and_of_another_gfid_is_eexist(be, g, top):
    T, d = top
    be.sink.apply_entries([create(g(1), T, "a"), create(g(2), T, "b")])
    assert be.sink.apply_entries([EntryOp("UNLINK", g(1), T, "nope")]) == []
    [fail] = be.sink.apply_entries([EntryOp("UNLINK", g(2), T, "a")])
    assert fail.errno == errno.EEXIST and fail.info.gfid_mismatch
    assert fail.info.slave_gfid == g(1)
    assert names(d) == ["a", "b"]
    assert be.sink.apply_entries([EntryOp("UNLINK", g(1), T, "a")]) == []
    assert names(d) == ["b"]


def test_unlink_of_one_hard_link_keeps_the_other(be, g, top):
    T, d = top
    be.sink.apply_entries([create(g(1), T, "a"), EntryOp("LINK", g(1), T, "b", stat=FILE)])
    assert be.sink.apply_entries([EntryOp("UNLINK", g(1), T, "a")]) == []
    assert names(d) == ["b"] and be.gfid_at(os.path.join(d, "b")) == g(1)


def test_rmdir_of_a_non_empty_directory_removes_it_all(be, g, top):
    T, d = top
    be.sink.apply_entries([mkdir(g(1), T, "x"), mkdir(g(2), g(1), "sub"),
                           create(g(3), g(2), "f"),
                           EntryOp("SYMLINK", g(4), g(1), "ln", stat=LNK, link="../..")])
    assert be.sink.apply_entries([EntryOp("RMDIR", g(1), T, "x")]) == []
    assert names(d) == []
    assert be.sink.apply_entries([EntryOp("RMDIR", g(1), T, "x")]) == []  # a replay


# ------------------------------------------------------------------ rename
def test_rename_of_a_file_across_directories_and_its_replay(be, g, top):
    T, d = top
    be.sink.apply_entries([mkdir(g(1), T, "e"), create(g(2), T, "a")])
    op = EntryOp("RENAME", g(2), T, "a", pgfid1=g(1), bname1="b", stat=FILE)
    assert be.sink.apply_entries([op]) == []
    assert be.sink.apply_entries([op]) == []
    assert names(d) == ["e"] and names(os.path.join(d, "e")) == ["b"]
    assert be.gfid_at(os.path.join(d, "e", "b")) == g(2)


def test_rename_of_a_directory_moves_its_children_and_a_replay_is_nothing(be, g, top):
    T, d = top
    be.sink.apply_entries([mkdir(g(1), T, "p"), mkdir(g(2), T, "q"), mkdir(g(3), g(1), "s"),
                           create(g(4), g(3), "child")])
    op = EntryOp("RENAME", g(3), g(1), "s", pgfid1=g(2), bname1="moved", stat=DIR)
    assert be.sink.apply_entries([op]) == []
    assert be.sink.apply_entries([op]) == []
    assert names(os.path.join(d, "p")) == [] and names(os.path.join(d, "q")) == ["moved"]
    assert be.gfid_at(os.path.join(d, "q", "moved", "child")) == g(4)
    # the directory's new place is what later ops see
    assert be.sink.apply_entries([create(g(5), g(3), "later")]) == []
    assert names(os.path.join(d, "q", "moved")) == ["child", "later"]


def test_rename_onto_a_name_holding_another_gfid_is_eexist_dst(be, g, top):
    T, d = top
    be.sink.apply_entries([create(g(1), T, "a"), create(g(2), T, "b")])
    [fail] = be.sink.apply_entries([EntryOp("RENAME", g(1), T, "a", pgfid1=T, bname1="b",
                                            stat=FILE)])
    assert fail.errno == errno.EEXIST
    assert fail.info == FailureInfo(gfid_mismatch=True, dst=True, slave_gfid=g(2))
    assert be.gfid_at(os.path.join(d, "a")) == g(1)
    assert be.gfid_at(os.path.join(d, "b")) == g(2)


def test_rename_onto_a_hard_link_of_itself_unlinks_the_old_name(be, g, top):
    T, d = top
    be.sink.apply_entries([create(g(1), T, "a"), EntryOp("LINK", g(1), T, "b", stat=FILE)])
    assert be.sink.apply_entries([EntryOp("RENAME", g(1), T, "a", pgfid1=T, bname1="b",
                                          stat=FILE)]) == []
    assert names(d) == ["b"] and be.gfid_at(os.path.join(d, "b")) == g(1)


def test_rename_whose_old_name_is_gone_links_or_creates_at_the_new_name(be, g, top):
    T, d = top
    be.sink.apply_entries([create(g(1), T, "x")])
    ops = [EntryOp("RENAME", g(1), T, "gone", pgfid1=T, bname1="y", stat=FILE),
           EntryOp("RENAME", g(2), T, "gone", pgfid1=T, bname1="z", stat=FILE),
           EntryOp("RENAME", g(3), T, "gone", pgfid1=T, bname1="s", stat=LNK, link="tgt")]
    assert be.sink.apply_entries(ops) == []
    assert os.lstat(os.path.join(d, "y")).st_ino == os.lstat(os.path.join(d, "x")).st_ino
    assert be.gfid_at(os.path.join(d, "z")) == g(2)
    assert stat.S_ISREG(os.lstat(os.path.join(d, "z")).st_mode)
    assert os.readlink(os.path.join(d, "s")) == "tgt" and be.gfid_at(os.path.join(d, "s")) == g(3)


def test_rename_of_a_directory_that_is_nowhere_is_owed_not_made(be, g, top):
    T, d = top
    [fail] = be.sink.apply_entries([EntryOp("RENAME", g(5), T, "gone", pgfid1=T, bname1="dd",
                                            stat=DIR)])
    assert (fail.op.gfid, fail.errno) == (g(5), errno.ENOENT)
    assert names(d) == []


# ------------------------------------------------------------------ sequences and meta
def test_a_replayed_sequence_converges_to_the_same_namespace(be, g, top):
    T, d = top
    ops = [mkdir(g(1), T, "d"), create(g(2), g(1), "a"), create(g(3), T, "b"),
           EntryOp("LINK", g(2), T, "a-link", stat=FILE),
           EntryOp("RENAME", g(2), g(1), "a", pgfid1=T, bname1="a2", stat=FILE),
           EntryOp("SYMLINK", g(4), g(1), "s", stat=LNK, link="../b"),
           EntryOp("UNLINK", g(3), T, "b"), mkdir(g(5), g(1), "e"),
           EntryOp("RENAME", g(5), g(1), "e", pgfid1=T, bname1="e2", stat=DIR),
           create(g(6), g(5), "in-e")]
    assert be.sink.apply_entries(ops) == []

    def snapshot():
        out = {}
        for top_, dirs, files in os.walk(d):
            for n in dirs + files:
                p = os.path.join(top_, n)
                out[os.path.relpath(p, d)] = (stat.S_IFMT(os.lstat(p).st_mode), be.gfid_at(p))
        return out
    first = snapshot()
    assert first == {"d": (stat.S_IFDIR, g(1)), "a-link": (stat.S_IFREG, g(2)),
                     "a2": (stat.S_IFREG, g(2)), os.path.join("d", "s"): (stat.S_IFLNK, g(4)),
                     "e2": (stat.S_IFDIR, g(5)), os.path.join("e2", "in-e"): (stat.S_IFREG, g(6))}
    [fail] = be.sink.apply_entries(ops)  # only the MKDIR of the directory renamed later
    assert fail.op == ops[7] and fail.info.name_mismatch
    assert fail.info.slave_entry == f".gfid/{T}/e2"
    assert snapshot() == first


def test_meta_ops_set_owner_mode_and_times_and_report_a_missing_gfid(be, g, top):
    T, d = top
    be.sink.apply_entries([mkdir(g(1), T, "d"), create(g(2), g(1), "f"),
                           EntryOp("SYMLINK", g(3), g(1), "s", stat=None, link="f")])
    failures = be.sink.apply_meta([MetaOp(g(1), Stat(7, 8, 0o40711, 1000.5, 2000.0)),
                                   MetaOp(g(2), Stat(9, 10, 0o102640, 3000.0, 4000.0)),
                                   MetaOp(g(3), Stat(11, 12, 0o120777, 5000.0, 6000.0)),
                                   MetaOp(g(99), Stat(0, 0, 0o100644, 1.0, 1.0))])
    assert [(x.op.gfid, x.errno) for x in failures] == [(g(99), errno.ENOENT)]
    dd, f, s = (os.lstat(os.path.join(d, *p)) for p in (("d",), ("d", "f"), ("d", "s")))
    assert stat.S_IMODE(dd.st_mode) == 0o711 and dd.st_mtime == 2000.0
    assert stat.S_IMODE(f.st_mode) == 0o2640 and f.st_mtime == 4000.0
    assert (dd.st_uid, dd.st_gid, f.st_uid, f.st_gid, s.st_uid, s.st_gid) == (7, 8, 9, 10, 11, 12)


def test_a_long_create_run_fails_exactly_where_serial_application_would(be, g, top):
    """Long CREATE runs may be applied on threads; the result must not show it."""
    T, d = top
    be.sink.apply_entries([create(g(1), T, "taken")])
    run = [create(g(100 + k), T, f"f{k}") for k in range(40)]
    run[7] = create(g(107), T, "taken")          # the name holds another gfid
    run[21] = create(g(121), g(999), "orphan")   # the parent is nowhere
    run[30] = create(g(1), T, "again")           # the gfid exists: nothing to do
    failures = be.sink.apply_entries(run)
    assert [(f.op.gfid, f.errno) for f in failures] == [(g(107), errno.EEXIST),
                                                        (g(121), errno.ENOENT)]
    assert failures[0].info.slave_gfid == g(1)
    made = {n: be.gfid_at(os.path.join(d, n)) for n in names(d)}
    want = {"taken": g(1), **{f"f{k}": g(100 + k) for k in range(40) if k not in (7, 21, 30)}}
    assert made == want


def test_data_targets_in_bulk_agree_with_the_target(be, g, top):
    """What may receive bytes: regular files only; a directory, a symlink and a gfid
    that is nowhere may not (asked in bulk where the backend can, a volume on
    threads)."""
    T, d = top
    files = [create(g(k), T, f"f{k}") for k in range(1, 21)]
    assert be.sink.apply_entries([*files, mkdir(g(50), T, "dir"),
                                  EntryOp("SYMLINK", g(51), T, "sl", stat=LNK, link="f1")]) == []
    asked = [g(k) for k in range(1, 21)] + [g(50), g(51), g(52)]
    many = getattr(be.sink, "data_targets", None)
    answers = many(asked) if many else [be.sink.is_data_target(x) for x in asked]
    truth = [stat.S_ISREG(os.lstat(os.path.join(d, f"f{k}")).st_mode) for k in range(1, 21)]
    assert answers == truth + [False, False, False] and all(truth)


def test_afrs_anonymous_inode_directory_is_never_made(be, g):
    """A replicated primary brick journals AFR's own directory at its root (a MKDIR
    of .glusterfs-anonymous-inode-<volume id>, hidden from clients): nothing to do
    on the target, not a failure."""
    name = f".glusterfs-anonymous-inode-{g(0)}"
    assert be.sink.apply_entries([mkdir(g(1), R, name)]) == []
    assert not os.path.exists(os.path.join(be.root, name))
