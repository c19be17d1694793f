"""The target namespace over a GlusterFS aux-gfid mount: a real secondary volume.

Mount the secondary as gsyncd's secondary side does, so that the blob's owner is
not used for the permission check and a ``features.read-only`` volume still
takes writes, and with the FUSE caches off, so that no answer comes from a
lookup an op just made stale (a renamed name or removed gfid otherwise still
resolves for about 1.5 s)::

    glusterfs --aux-gfid-mount --acl --client-pid=-1 --entry-timeout=0 \\
        --attribute-timeout=0 --negative-timeout=0 \\
        --volfile-server=HOST --volfile-id=VOLUME DIR

Objects are ``DIR/.gfid/<gfid>``, names ``DIR/.gfid/<pgfid>/<name>``; the gfid
of a name is the virtual xattr ``glusterfs.gfid.string``, and entries are made
with a chosen gfid by writing a ``glusterfs.gfid.newfile`` blob (spec 4.4) on
the parent.

>>> newfile_blob(0, 0, "5b1c2d3e-0000-4000-8000-00000000000a", 0o40755, "d")[:8]
b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00'
>>> is_gfid_mount("/nonexistent")
False
"""

from __future__ import annotations

import errno as E
import os
import stat as S
import struct

from ..records import ROOT_GFID, Stat
from ..views.mount import MountView
from .namespace import Absent

__all__ = ["GfidMount", "newfile_blob", "is_gfid_mount", "GFID_XATTR", "NEWFILE_XATTR"]

#: the virtual xattr holding the gfid of a name
GFID_XATTR = "glusterfs.gfid.string"
#: the virtual xattr that creates an entry with a chosen gfid
NEWFILE_XATTR = "glusterfs.gfid.newfile"
_ANCESTRY_XATTR = "glusterfs.ancestry.path"
_GONE = (E.ENOENT, E.ESTALE)


def newfile_blob(uid: int, gid: int, gfid: str, mode: int, name: str,
                 target: str | None = None) -> bytes:
    """The ``glusterfs.gfid.newfile`` value (spec 4.4: big-endian uint32s), umask 0."""
    g = gfid.encode("ascii") + b"\0"
    n = os.fsencode(name) + b"\0"
    if S.S_ISDIR(mode):
        return struct.pack(f"!II37sI{len(n)}sII", uid, gid, g, mode, n, S.S_IMODE(mode), 0)
    if S.S_ISLNK(mode):
        t = os.fsencode(target or "") + b"\0"
        return struct.pack(f"!II37sI{len(n)}s{len(t)}s", uid, gid, g, mode, n, t)
    return struct.pack(f"!II37sI{len(n)}sIII", uid, gid, g, mode, n, S.S_IMODE(mode), 0, 0)


