"""The hybrid (xsync) crawl: the records gsyncd writes, flushing, skips, stimes."""

from __future__ import annotations

import os
import struct

from test_worker_brick import Brick

from streamsync.crawl.xsync import (XSYNC_MAX_ENTRIES, XsyncChunk, XsyncStime, purge_stale_xsync,
                                    write_xsync, xsync_chunks)
from streamsync.discover import discover, read_changelog
from streamsync.parse import render_record
from streamsync.records import ROOT_GFID, Stime

R = ROOT_GFID


def _split(events):
    chunks = [e for e in events if isinstance(e, XsyncChunk)]
    stimes = [e for e in events if isinstance(e, XsyncStime)]
    return chunks, stimes


def test_records_per_object_type(tmp_path):
    b = Brick(tmp_path / "b")
    d = b.mkdir("d x", 0o750)
    f = b.create("d x/one", b"1")
    h = b.create("hard", b"22")
    b.link("hard", "d x/hard2")
    s = b.symlink("../hard", "d x/sym")
    os.mkfifo(b.path("fifo"))  # not journaled by gsyncd's hybrid crawl (specials=False)
    # DHT link-to file: sticky bit + trusted.glusterfs.dht.linkto -> skipped
    lt = b.create("linkto", b"", 0o1000)
    os.setxattr(b.path("linkto"), "trusted.glusterfs.dht.linkto", b"demo-client-1\0")
    # sticky bit alone is a normal file
    sticky = b.create("sticky", b"s", 0o1644)
    # skipped at the root only
    os.makedirs(b.path(".trashcan/x"))
    t = b.mkdir("d x/.trashcan")
    os.utime(b.path("d x/.trashcan"), (1000.5, 2000.25))
    os.utime(b.path("d x"), (1700000000.125, 1700000001.0))
    std = os.lstat(b.path("d x"))
    stt = os.lstat(b.path("d x/.trashcan"))
    chunks, stimes = _split(list(xsync_chunks(b.root, register_time=1700000100,
                                              specials=False)))
    assert len(chunks) == 1
    lines = [render_record(r) for r in chunks[0].records]
    expected = [
        f"E {d} MKDIR {std.st_mode} 0 0 {R}/d%20x",
        f"M {d} SETATTR 0 0 {std.st_mode} 1700000000.125 1700000001.0",
        f"E {t} MKDIR {stt.st_mode} 0 0 {d}/.trashcan",
        f"M {t} SETATTR 0 0 {stt.st_mode} 1000.5 2000.25",
        f"E {h} LINK {d}/hard2",
        "D " + h,
        f"E {f} MKNOD {0o100644} 0 0 {d}/one",
        "D " + f,
        f"E {s} SYMLINK {d}/sym",
        f"E {h} LINK {R}/hard",
        "D " + h,
        f"E {sticky} MKNOD {0o101644} 0 0 {R}/sticky",
        "D " + sticky,
    ]
    assert lines == expected
    assert lt not in "".join(lines)
    assert chunks[0].objects == 7  # 2 dirs, 4 regular names, 1 symlink
    # stimes: each directory after its contents, the root last, capped at registration
    assert stimes == [XsyncStime("d x/.trashcan", Stime(1700000100, 0)),
                      XsyncStime("d x", Stime(1700000100, 0)),
                      XsyncStime(".", Stime(1700000100, 0))]


def test_written_journal_round_trips_through_the_parser(tmp_path):
    b = Brick(tmp_path / "b")
    b.mkdir("a\nb%c")
    b.create("a\nb%c/f g", b"x")
    (chunk,), _ = _split(list(xsync_chunks(b.root, register_time=1)))
    cl = write_xsync(str(tmp_path / "w"), chunk.records, ts=1700000000)
    assert os.path.basename(cl.path) == "XSYNC-CHANGELOG.1700000000" and cl.kind == "xsync"
    raw = open(cl.path, "rb").read()
    assert b"a%0Ab%25c" in raw and b"f%20g" in raw
    (found,) = list(discover(str(tmp_path / "w")))
    assert found.kind == "xsync"
    assert list(read_changelog(found)) == list(chunk.records)
    assert purge_stale_xsync(str(tmp_path / "w")) == 1
    assert os.listdir(tmp_path / "w") == []


def test_flush_every_max_entries_and_stime_order(tmp_path):
    b = Brick(tmp_path / "b")
    b.mkdir("a")
    for i in range(4):
        b.create(f"a/f{i}", b"x")
    b.mkdir("z")
    b.create("z/g", b"y")
    events = list(xsync_chunks(b.root, register_time=50, max_entries=3))
    kinds = [type(e).__name__ if isinstance(e, XsyncChunk) else e.relpath for e in events]
    # objects in walk order: a, a/f0..f3, z, z/g = 7 -> chunks of 3, 3, 1; the stime of
    # 'a' comes right after the chunk holding its last file, the root's at the very end
    assert kinds == ["XsyncChunk", "XsyncChunk", "a", "XsyncChunk", "z", "."]
    assert [e.objects for e in events if isinstance(e, XsyncChunk)] == [3, 3, 1]


