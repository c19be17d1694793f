"""verify: every kind of difference is found; equal trees compare equal;
.glusterfs is excluded; manifests load with line-numbered errors."""

from __future__ import annotations

import os

import pytest

from streamsync.errors import SourceError
from streamsync.verify import Difference, compare, load_manifest, scan_tree, verify


def build(root, *, content=b"data", mode=0o644, target="f", mtime=1000, extra=False,
          link_group=True, fifo=True, gl=True):
    os.makedirs(os.path.join(root, "d"))
    f = os.path.join(root, "d", "f")
    with open(f, "wb") as fh:
        fh.write(content)
    os.chmod(f, mode)
    os.symlink(target, os.path.join(root, "d", "s"))
    if link_group:
        os.link(f, os.path.join(root, "hl"))
    else:
        with open(os.path.join(root, "hl"), "wb") as fh:
            fh.write(content)
        os.chmod(os.path.join(root, "hl"), mode)
    if fifo:
        os.mkfifo(os.path.join(root, "p"))
    if extra:
        open(os.path.join(root, "extra"), "w").close()
    if gl:
        os.makedirs(os.path.join(root, ".glusterfs", "ab"))
        open(os.path.join(root, ".glusterfs", "ab", str(mtime)), "w").close()
    os.utime(f, (mtime, mtime))


def test_equal_trees(tmp_path):
    build(tmp_path / "a")
    build(tmp_path / "b", mtime=2000)
    os.chmod(tmp_path / "b", os.stat(tmp_path / "a").st_mode)
    assert verify(tmp_path / "a", tmp_path / "b") == []
    diffs = verify(tmp_path / "a", tmp_path / "b", mtimes=True)
    assert Difference("d/f", "mtime", 1000, 2000) in diffs


@pytest.mark.parametrize("kw,expected", [
    ({"content": b"datX"}, {("d/f", "sha256"), ("hl", "sha256")}),
    ({"content": b"longer"}, {("d/f", "size"), ("hl", "size"), ("d/f", "sha256"),
                              ("hl", "sha256")}),
    ({"mode": 0o600}, {("d/f", "mode"), ("hl", "mode")}),
    ({"target": "elsewhere"}, {("d/s", "target")}),
    ({"extra": True}, {("extra", "extra")}),
    ({"fifo": False}, {("p", "missing")}),
    ({"link_group": False}, {("d/f", "links"), ("hl", "links")}),
])
def test_each_difference_is_found(tmp_path, kw, expected):
    build(tmp_path / "a")
    build(tmp_path / "b", **kw)
    os.chmod(tmp_path / "b", os.stat(tmp_path / "a").st_mode)
    assert {(d.path, d.field) for d in verify(tmp_path / "a", tmp_path / "b")} == expected


def test_type_change_reported_once(tmp_path):
    for r in ("a", "b"):
        os.makedirs(tmp_path / r)
    os.mkdir(tmp_path / "a" / "x")
    open(tmp_path / "b" / "x", "w").close()
    os.chmod(tmp_path / "b", os.stat(tmp_path / "a").st_mode)
    [d] = verify(tmp_path / "a", tmp_path / "b")
    assert (d.path, d.field, d.source, d.replica) == ("x", "type", "d", "f")
    assert str(d) == "x: type differs: source='d' replica='f'"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_owner_difference(tmp_path):
    build(tmp_path / "a")
    build(tmp_path / "b")
    os.chmod(tmp_path / "b", os.stat(tmp_path / "a").st_mode)
    os.chown(tmp_path / "b" / "d", 1000, 1001)
    assert {(d.path, d.field) for d in verify(tmp_path / "a", tmp_path / "b")} == \
        {("d", "uid"), ("d", "gid")}


def test_manifest_of_the_demo_brick_loads_with_link_groups():
    m = load_manifest(os.path.join(os.path.dirname(__file__), "..", "examples", "demo-brick",
                                   "demo.manifest.jsonl"))
    assert len(m) == 336
    assert sum(1 for n in m.values() if n.links) == 6
    assert {n.type for n in m.values()} == {"d", "f", "l", "p"}
    assert m["."].mode == 0o755 and m["docs/api/ref1.txt"].mode == 0