def is_gfid_mount(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the root of an aux-gfid GlusterFS mount."""
    p = os.fspath(path)
    try:
        root = os.getxattr(p, GFID_XATTR).rstrip(b"\0").decode("ascii", "replace")
        os.lstat(os.path.join(p, ".gfid", ROOT_GFID))
    except OSError:
        return False
    return root == ROOT_GFID


class GfidMount:
    """:class:`~streamsync.secondary.namespace.Namespace` over an aux-gfid mount."""

    def __init__(self, mount: str | os.PathLike) -> None:
        self.mount = os.path.abspath(os.fspath(mount))
        self._gfid_dir = os.path.join(self.mount, ".gfid")
        #: the read-only side of the same mount (lstat, names, directory locations)
        self.view = MountView(self.mount)

    # ------------------------------------------------------------- paths
    def go(self, gfid: str) -> str:
        """``MOUNT/.gfid/<gfid>``: the object, and where its data is written."""
        return os.path.join(self._gfid_dir, gfid)

    def _entry(self, pgfid: str, name: str) -> str:
        return os.path.join(self._gfid_dir, pgfid, name)

    # ------------------------------------------------------------- lookups
    def kind(self, gfid: str) -> int | None:
        path = self.go(gfid)
        try:
            kind = S.S_IFMT(os.lstat(path).st_mode)
            if kind == S.S_IFDIR and gfid != ROOT_GFID:
                # a removed directory's .gfid/ path still stats (and even answers
                # its gfid xattr) for about a second from the client's inode table;
                # its ancestry path is asked of the brick
                os.getxattr(path, _ANCESTRY_XATTR, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in _GONE:
                return None
            raise
        return kind

    def name_gfid(self, pgfid: str, name: str) -> str | None:
        try:
            raw = os.getxattr(self._entry(pgfid, name), GFID_XATTR, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == E.ENODATA:
                return ""
            if exc.errno not in _GONE:
                raise
            if self.kind(pgfid) is None:
                raise Absent(pgfid) from None
            return None
        return raw.rstrip(b"\0").decode("ascii", "replace")

    def dir_location(self, gfid: str) -> tuple[str, str] | None:
        # the read-only view answers it (ancestry xattr, then the name re-checked)
        return self.view.dir_entry(gfid)

    # ------------------------------------------------------------- ops
    def create(self, pgfid: str, name: str, gfid: str, mode: int, uid: int, gid: int,
               target: str | None = None) -> None:
        blob = newfile_blob(uid, gid, gfid, mode, name, target)
        os.setxattr(self.go(pgfid), NEWFILE_XATTR, blob, follow_symlinks=False)
        if mode & 0o7000 and not S.S_ISLNK(mode):
            # mkdir(2) ignores set-id bits in its mode (so does the brick's): the op
            # asked for them, as the replica backend gives them
            os.chmod(self.go(gfid), S.S_IMODE(mode))

    def link(self, gfid: str, pgfid: str, name: str) -> None:
        os.link(self.go(gfid), self._entry(pgfid, name), follow_symlinks=False)

    def rename(self, pgfid: str, name: str, pgfid1: str, name1: str) -> None:
        os.rename(self._entry(pgfid, name), self._entry(pgfid1, name1))

    def unlink(self, pgfid: str, name: str) -> None:
        os.unlink(self._entry(pgfid, name))

    def rmdir(self, pgfid: str, name: str, gfid: str) -> None:
        try:
            os.rmdir(self._entry(pgfid, name))
        except OSError as exc:
            if exc.errno != E.ENOTEMPTY:
                raise
            self._purge(gfid)
            os.rmdir(self._entry(pgfid, name))

    def _purge(self, gfid: str) -> None:
        """Empty the directory ``gfid``, re-checking each child's gfid before it goes."""
        # a .gfid/ path cannot be listed (EOPNOTSUPP): list the directory by its
        # path from the volume root, then act on each child through .gfid/ again
        raw = os.getxattr(self.go(gfid), _ANCESTRY_XATTR, follow_symlinks=False)
        names = os.listdir(self.mount + os.fsdecode(raw.rstrip(b"\0")))
        for name in names:
            child = self.name_gfid(gfid, name)
            if not child:
                continue
            if self.kind(child) == S.S_IFDIR:
                self.rmdir(gfid, name, child)
            else:
                self.unlink(gfid, name)

    def set_attrs(self, gfid: str, stat: Stat) -> list[tuple[int, str]]:
        path = self.go(gfid)
        try:
            os.lchown(path, stat.uid, stat.gid)
        except OSError as exc:
            if exc.errno in _GONE:
                raise Absent(gfid) from None
            return [(exc.errno or E.EIO, "chown")]
        if self.kind(gfid) == S.S_IFLNK:
            return []
        out = []
        for what, call in (("chmod", lambda: os.chmod(path, S.S_IMODE(stat.mode))),
                           ("utime", lambda: os.utime(path, (stat.atime, stat.mtime)))):
            try:
                call()
            except OSError as exc:
                out.append((exc.errno or E.EIO, what))
        return out

    def __repr__(self) -> str:
        return f"GfidMount({self.mount!r})"