def test_default_flush_is_8192_objects(tmp_path):
    assert XSYNC_MAX_ENTRIES == 8192
    b = Brick(tmp_path / "b")
    b.mkdir("d")
    b.journaling = False
    for i in range(8195):
        open(b.path(f"d/f{i}"), "wb").close()
    # no gfids for these: the crawl must skip them (gsyncd logs 'skipping entry')
    chunks, _ = _split(list(xsync_chunks(b.root, register_time=1)))
    assert [c.objects for c in chunks] == [1]
    import uuid
    for i in range(8195):
        g = str(uuid.UUID(int=(7 << 100) + i))
        os.setxattr(b.path(f"d/f{i}"), "trusted.gfid", uuid.UUID(g).bytes)
        hp = os.path.join(b.root, ".glusterfs", g[:2], g[2:4])
        os.makedirs(hp, exist_ok=True)
        os.link(b.path(f"d/f{i}"), os.path.join(hp, g))
    chunks, _ = _split(list(xsync_chunks(b.root, register_time=1)))
    assert [c.objects for c in chunks] == [8192, 4]
    assert sum(1 for c in chunks for r in c.records if r.TYPE == "D") == 8195


def test_gfid_from_handles_when_xattr_missing(tmp_path):
    b = Brick(tmp_path / "b")
    d = b.mkdir("d")
    f = b.create("d/f", b"x")
    for rel in ("d", "d/f"):
        os.removexattr(b.path(rel), "trusted.gfid")
    (chunk,), _ = _split(list(xsync_chunks(b.root, register_time=1)))
    assert [r.gfid for r in chunk.records] == [d, d, f, f]


def test_marker_xtimes_limit_the_crawl(tmp_path):
    vol = "11111111-2222-3333-4444-555555555555"
    key = f"trusted.glusterfs.{vol}.xtime"
    b = Brick(tmp_path / "b")
    b.mkdir("old")
    b.create("old/f", b"x")
    b.mkdir("new")
    n = b.create("new/f", b"y")
    xt = {"old": 100, "old/f": 90, "new": 300, "new/f": 300}
    for rel, t in xt.items():
        os.setxattr(b.path(rel), key, struct.pack("!II", t, 0))
    os.setxattr(b.root, key, struct.pack("!II", 300, 0))
    chunks, stimes = _split(list(xsync_chunks(b.root, register_time=1000, root_stime=(200, 0),
                                              volume_uuid=vol)))
    got = {r.gfid for c in chunks for r in c.records}
    assert got == {b.gfid_of("new"), n}
    # directory stimes are the xtimes, capped at registration
    assert stimes == [XsyncStime("new", Stime(300, 0)), XsyncStime(".", Stime(300, 0))]
    chunks, stimes = _split(list(xsync_chunks(b.root, register_time=250, root_stime=(0, 0),
                                              volume_uuid=vol)))
    # a root stime of (0, 0) forces a full crawl
    assert len({r.gfid for c in chunks for r in c.records}) == 4
    assert stimes[-1] == XsyncStime(".", Stime(250, 0))


def _node(b, rel, kind, mode):
    """A fifo/socket made on the brick with a gfid and its handle (a hard link)."""
    import uuid
    g = b._gfid()
    os.mknod(b.path(rel), kind | mode)
    os.chmod(b.path(rel), mode)
    os.setxattr(b.path(rel), "trusted.gfid", uuid.UUID(g).bytes)
    h = os.path.join(b.root, ".glusterfs", g[:2], g[2:4], g)
    os.makedirs(os.path.dirname(h), exist_ok=True)
    os.link(b.path(rel), h)
    return g


def test_specials_are_journaled_unlike_gsyncd(tmp_path):
    import stat as S
    b = Brick(tmp_path / "b")
    p = _node(b, "p", S.S_IFIFO, 0o640)
    k = _node(b, "sock", S.S_IFSOCK, 0o755)
    os.link(b.path("sock"), b.path("sock2"))
    os.chown(b.path("p"), 101, 202)
    os.utime(b.path("p"), (1600000000.5, 1600000001.25))
    sp, sk = os.lstat(b.path("p")), os.lstat(b.path("sock"))
    (chunk,), _ = _split(list(xsync_chunks(b.root, register_time=1)))
    lines = [render_record(r) for r in chunk.records]
    assert lines == [
        f"E {p} MKNOD {S.S_IFIFO | 0o640} 0 0 {R}/p",
        f"M {p} SETATTR 101 202 {S.S_IFIFO | 0o640} 1600000000.5 1600000001.25",
        f"E {k} LINK {R}/sock",
        f"M {k} SETATTR 0 0 {S.S_IFSOCK | 0o755} {sk.st_atime!r} {sk.st_mtime!r}",
        f"E {k} LINK {R}/sock2",
        f"M {k} SETATTR 0 0 {S.S_IFSOCK | 0o755} {sk.st_atime!r} {sk.st_mtime!r}",
    ]
    assert sp.st_mode == S.S_IFIFO | 0o640 and chunk.objects == 3
    # gsyncd's crawl: nothing of them
    assert not [e for e in xsync_chunks(b.root, register_time=1, specials=False)
                if isinstance(e, XsyncChunk)]


def test_symlink_to_dotdot_is_not_taken_for_a_directory_handle(tmp_path):
    b = Brick(tmp_path / "b")
    docs = b.mkdir("docs")
    src = b.mkdir("src")
    s = b.symlink("../../docs", "src/sym_dir")
    d = b.mkdir("src/real")
    for rel in ("docs", "src", "src/sym_dir", "src/real"):  # gfids from the handles only
        os.removexattr(b.path(rel), "trusted.gfid", follow_symlinks=False)
    (chunk,), _ = _split(list(xsync_chunks(b.root, register_time=1)))
    entries = [render_record(r) for r in chunk.records if r.TYPE == "E"]
    assert [ln.split(" ", 3)[1:3] for ln in entries] == [
        [docs, "MKDIR"], [src, "MKDIR"], [d, "MKDIR"], [s, "SYMLINK"]]
    assert entries[-1] == f"E {s} SYMLINK {src}/sym_dir"
