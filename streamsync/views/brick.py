"""A source view over a real brick directory, through its gfid handles.

GlusterFS keeps, for every inode of a brick, a handle at
``<brick>/.glusterfs/<g[0:2]>/<g[2:4]>/<gfid>``: a hard link for files and
symlinks, a symlink ``../../<p[0:2]>/<p[2:4]>/<pgfid>/<name>`` for a directory,
and ``../../..`` for the root. :class:`BrickView` answers every lookup from
those handles alone: no xattrs, no GlusterFS. (When the process may read
``trusted.gfid`` it uses it to answer :meth:`BrickView.entry_gfid` faster;
otherwise it matches inode numbers against the handles.)

>>> import tempfile, os
>>> b = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(b, ".glusterfs", "00", "00"))
>>> os.symlink("../../..", os.path.join(b, ".glusterfs", "00", "00",
...            "00000000-0000-0000-0000-000000000001"))
>>> import stat; stat.S_ISDIR(BrickView(b).lstat("00000000-0000-0000-0000-000000000001").mode)
True
"""

from __future__ import annotations

import os
import re
import stat as _stat
import threading
import time
import uuid
from typing import Iterable

from ..records import ROOT_GFID, Stat
from .base import SnapshotView, prefetch_view

__all__ = ["BrickView", "handle_path", "INDEX_MAX_AGE"]

#: without ``trusted.gfid`` access, names are matched to gfids through an index of
#: the handles' inode numbers; it is rebuilt on a miss at most this often (seconds)
INDEX_MAX_AGE = 1.0

