"""Source views: memory (JSON), brick (handles, built here and from the corpus
listings), mount (over a fake .gfid tree), and concurrent prefetch."""

import os
import stat
import time

import pytest

from streamsync.errors import SourceError
from streamsync.records import ROOT_GFID, Stat
from streamsync.views import (BrickView, CountingView, MemoryView, MountView, SnapshotView,
                              SourceView, handle_path, prefetch_view)
from conftest import handles

DATA = os.path.join(os.path.dirname(__file__), "data", "gluster-10.3")
G1 = "5b1c2d3e-0000-4000-8000-00000000000a"
G2 = "5b1c2d3e-0000-4000-8000-00000000000b"
G3 = "5b1c2d3e-0000-4000-8000-00000000000c"
NONUTF8 = os.fsdecode(b"caf\xe9")


def _doc():
    return {"root": ROOT_GFID,
            "inodes": {G1: {"mode": 0o40755, "uid": 1, "gid": 2, "atime": 1.5, "mtime": 2.5},
                       G2: {"mode": 0o100644, "uid": 3, "gid": 4, "atime": 5.0, "mtime": 6.0},
                       G3: {"mode": 0o120777, "uid": 0, "gid": 0, "atime": 0, "mtime": 0,
                            "link": {"b64": "dGFy/2V0"}}},
            "entries": [[ROOT_GFID, "d", G1], [G1, "f x\n", G2], [G1, {"b64": "Y2Fm6Q=="}, G3],
                        [ROOT_GFID, "hard", G2]]}


def test_memory_view_answers_from_json():
    v = MemoryView.from_json(_doc())
    assert isinstance(v, SourceView)
    assert v.lstat(ROOT_GFID) == Stat(0, 0, 0o40755, 0.0, 0.0)   # absent root
    assert v.lstat(G2) == Stat(3, 4, 0o100644, 5.0, 6.0)
    assert v.lstat("gone") is None
    assert v.readlink(G3) == os.fsdecode(b"tar\xffet")
    assert v.readlink(G2) is None and v.readlink("gone") is None
    assert v.entry_gfid(G1, "f x\n") == G2 and v.entry_gfid(ROOT_GFID, "hard") == G2
    assert v.entry_gfid(G1, NONUTF8) == G3
    assert v.entry_gfid(G1, "nope") is None
    assert v.dir_entry(G1) == (ROOT_GFID, "d")
    assert v.dir_entry(G2) is None and v.dir_entry(ROOT_GFID) is None
    assert v.data_path(G2) is None
    assert v.prefetch([G1]) is v
    again = MemoryView.from_json(v.to_json())
    assert again.inodes == v.inodes and again.entries == v.entries and again.links == v.links


def test_memory_view_from_file_and_errors(tmp_path):
    import orjson
    p = tmp_path / "state.json"
    p.write_bytes(orjson.dumps(_doc()))
    assert MemoryView.from_json(str(p)).entry_gfid(ROOT_GFID, "d") == G1
    assert MemoryView.from_json(p).lstat(G1).uid == 1
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SourceError, match="bad.json"):
        MemoryView.from_json(str(tmp_path / "bad.json"))
    with pytest.raises(SourceError):
        MemoryView.from_json({"inodes": {G1: {"uid": 0}}})   # no mode
    with pytest.raises(SourceError, match="cannot read"):
        MemoryView.from_json(str(tmp_path / "missing.json"))


# ---------------------------------------------------------------- brick view
def _make_handle_dir(brick, gfid):
    os.makedirs(os.path.dirname(handle_path(brick, gfid)), exist_ok=True)
    return handle_path(brick, gfid)


def _build_brick(brick):
    """A brick laid out as GlusterFS posix does: hard links for files and
    symlinks, a ../../pp/qq/<pgfid>/<name> symlink for directories."""
    os.makedirs(brick)
    os.symlink("../../..", _make_handle_dir(brick, ROOT_GFID))
    os.mkdir(os.path.join(brick, "d"))
    os.symlink(f"../../{ROOT_GFID[:2]}/{ROOT_GFID[2:4]}/{ROOT_GFID}/d",
               _make_handle_dir(brick, G1))
    f = os.path.join(brick, "d", "f x\n")
    with open(f, "w") as fh:
        fh.write("hello")
    os.link(f, _make_handle_dir(brick, G2))
    os.link(f, os.path.join(brick, "hard"))
    ln = os.path.join(brick, "d", "ln")
    os.symlink("target/of link", ln)
    os.link(ln, _make_handle_dir(brick, G3), follow_symlinks=False)