def test_bad_manifest_line_names_file_and_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"path": ".", "type": "d", "mode": "0755", "uid": 0, "gid": 0}\n{"path": 3\n')
    with pytest.raises(SourceError, match=r"m.jsonl:2: bad manifest line"):
        load_manifest(p)


def test_scan_tree_never_follows_symlinks(tmp_path):
    (tmp_path / "t").mkdir()
    os.symlink("/", tmp_path / "t" / "root-link")
    nodes = scan_tree(tmp_path / "t")
    assert set(nodes) == {".", "root-link"} and nodes["root-link"].target == "/"
    assert compare(nodes, nodes) == []


def test_a_name_that_vanishes_during_the_scan_is_skipped(tmp_path, monkeypatch):
    """verify polls live replicas: a name gone between the listing and its stat (or
    its read) is not in the tree, never an exception."""
    import streamsync.verify as v
    (tmp_path / "keep").write_text("k")
    (tmp_path / "gone").write_text("g")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x").write_text("x")
    real_stat = v.os.stat

    def racing_stat(name, *a, **kw):
        if name in ("gone", "dir") and kw.get("dir_fd") is not None:
            target = tmp_path / name
            if target.is_dir():
                (target / "x").unlink()
                target.rmdir()
            elif target.exists():
                target.unlink()
        return real_stat(name, *a, **kw)

    monkeypatch.setattr(v.os, "stat", racing_stat)
    nodes = v.scan_tree(str(tmp_path))
    assert sorted(nodes) == [".", "keep"]


def test_a_stale_handle_on_a_live_glusterfs_tree_is_a_name_gone(tmp_path, monkeypatch):
    """On a GlusterFS mount a name whose object was just removed or moved answers
    ESTALE (seen on a secondary being written while verify polled it): gone, as
    ENOENT is, whether at its stat, its open or the listing of its directory."""
    import errno
    import streamsync.verify as v
    for n in ("keep", "stale-file"):
        (tmp_path / n).write_text(n)
    (tmp_path / "stale-dir").mkdir()
    (tmp_path / "listed-then-stale").mkdir()
    (tmp_path / "listed-then-stale" / "x").write_text("x")
    real_stat, real_scandir = v.os.stat, v.os.scandir
    stale = OSError(errno.ESTALE, "Stale file handle")

    def stat(name, *a, **kw):
        if name in ("stale-file", "stale-dir") and kw.get("dir_fd") is not None:
            raise stale
        return real_stat(name, *a, **kw)

    def scandir(fd):
        if isinstance(fd, int) and os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) \
                == "listed-then-stale":
            raise stale
        return real_scandir(fd)

    monkeypatch.setattr(v.os, "stat", stat)
    monkeypatch.setattr(v.os, "scandir", scandir)
    assert sorted(v.scan_tree(str(tmp_path))) == [".", "keep"]


def test_a_scan_cut_short_by_an_error_leaves_no_descriptor_open(tmp_path, monkeypatch):
    """An open directory descriptor would keep a mount busy (its unmount fails):
    every one the walk opened is closed when an error ends it."""
    import streamsync.verify as v
    for d in ("a", "b", "c"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "f").write_text(d)
    real_stat = v.os.stat

    def failing(name, *a, **kw):
        if name == "f" and kw.get("dir_fd") is not None:
            raise PermissionError(13, "Permission denied")
        return real_stat(name, *a, **kw)

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(v.os, "stat", failing)
    with pytest.raises(PermissionError):
        v.scan_tree(str(tmp_path))
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_missing_tree_and_a_file_are_told_apart(tmp_path):
    from streamsync.errors import SourceError
    from streamsync.verify import scan_tree
    (tmp_path / "f").write_text("x")
    with pytest.raises(SourceError, match="no such directory"):
        scan_tree(tmp_path / "missing")
    with pytest.raises(SourceError, match="not a directory"):
        scan_tree(tmp_path / "f")
