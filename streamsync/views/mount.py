"""A source view over a GlusterFS FUSE mount made with ``aux-gfid-mount``.

Every inode is reachable as ``<mnt>/.gfid/<gfid>`` and every name as
``<mnt>/.gfid/<pgfid>/<bname>``; the gfid a name holds is the virtual xattr
``glusterfs.gfid.string``. Each lookup is a network round trip, which is why
:meth:`MountView.prefetch` resolves a changelog's lookups concurrently.

Where a directory lives (:meth:`MountView.dir_entry`) comes from the virtual
xattr ``glusterfs.ancestry.path`` of ``.gfid/<gfid>`` (its path from the
volume root, answered by the brick's handle) and the gfid of the parent path;
pass ``brick_dir`` (the local brick of the same volume) to read the brick's
handle symlink instead, without a round trip.

>>> MountView("/mnt/vol").data_path("5b1c2d3e-0000-4000-8000-00000000000a") is None
True
"""

from __future__ import annotations

import os
import re
import stat as _stat
from typing import Iterable

from ..records import ROOT_GFID, Stat
from .base import SnapshotView, prefetch_view

__all__ = ["MountView"]

_GFID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


class MountView:
    """Read-only view of an aux-gfid mount (see the module docstring)."""

    def __init__(self, mount_dir: str | os.PathLike, *,
                 brick_dir: str | os.PathLike | None = None) -> None:
        self.mount = os.path.abspath(os.fspath(mount_dir))
        self._brick = None
        if brick_dir is not None:
            from .brick import BrickView
            self._brick = BrickView(brick_dir)

    def _go(self, gfid: str) -> str | None:
        if not _GFID_RE.match(gfid):
            return None
        return os.path.join(self.mount, ".gfid", gfid)

    def lstat(self, gfid: str) -> Stat | None:
        path = self._go(gfid)
        if path is None:
            return None
        try:
            return Stat.from_os(os.lstat(path))
        except OSError:
            return None

    def readlink(self, gfid: str) -> str | None:
        path = self._go(gfid)
        if path is None:
            return None
        try:
            if not _stat.S_ISLNK(os.lstat(path).st_mode):
                return None
            return os.readlink(path)
        except OSError:
            return None

    def entry_gfid(self, pgfid: str, bname: str) -> str | None:
        parent = self._go(pgfid)
        if parent is None or not bname or "/" in bname or bname in (".", ".."):
            return None
        path = os.path.join(parent, bname)
        try:
            raw = os.getxattr(path, "glusterfs.gfid.string", follow_symlinks=False)
        except OSError:
            return None
        text = raw.rstrip(b"\0").decode("ascii", "replace")
        return text if _GFID_RE.match(text) else None

    def dir_entry(self, gfid: str) -> tuple[str, str] | None:
        if self._brick is not None:
            return self._brick.dir_entry(gfid)
        path = self._go(gfid)
        if path is None or gfid == ROOT_GFID:
            return None
        try:
            if not _stat.S_ISDIR(os.lstat(path).st_mode):
                return None
            raw = os.getxattr(path, "glusterfs.ancestry.path", follow_symlinks=False)
        except OSError:
            return None
        parent, sep, bname = os.fsdecode(raw.rstrip(b"\0")).rpartition("/")
        if not sep or not bname or (parent and not parent.startswith("/")):
            return None
        if not parent:
            pgfid = ROOT_GFID
        else:
            try:
                text = os.getxattr(self.mount + parent, "glusterfs.gfid.string",
                                   follow_symlinks=False).rstrip(b"\0").decode("ascii", "replace")
            except OSError:
                return None
            if not _GFID_RE.match(text):
                return None
            pgfid = text
        # renamed between the two lookups: the name no longer holds it
        if self.entry_gfid(pgfid, bname) != gfid:
            return None
        return pgfid, bname

    def data_path(self, gfid: str) -> str | None:
        path = self._go(gfid)
        if path is None:
            return None
        try:
            os.lstat(path)
        except OSError:
            return None
        return path

    def prefetch(self, gfids: Iterable[str],
                 names: Iterable[tuple[str, str]] = ()) -> SnapshotView:
        return prefetch_view(self, gfids, names)

    def __repr__(self) -> str:
        return f"MountView({self.mount!r})"