def test_brick_view_on_a_built_brick(tmp_path):
    brick = str(tmp_path / "brick")
    _build_brick(brick)
    v = BrickView(brick, use_xattrs=False)
    assert stat.S_ISDIR(v.lstat(ROOT_GFID).mode)
    st = v.lstat(G1)
    assert stat.S_ISDIR(st.mode) and st == Stat.from_os(os.lstat(os.path.join(brick, "d")))
    assert stat.S_ISREG(v.lstat(G2).mode)
    assert stat.S_ISLNK(v.lstat(G3).mode)
    assert v.lstat(G3.replace("c", "d")) is None and v.lstat("../../etc") is None
    assert v.readlink(G3) == "target/of link"
    assert v.readlink(G1) is None and v.readlink(G2) is None and v.readlink(ROOT_GFID) is None
    assert v.entry_gfid(ROOT_GFID, "d") == G1
    assert v.entry_gfid(G1, "f x\n") == G2
    assert v.entry_gfid(ROOT_GFID, "hard") == G2
    assert v.entry_gfid(G1, "ln") == G3
    assert v.entry_gfid(G1, "missing") is None and v.entry_gfid(ROOT_GFID, ".glusterfs") is None
    assert v.dir_entry(G1) == (ROOT_GFID, "d")
    assert v.dir_entry(G2) is None and v.dir_entry(G3) is None and v.dir_entry(ROOT_GFID) is None
    with open(v.data_path(G2)) as fh:
        assert fh.read() == "hello"
    assert v.data_path(G1) is None and v.data_path(G3.replace("c", "e")) is None
    # the namespace changes under the view: a name now holds another inode
    os.unlink(os.path.join(brick, "hard"))
    os.rename(os.path.join(brick, "d", "ln"), os.path.join(brick, "hard"))
    assert v.entry_gfid(ROOT_GFID, "hard") == G3
    # removing the file and its handle makes the gfid gone
    os.unlink(os.path.join(brick, "d", "f x\n"))
    os.unlink(handle_path(brick, G2))
    assert v.lstat(G2) is None and v.data_path(G2) is None
    snap = v.prefetch([G1, G2, G3], [(ROOT_GFID, "hard"), (G1, "f x\n")])
    assert isinstance(snap, SnapshotView)
    for g in (G1, G2, G3):
        a, b = snap.lstat(g), v.lstat(g)   # atime moves as the test reads directories
        assert (a and a._replace(atime=0)) == (b and b._replace(atime=0))
        assert snap.readlink(g) == v.readlink(g)
    assert snap.entry_gfid(ROOT_GFID, "hard") == G3 and snap.entry_gfid(G1, "f x\n") is None


@pytest.mark.parametrize("scenario", ["ascii-delpath-on", "binary-delpath-off"])
def test_brick_view_on_corpus_handle_listings(tmp_path, scenario):
    """Rebuild the brick namespace of the corpus listing with the real directory
    handle targets from gfid-tree.tsv; the view must find every name's gfid, every
    directory's parent and name, and every type."""
    rows = handles(scenario)
    tree = {}
    with open(os.path.join(DATA, "meta", scenario, "gfid-tree.tsv"), encoding="utf-8") as fh:
        for line in fh:
            gfid, kind, detail = line.rstrip("\n").split("\t", 2)
            tree[gfid] = (kind, detail)
    brick = str(tmp_path / "brick")
    os.makedirs(brick)
    gfid_of = {".": ROOT_GFID}
    for gfid, kind, path in rows:
        if path == ".":
            os.symlink(tree[gfid][1], _make_handle_dir(brick, gfid))
            continue
        gfid_of[path] = gfid
        full = os.path.join(brick, path)
        h = _make_handle_dir(brick, gfid)
        if kind == "d":
            os.mkdir(full)
            assert tree[gfid][0] == "symlink"
            os.symlink(tree[gfid][1], h)
        elif os.path.lexists(h):
            os.link(h, full, follow_symlinks=False)     # another hard link
        else:
            if kind == "l":
                os.symlink("t", full)
            elif kind == "p":
                os.mkfifo(full)
            else:
                open(full, "w").close()
            os.link(full, h, follow_symlinks=False)
    v = BrickView(brick, use_xattrs=False)
    types = {"d": stat.S_ISDIR, "f": stat.S_ISREG, "l": stat.S_ISLNK, "p": stat.S_ISFIFO}
    snap = v.prefetch([g for g, _, _ in rows],
                      [(gfid_of[os.path.dirname(p) or "."], os.path.basename(p))
                       for _, _, p in rows if p != "."])
    for gfid, kind, path in rows:
        st = snap.lstat(gfid)
        assert st is not None and types[kind](st.mode), (gfid, path)
        if path == ".":
            continue
        parent = gfid_of[os.path.dirname(path) or "."]
        assert snap.entry_gfid(parent, os.path.basename(path)) == gfid, path
        if kind == "d":
            assert v.dir_entry(gfid) == (parent, os.path.basename(path)), path
        else:
            assert v.dir_entry(gfid) is None