_DIR_TARGET = re.compile(
    r"\.\./\.\./([0-9a-f]{2})/([0-9a-f]{2})/"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/([^/]+)\Z", re.S)
_GFID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def handle_path(brick: str, gfid: str) -> str:
    """``<brick>/.glusterfs/xx/yy/<gfid>``.

    >>> handle_path("/b", "5b1c2d3e-0000-4000-8000-00000000000a")
    '/b/.glusterfs/5b/1c/5b1c2d3e-0000-4000-8000-00000000000a'
    """
    return os.path.join(brick, ".glusterfs", gfid[0:2], gfid[2:4], gfid)


class BrickView:
    """Read-only view of a brick directory (see the module docstring)."""

    def __init__(self, brick_dir: str | os.PathLike, *, use_xattrs: bool = True) -> None:
        self.brick = os.path.abspath(os.fspath(brick_dir))
        self.use_xattrs = use_xattrs
        self._index: dict[tuple[int, int], str] | None = None
        self._index_built = 0.0
        self._lock = threading.Lock()

    # -- helpers ----------------------------------------------------------
    def _handle(self, gfid: str) -> str | None:
        if not _GFID_RE.match(gfid):
            return None
        return handle_path(self.brick, gfid)

    def _dir_target(self, path: str, st: os.stat_result) -> tuple[str, str] | None:
        """(pgfid, name) when the handle at ``path`` is a directory symlink."""
        if not _stat.S_ISLNK(st.st_mode) or st.st_nlink != 1:
            return None
        try:
            target = os.readlink(path)
        except OSError:
            return None
        m = _DIR_TARGET.match(target)
        if m is None or m.group(1) != m.group(3)[0:2] or m.group(2) != m.group(3)[2:4]:
            return None
        return m.group(3), m.group(4)

    def _os_stat(self, gfid: str) -> os.stat_result | None:
        """The inode's own os.stat_result (directories resolved through the handle)."""
        if gfid == ROOT_GFID:
            try:
                return os.lstat(self.brick)
            except OSError:
                return None
        path = self._handle(gfid)
        if path is None:
            return None
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if _stat.S_ISLNK(st.st_mode) and self._dir_target(path, st) is not None:
            try:
                st = os.stat(path)
            except OSError:
                return None
            if not _stat.S_ISDIR(st.st_mode):
                return None
        return st

    def _dir_path(self, gfid: str) -> str | None:
        if gfid == ROOT_GFID:
            return self.brick
        return self._handle(gfid)

    # -- SourceView -------------------------------------------------------
    def lstat(self, gfid: str) -> Stat | None:
        st = self._os_stat(gfid)
        return None if st is None else Stat.from_os(st)

    def readlink(self, gfid: str) -> str | None:
        path = self._handle(gfid)
        if path is None or gfid == ROOT_GFID:
            return None
        try:
            st = os.lstat(path)
            if not _stat.S_ISLNK(st.st_mode) or self._dir_target(path, st) is not None:
                return None
            return os.readlink(path)
        except OSError:
            return None

    def dir_entry(self, gfid: str) -> tuple[str, str] | None:
        path = self._handle(gfid)
        if path is None or gfid == ROOT_GFID:
            return None
        try:
            st = os.lstat(path)
        except OSError:
            return None
        return self._dir_target(path, st)

    def data_path(self, gfid: str) -> str | None:
        path = self._handle(gfid)
        if path is None or gfid == ROOT_GFID:
            return None
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if self._dir_target(path, st) is not None:
            return None
        return path

    def entry_gfid(self, pgfid: str, bname: str) -> str | None:
        parent = self._dir_path(pgfid)
        if parent is None or not bname or "/" in bname or bname in (".", ".."):
            return None
        path = os.path.join(parent, bname)
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if pgfid == ROOT_GFID and bname == ".glusterfs":
            return None
        return self._gfid_at(path, st)

    def path_gfid(self, rel: str) -> str | None:
        """The gfid of the object at ``rel`` (relative to the brick): its
        ``trusted.gfid``, else the handle that is the same inode (a brick restored
        without xattrs still has its handles); ``None`` when it has neither."""
        if rel in ("", "."):
            return ROOT_GFID
        path = os.path.join(self.brick, rel)
        try:
            st = os.lstat(path)
        except OSError:
            return None
        return self._gfid_at(path, st)

    def _gfid_at(self, path: str, st: os.stat_result) -> str | None:
        if self.use_xattrs:
            try:
                raw = os.getxattr(path, "trusted.gfid", follow_symlinks=False)
                if len(raw) == 16:
                    return str(uuid.UUID(bytes=raw))
            except OSError:
                self.use_xattrs = False  # not permitted / not set: use the handles
        return self._gfid_by_inode(st)

    def _gfid_by_inode(self, st: os.stat_result) -> str | None:
        key = (st.st_dev, st.st_ino)
        if not _stat.S_ISDIR(st.st_mode) and st.st_nlink < 2:
            return None            # no .glusterfs hard link: not a GlusterFS inode
        index = self._index
        if index is not None:
            g = index.get(key)
            if g is not None:
                own = self._os_stat(g)
                if own is not None and (own.st_dev, own.st_ino) == key:
                    return g
        with self._lock:
            # rebuild (a full handle scan) at most every INDEX_MAX_AGE seconds
            if self._index is None or time.monotonic() - self._index_built > INDEX_MAX_AGE:
                self._index = self._build_index()
                self._index_built = time.monotonic()
            index = self._index
        g = index.get(key)
        if g is not None:
            own = self._os_stat(g)
            if own is None or (own.st_dev, own.st_ino) != key:
                return None
        return g

    def _build_index(self) -> dict[tuple[int, int], str]:
        index: dict[tuple[int, int], str] = {}
        try:
            root = os.lstat(self.brick)
            index[(root.st_dev, root.st_ino)] = ROOT_GFID
        except OSError:
            return index
        base = os.path.join(self.brick, ".glusterfs")
        for l1 in _listdir(base):
            if len(l1) != 2:
                continue
            for l2 in _listdir(os.path.join(base, l1)):
                if len(l2) != 2:
                    continue
                for name in _listdir(os.path.join(base, l1, l2)):
                    if not _GFID_RE.match(name) or name == ROOT_GFID:
                        continue
                    st = self._os_stat(name)
                    if st is not None:
                        index[(st.st_dev, st.st_ino)] = name
        return index

    #: threads for :meth:`prefetch`: local lookups are cheap, a few threads
    #: overlap cold-cache disk reads without paying much for the hand-off
    prefetch_workers = 4

    def prefetch(self, gfids: Iterable[str],
                 names: Iterable[tuple[str, str]] = ()) -> SnapshotView:
        return prefetch_view(self, gfids, names, workers=self.prefetch_workers)

    def __repr__(self) -> str:
        return f"BrickView({self.brick!r})"


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
