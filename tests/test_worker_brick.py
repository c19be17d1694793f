"""A GlusterFS-like brick built by the tests, journaling what it does.

:class:`Brick` makes real files, directories, symlinks and hard links, gives
each inode a gfid (``trusted.gfid`` xattr plus the ``.glusterfs`` handle: a hard
link for files and symlinks, a ``../../xx/yy/<pgfid>/<name>`` symlink for
directories) and journals each operation as the changelog translator does; a
:meth:`Brick.rollover` writes the pending records as a raw ascii journal
``CHANGELOG.<ts>`` and appends it to the HTIME index. The other worker tests
import it; the tests below check that the brick reads like a real one.
"""

from __future__ import annotations

import os
import stat
import uuid

from streamsync.encode import encode_journal
from streamsync.records import ROOT_GFID, DataRecord, EntryRecord, MetaRecord
from streamsync.views import BrickView


def _handle(root: str, gfid: str) -> str:
    return os.path.join(root, ".glusterfs", gfid[:2], gfid[2:4], gfid)


class Brick:
    """A brick directory plus its journals (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, *, seed: int = 0) -> None:
        self.root = os.fspath(root)
        self._n = seed * 1000000
        os.makedirs(self.root, exist_ok=True)
        self.cdir = os.path.join(self.root, ".glusterfs", "changelogs")
        os.makedirs(os.path.join(self.cdir, "htime"), exist_ok=True)
        os.makedirs(os.path.dirname(_handle(self.root, ROOT_GFID)), exist_ok=True)
        if not os.path.islink(_handle(self.root, ROOT_GFID)):
            os.symlink("../../..", _handle(self.root, ROOT_GFID))
        os.setxattr(self.root, "trusted.gfid", uuid.UUID(ROOT_GFID).bytes)
        self.pending: list = []
        self.htime: str | None = None
        self.journaling = True

    # ----------------------------------------------------------- helpers
    def _gfid(self) -> str:
        self._n += 1
        return str(uuid.UUID(int=(0x5B1C2D3E << 96) | (0x4000 << 64) | self._n))

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def gfid_of(self, rel: str) -> str:
        p = self.path(rel) if rel not in ("", ".") else self.root
        return str(uuid.UUID(bytes=os.getxattr(p, "trusted.gfid", follow_symlinks=False)))

    def _parent(self, rel: str) -> tuple[str, str]:
        d, name = os.path.split(rel)
        return (self.gfid_of(d) if d else ROOT_GFID), name

    def _log(self, *records) -> None:
        if self.journaling:
            self.pending.extend(records)

    # ---------------------------------------------------------- operations
    def mkdir(self, rel: str, mode: int = 0o755) -> str:
        pg, name = self._parent(rel)
        g = self._gfid()
        os.mkdir(self.path(rel), mode)
        os.setxattr(self.path(rel), "trusted.gfid", uuid.UUID(g).bytes)
        h = _handle(self.root, g)
        os.makedirs(os.path.dirname(h), exist_ok=True)
        os.symlink(f"../../{pg[:2]}/{pg[2:4]}/{pg}/{name}", h)
        st = os.lstat(self.path(rel))
        self._log(EntryRecord(g, "MKDIR", pg, name, mode=st.st_mode, uid=0, gid=0))
        return g

    def create(self, rel: str, data: bytes = b"", mode: int = 0o644) -> str:
        pg, name = self._parent(rel)
        g = self._gfid()
        with open(self.path(rel), "wb") as fh:
            fh.write(data)
        os.chmod(self.path(rel), mode)
        os.setxattr(self.path(rel), "trusted.gfid", uuid.UUID(g).bytes)
        h = _handle(self.root, g)
        os.makedirs(os.path.dirname(h), exist_ok=True)
        os.link(self.path(rel), h)
        st = os.lstat(self.path(rel))
        self._log(EntryRecord(g, "CREATE", pg, name, mode=st.st_mode, uid=0, gid=0))
        if data:
            self._log(DataRecord(g))
        return g

    def symlink(self, target: str, rel: str) -> str:
        pg, name = self._parent(rel)
        g = self._gfid()
        os.symlink(target, self.path(rel))
        os.setxattr(self.path(rel), "trusted.gfid", uuid.UUID(g).bytes, follow_symlinks=False)
        h = _handle(self.root, g)
        os.makedirs(os.path.dirname(h), exist_ok=True)
        os.link(self.path(rel), h, follow_symlinks=False)
        self._log(EntryRecord(g, "SYMLINK", pg, name))
        return g

    def link(self, src: str, rel: str) -> str:
        pg, name = self._parent(rel)
        g = self.gfid_of(src)
        os.link(self.path(src), self.path(rel))
        self._log(EntryRecord(g, "LINK", pg, name))
        return g

    def write(self, rel: str, data: bytes, *, append: bool = False) -> None:
        with open(self.path(rel), "ab" if append else "wb") as fh:
            fh.write(data)
        self._log(DataRecord(self.gfid_of(rel)))

    def chmod(self, rel: str, mode: int) -> None:
        os.chmod(self.path(rel), mode)
        self._log(MetaRecord(self.gfid_of(rel), "SETATTR"))

    def rename(self, src: str, dst: str) -> None:
        g = self.gfid_of(src)
        pg, name = self._parent(src)
        pg1, name1 = self._parent(dst)
        is_dir = os.path.isdir(self.path(src)) and not os.path.islink(self.path(src))
        os.rename(self.path(src), self.path(dst))
        if is_dir:
            h = _handle(self.root, g)
            os.unlink(h)
            os.symlink(f"../../{pg1[:2]}/{pg1[2:4]}/{pg1}/{name1}", h)
        self._log(EntryRecord(g, "RENAME", pg, name, pgfid1=pg1, bname1=name1))

    def unlink(self, rel: str) -> None:
        g = self.gfid_of(rel)
        pg, name = self._parent(rel)
        st = os.lstat(self.path(rel))
        os.unlink(self.path(rel))
        if st.st_nlink <= 2:
            os.unlink(_handle(self.root, g))
        self._log(EntryRecord(g, "UNLINK", pg, name))

    def rmdir(self, rel: str) -> None:
        g = self.gfid_of(rel)
        pg, name = self._parent(rel)
        os.rmdir(self.path(rel))
        os.unlink(_handle(self.root, g))
        self._log(EntryRecord(g, "RMDIR", pg, name))

    # ------------------------------------------------------------ journals
    def rollover(self, ts: int) -> str | None:
        """Write the pending records as ``CHANGELOG.<ts>`` (an empty rollover is
        listed in HTIME as ``changelog.<ts>`` and writes no file)."""
        if self.htime is None:
            self.htime = os.path.join(self.cdir, "htime", f"HTIME.{ts - 1}")
            open(self.htime, "wb").close()
        records, self.pending = self.pending, []
        name = f"CHANGELOG.{ts}" if records else f"changelog.{ts}"
        path = os.path.join(self.cdir, name)
        if records:
            with open(path, "wb") as fh:
                fh.write(encode_journal(records))
        with open(self.htime, "ab") as fh:
            fh.write(os.fsencode(path) + b"\0")
        os.setxattr(self.htime, "trusted.glusterfs.htime", f"{ts}:{self._count()}".encode())
        return path if records else None

    def _count(self) -> int:
        with open(self.htime, "rb") as fh:
            return fh.read().count(b"\0")

    def changelog_off(self) -> None:
        """Stop journaling (operations are no longer recorded, HTIME is closed)."""
        self.journaling = False
        self.pending = []
        self.htime = None

    def changelog_on(self) -> None:
        self.journaling = True

    def journals(self) -> list[int]:
        """Timestamps of the ``CHANGELOG.<ts>`` files, listed directly."""
        return sorted(int(n.split(".")[1]) for n in os.listdir(self.cdir)
                      if n.startswith("CHANGELOG."))


# ------------------------------------------------------------------ tests
def test_brick_reads_like_a_brick(tmp_path):
    b = Brick(tmp_path / "b")
    d = b.mkdir("d")
    f = b.create("d/f", b"hello")
    b.link("d/f", "f2")
    s = b.symlink("d/f", "s")
    v = BrickView(b.root)
    assert v.dir_entry(d) == (ROOT_GFID, "d")
    assert v.entry_gfid(d, "f") == f and v.entry_gfid(ROOT_GFID, "f2") == f
    assert v.readlink(s) == "d/f"
    assert stat.S_ISREG(v.lstat(f).mode) and os.lstat(b.path("d/f")).st_nlink == 3
    b.rename("d", "e")
    assert BrickView(b.root).dir_entry(d) == (ROOT_GFID, "e")
    p = b.rollover(1700000015)
    assert os.path.basename(p) == "CHANGELOG.1700000015"
    assert b.rollover(1700000030) is None  # empty rollover: listed, no file
    from streamsync.discover import read_changelog, read_htime
    from streamsync.discover import discover
    assert [e.empty for e in read_htime(b.htime)] == [False, True]
    recs = list(read_changelog(next(iter(discover(b.cdir)))))
    assert [r.fop if r.TYPE != "D" else "D" for r in recs] == \
        ["MKDIR", "CREATE", "D", "LINK", "SYMLINK", "RENAME"]