# ---------------------------------------------------------------- mount view
def test_mount_view_over_a_gfid_tree(tmp_path):
    """A stand-in for an aux-gfid mount: .gfid/<gfid> entries exist as plain paths."""
    mnt = tmp_path / "mnt"
    (mnt / ".gfid").mkdir(parents=True)
    (mnt / ".gfid" / G2).write_text("data")
    os.symlink("tgt", mnt / ".gfid" / G3)
    v = MountView(mnt, brick_dir=None)
    assert stat.S_ISREG(v.lstat(G2).mode) and v.lstat(G1) is None
    assert v.readlink(G3) == "tgt" and v.readlink(G2) is None and v.readlink(G1) is None
    assert v.data_path(G2) == str(mnt / ".gfid" / G2) and v.data_path(G1) is None
    assert v.entry_gfid(G1, "x") is None           # no xattr support: unknown
    assert v.dir_entry(G1) is None
    assert v.lstat("../etc") is None


# ---------------------------------------------------------------- prefetch
def test_prefetch_matches_direct_calls_and_is_concurrent():
    mv = MemoryView.from_json(_doc())
    gfids = [ROOT_GFID, G1, G2, G3, "missing"] * 4
    names = [(ROOT_GFID, "d"), (G1, "f x\n"), (G1, NONUTF8), (G1, "zz")] * 4
    slow = CountingView(mv, on_lookup=lambda: time.sleep(0.01))
    t0 = time.perf_counter()
    snap = prefetch_view(slow, gfids, names, workers=16)
    elapsed = time.perf_counter() - t0
    # 5 unique gfids (+1 readlink for the symlink) and 4 unique names
    assert slow.lookups == 10
    assert elapsed < 10 * 0.01 * 0.6   # well below one-at-a-time
    calls = slow.lookups
    for g in gfids:
        assert snap.lstat(g) == mv.lstat(g) and snap.readlink(g) == mv.readlink(g)
    for n in names:
        assert snap.entry_gfid(*n) == mv.entry_gfid(*n)
    assert slow.lookups == calls   # answered from the snapshot
    assert snap.entry_gfid(ROOT_GFID, "hard") == G2   # not prefetched: goes to the base


def test_mount_view_reads_the_gfid_of_a_name_from_the_virtual_xattr(tmp_path, monkeypatch):
    """On an aux-gfid mount the gfid a name holds is glusterfs.gfid.string (read with
    lgetxattr, 36 chars + NUL); stand in for the FUSE client with a fake getxattr."""
    mnt = tmp_path / "mnt"
    (mnt / ".gfid" / G1).mkdir(parents=True)
    (mnt / ".gfid" / G1 / "a b").write_text("x")
    calls = []

    def fake_getxattr(path, name, follow_symlinks=True):
        calls.append((os.fspath(path), name, follow_symlinks))
        if name != "glusterfs.gfid.string" or not os.path.lexists(path):
            raise OSError(61, "No data available")
        return (G2 + "\0").encode()

    monkeypatch.setattr(os, "getxattr", fake_getxattr)
    v = MountView(mnt)
    assert v.entry_gfid(G1, "a b") == G2
    assert calls[-1] == (str(mnt / ".gfid" / G1 / "a b"), "glusterfs.gfid.string", False)
    assert v.entry_gfid(G1, "missing") is None
    assert v.entry_gfid(G1, "../x") is None and v.entry_gfid("not-a-gfid", "a b") is None
    snap = v.prefetch([G1], [(G1, "a b"), (G1, "missing")])
    assert snap.entry_gfid(G1, "a b") == G2 and snap.entry_gfid(G1, "missing") is None


def test_brick_view_index_is_not_rescanned_for_names_without_a_handle(tmp_path, monkeypatch):
    brick = str(tmp_path / "brick")
    _build_brick(brick)
    v = BrickView(brick, use_xattrs=False)
    assert v.entry_gfid(ROOT_GFID, "d") == G1            # builds the index once
    scans = []
    real = v._build_index
    monkeypatch.setattr(v, "_build_index", lambda: scans.append(1) or real())
    with open(os.path.join(brick, "no handle"), "w"):
        pass                                             # nlink 1: not a GlusterFS inode
    assert v.entry_gfid(ROOT_GFID, "no handle") is None
    os.mkdir(os.path.join(brick, "new dir"))             # a directory without a handle
    assert v.entry_gfid(ROOT_GFID, "new dir") is None
    assert v.entry_gfid(ROOT_GFID, "new dir") is None
    assert scans == []                                   # index fresh: no rescans
    monkeypatch.setattr("streamsync.views.brick.INDEX_MAX_AGE", 0.0)
    assert v.entry_gfid(ROOT_GFID, "new dir") is None and scans == [1]
