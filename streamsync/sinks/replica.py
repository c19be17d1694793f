"""A local replica in GlusterFS brick layout: entry ops and meta ops, confined.

The replica is a plain directory tree a person can browse, plus the brick's gfid
index under ``.glusterfs``:

* ``.glusterfs/<g[0:2]>/<g[2:4]>/<gfid>`` is a hard link of every file, symlink
  and special file;
* for a directory it is a symlink ``../../<p[0:2]>/<p[2:4]>/<pgfid>/<name>``
  (the root's handle points to ``../../..``);
* every object carries its gfid in the ``trusted.gfid`` xattr (16 raw bytes,
  as on a brick; ``user.streamsync.gfid`` when not running as root).

So the same brick view class that reads a GlusterFS brick reads a replica, and
a replica can be the source of a next hop.

Confinement: every operation goes through directory file descriptors opened
with ``O_DIRECTORY | O_NOFOLLOW`` one component at a time, starting from the
replica root; names from a changelog are validated (no ``/``, NUL, ``.``,
``..``, empty, nor ``.glusterfs`` at the root) and never followed. A name that
fails validation becomes a recorded :class:`~streamsync.ops.EntryFailure`
(``EINVAL``/``EPERM``); a symlink planted where a directory is expected makes
the op fail (``ELOOP``/``ENOTDIR``) instead of being followed.

The sink is a storage backend: it implements the target-namespace protocol
(:mod:`streamsync.secondary.namespace`: ``kind``, ``name_gfid``,
``dir_location``, ``create``, ``link``, ``rename``, ``unlink``, ``rmdir``,
``settle``) over the handles, and what an entry op does is decided by the
secondary's rules, written once for every target
(:func:`streamsync.secondary.rules.apply_entry`, gsyncd's ``resource.py``, spec
4.3-4.5). Storage keeps its own crash consistency: a create cut short (name
made, gfid or handle not yet) is completed on replay, one that fails is undone,
and a directory rename writes the handle first. So every op is idempotent and
replaying a batch after a crash converges.

>>> import tempfile
>>> from streamsync.ops import EntryOp
>>> from streamsync.records import ROOT_GFID
>>> root = tempfile.mkdtemp()
>>> with ReplicaSink(root) as sink:
...     sink.apply_entries([EntryOp("MKDIR", "5b1c2d3e-0000-4000-8000-00000000000a",
...                                 ROOT_GFID, "d", mode=0o40755, uid=0, gid=0)])
[]
>>> os.path.isdir(os.path.join(root, "d"))
True
"""

from __future__ import annotations

import errno as E
import logging
import os
import stat as S
import time
import uuid
from typing import Callable, Iterable, Iterator, Sequence

from ..errors import SourceError
from ..ops import EntryFailure, EntryOp, MetaFailure, MetaOp
from ..records import ROOT_GFID, Stat
from .order import EntryOrder, create_run_end
from ..secondary.namespace import Absent
from ..secondary.rules import (MISSING, RESERVED_AT_ROOT, apply_entry, apply_meta, valid_gfid,
                               valid_name)

__all__ = ["ReplicaSink", "valid_name", "valid_gfid", "handle_relpath", "GLUSTERFS_DIR",
           "MISSING"]

log = logging.getLogger(__name__)

GLUSTERFS_DIR = ".glusterfs"
_ROOT_LINK = "../../.."
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_DEPTH = 4096
#: shortest CREATE run taken as a batch (checked together, created in a row)
_MIN_PARALLEL = 32
#: calls of a batch timed on the calling thread before deciding on the pool
_PROBE = 32
#: seconds per call above which a batch goes to the pool: a create (with its small
#: file's bytes) takes 30-40 µs on tmpfs, 80-900 µs on this VM's busy ext4
_SLOW_CALL = 100e-6


def _ensure_dir(dfd: int, name: str) -> bool:
    """mkdir ``name`` in ``dfd`` if missing; True when it is a real directory."""
    try:
        os.mkdir(name, 0o700, dir_fd=dfd)
        return True  # made here, just now: a real directory
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        return S.S_ISDIR(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode)
    except OSError:
        return False


class _Fail(OSError):
    """Internal: an operation failed with this errno (an ``OSError``, so the
    secondary's rules see it as the system's answer)."""

    def __init__(self, err: int) -> None:
        super().__init__(err, os.strerror(err))
        self.err = err


def _inherited(pfd: int, mode: int, gid: int) -> tuple[int, int]:
    """``(mode, gid)`` of a new entry in the directory ``pfd`` as a brick gives them:
    in a set-group-id directory the entry takes the directory's group, and a new
    directory its set-group-id bit too (GlusterFS's posix xlator, like Linux;
    the journal's gid is the caller's)."""
    st = os.fstat(pfd)
    return _inherit(st.st_mode, st.st_gid, mode, gid)


def _inherit(pmode: int, pgid: int, mode: int, gid: int) -> tuple[int, int]:
    """:func:`_inherited` from the directory's mode and group already known."""
    if not pmode & S.S_ISGID:
        return mode, gid
    if S.S_ISDIR(mode):
        mode |= S.S_ISGID
    return mode, pgid


def handle_relpath(gfid: str) -> str:
    """The handle of ``gfid`` relative to a brick root.

    >>> handle_relpath("5b1c2d3e-0000-4000-8000-00000000000a")
    '.glusterfs/5b/1c/5b1c2d3e-0000-4000-8000-00000000000a'
    """
    return f"{GLUSTERFS_DIR}/{gfid[0:2]}/{gfid[2:4]}/{gfid}"


def _dir_link(pgfid: str, name: str) -> str:
    if pgfid == ROOT_GFID and name == "":
        return _ROOT_LINK
    return f"../../{pgfid[0:2]}/{pgfid[2:4]}/{pgfid}/{name}"


def _parse_dir_link(target: str) -> tuple[str, str] | None:
    """``../../xx/yy/<pgfid>/<name>`` -> ``(pgfid, name)``; the root link -> ``("", "")``."""
    if target == _ROOT_LINK:
        return ("", "")
    parts = target.split("/")
    if len(parts) != 6 or parts[0] != ".." or parts[1] != "..":
        return None
    pgfid, name = parts[4], parts[5]
    if not valid_gfid(pgfid) or parts[2] != pgfid[0:2] or parts[3] != pgfid[2:4]:
        return None
    if not valid_name(name):
        return None
    return pgfid, name


def _proc(fd: int, name: str | None = None) -> bytes:
    p = b"/proc/self/fd/%d" % fd
    if name is not None:
        p += b"/" + os.fsencode(name)
    return p


def _gfid_text(raw: bytes) -> str:
    if len(raw) == 16:
        return str(uuid.UUID(bytes=raw))
    text = raw.rstrip(b"\0").decode("ascii", "replace").strip().lower()
    return text


class ReplicaSink:
    """Entry and meta ops applied to a local directory in brick layout.

    ``root`` is created if missing (unless ``root_fd``, a descriptor of it
    opened by the caller, is given: then the sink never resolves ``root`` by
    name and owns the descriptor). The sink keeps directory descriptors open
    during one call only (they are dropped at the start of every
    ``apply_*`` call), so a tree changed behind its back between calls is
    re-resolved from the root.

    Lookups (:meth:`lstat`, :meth:`entry_gfid`, :meth:`dir_entry`,
    :meth:`data_path`) answer like a source view over the replica; conflict
    resolution and the data engines use them.
    """

    def __init__(self, root: str | os.PathLike[str], *, gfid_xattr: str | None = None,
                 threads: int = 2, root_fd: int | None = None) -> None:
        self.root = os.path.abspath(os.fspath(root))
        if root_fd is not None:
            # already opened without following client-controlled names
            # (serve --root); the sink owns it from now on
            self._root_fd = root_fd
        else:
            os.makedirs(self.root, exist_ok=True)
            self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._closed = False
        #: most threads for a run of independent CREATEs, used only while the
        #: creates wait for the filesystem (:meth:`_in_slices`); 1: none
        self.threads = max(1, int(threads))
        self._executor = None
        if gfid_xattr is None:
            gfid_xattr = "trusted.gfid" if os.geteuid() == 0 else "user.streamsync.gfid"
        self.gfid_xattr = gfid_xattr
        #: owners are replicated only by a privileged process
        self.chown = os.geteuid() == 0
        self._dcache: dict[str, int] = {}
        self._hcache: dict[str, int] = {}
        #: regular files a LINK or RENAME made from the source's stat (source name
        #: gone): new, empty inodes whose bytes are owed (see :meth:`take_made`)
        self._made: dict[str, None] = {}
        #: called as ``fill(gfid, fd)`` with each regular file just created, before
        #: its gfid is set, to write its data (the dispatcher's way to land small
        #: files in the same pass as their CREATE)
        self.fill: Callable[[str, int], object] | None = None
        self._yy_ok: set[str] = set()
        mask = os.umask(0o022)
        os.umask(mask)
        self._umask = mask
        self._gfs_fd = -1
        try:
            self._gfs_fd = self._mkdir_open(self._root_fd, GLUSTERFS_DIR, 0o700)
            self._init_root()
        except BaseException:  # (a read-only replica...): nothing stays open on it
            self.close()
            raise

    # ------------------------------------------------------------------ setup
    def _mkdir_open(self, dfd: int, name: str, mode: int) -> int:
        try:
            os.mkdir(name, mode, dir_fd=dfd)
        except FileExistsError:
            pass
        return os.open(name, _DIR_FLAGS, dir_fd=dfd)

    def _init_root(self) -> None:
        try:
            cur = os.getxattr(self._root_fd, self.gfid_xattr)
        except OSError:
            cur = None
        if cur is None:
            try:
                os.setxattr(self._root_fd, self.gfid_xattr, uuid.UUID(ROOT_GFID).bytes)
            except OSError as exc:  # pragma: no cover - filesystems without xattrs
                log.warning("replica %s: cannot set %s on the root: %s", self.root,
                            self.gfid_xattr, exc)
        try:
            xfd, rel = self._hloc(ROOT_GFID, create=True)
        except _Fail as f:
            raise OSError(f.err, f"{self.root}/{GLUSTERFS_DIR}: the gfid index is not a "
                                 f"directory tree") from None
        try:
            os.readlink(rel, dir_fd=xfd)
        except FileNotFoundError:
            try:
                os.symlink(_ROOT_LINK, rel, dir_fd=xfd)
            except FileExistsError:  # another worker's sink made it meanwhile
                pass

    def close(self) -> None:
        """Release every descriptor."""
        if self._closed:
            return
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._drop_caches()
        for fd in self._hcache.values():
            os.close(fd)
        self._hcache.clear()
        if self._gfs_fd >= 0:
            os.close(self._gfs_fd)
        os.close(self._root_fd)
        self._closed = True

    def __enter__(self) -> "ReplicaSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    def _drop_caches(self) -> None:
        for fd in self._dcache.values():
            os.close(fd)
        self._dcache.clear()
        # handle dirs (.glusterfs/xx/yy) are re-opened too: they could have been
        # swapped for symlinks between calls
        for fd in self._hcache.values():
            os.close(fd)
        self._hcache.clear()
        self._yy_ok.clear()

    # ------------------------------------------------------------ gfid index
    def _hloc(self, gfid: str, *, create: bool = False) -> tuple[int, str]:
        """``(fd of .glusterfs/<g[0:2]>, "<g[2:4]>/<gfid>")`` for dir-fd calls.

        The two index levels are checked once per call to be real directories
        (never symlinks); raises FileNotFoundError/NotADirectoryError."""
        xx, yy = gfid[0:2], gfid[2:4]
        xfd = self._hcache.get(xx)
        if xfd is None:
            if create:
                xfd = self._mkdir_open(self._gfs_fd, xx, 0o700)
            else:
                xfd = os.open(xx, _DIR_FLAGS, dir_fd=self._gfs_fd)
            self._hcache[xx] = xfd
        key = gfid[0:4]
        if key not in self._yy_ok:
            try:
                st = os.stat(yy, dir_fd=xfd, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(yy, 0o700, dir_fd=xfd)
                except FileExistsError:
                    pass
                st = os.stat(yy, dir_fd=xfd, follow_symlinks=False)
            if not S.S_ISDIR(st.st_mode):
                # swapped for a symlink or a file: an error, never "absent"
                raise _Fail(E.ENOTDIR)
            self._yy_ok.add(key)
        return xfd, f"{yy}/{gfid}"

    def _handle_lstat(self, gfid: str) -> os.stat_result | None:
        """The handle's lstat, ``None`` when it does not exist; a handle directory
        that is not a real directory raises :class:`_Fail` (``ENOTDIR``/``ELOOP``)."""
        try:
            xfd, rel = self._hloc(gfid)
            return os.stat(rel, dir_fd=xfd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _Fail(exc.errno or E.EIO) from None

    def _is_dir_handle(self, st: os.stat_result) -> bool:
        # a directory's handle is a symlink of its own (one link); a symlink
        # inode's handle is a hard link of the visible symlink (two or more)
        return S.S_ISLNK(st.st_mode) and st.st_nlink == 1

    def _present(self, gfid: str) -> bool:
        return gfid == ROOT_GFID or self._handle_lstat(gfid) is not None

    def _ancestors(self, gfid: str) -> Iterator[str]:
        """``gfid`` and the directories above it on the replica, by their handles
        (stops at the root, a missing handle, or a loop)."""
        seen: set[str] = set()
        while gfid != ROOT_GFID and gfid not in seen and len(seen) < 4096:
            seen.add(gfid)
            yield gfid
            loc = self._read_dir_handle(gfid)
            if loc is None:
                return
            gfid = loc[0]

    def _read_dir_handle(self, gfid: str) -> tuple[str, str] | None:
        try:
            xfd, rel = self._hloc(gfid)
            target = os.readlink(rel, dir_fd=xfd)
        except (FileNotFoundError, NotADirectoryError, OSError):
            return None
        loc = _parse_dir_link(target)
        if loc is None or loc == ("", ""):
            return None
        return loc

    def _write_dir_handle(self, gfid: str, pgfid: str, name: str) -> None:
        xfd, rel = self._hloc(gfid, create=True)
        target = _dir_link(pgfid, name)
        try:
            if os.readlink(rel, dir_fd=xfd) == target:
                return
        except OSError:
            pass
        tmp = f"{gfid[2:4]}/.{gfid}.tmp"
        try:
            os.unlink(tmp, dir_fd=xfd)
        except FileNotFoundError:
            pass
        os.symlink(target, tmp, dir_fd=xfd)
        os.rename(tmp, rel, src_dir_fd=xfd, dst_dir_fd=xfd)

    def _remove_handle(self, gfid: str) -> None:
        try:
            xfd, rel = self._hloc(gfid)
            os.unlink(rel, dir_fd=xfd)
        except (FileNotFoundError, NotADirectoryError):
            pass

    @staticmethod
    def _undo_create(pfd: int, name: str, is_dir: bool) -> None:
        """Remove a name this op just created and could not finish (its handle
        could not be made: ENOSPC, EPERM, ...): an entry op applies whole or not at
        all, so the ledger row that records its failure is the whole truth."""
        try:
            if is_dir:
                os.rmdir(name, dir_fd=pfd)
            else:
                os.unlink(name, dir_fd=pfd)
        except OSError:
            pass

    def _link_handle(self, pfd: int, name: str, gfid: str) -> None:
        """Make the handle of ``gfid`` a hard link of ``name`` (if missing)."""
        xfd, rel = self._hloc(gfid, create=True)
        try:
            os.link(name, rel, src_dir_fd=pfd, dst_dir_fd=xfd, follow_symlinks=False)
        except FileExistsError:
            pass

    def _drop_handle_if_orphan(self, gfid: str | None) -> None:
        """Remove the handle of a non-directory whose last visible name was just
        removed (only the handle link is left)."""
        if not gfid or gfid == ROOT_GFID:
            return
        st = self._handle_lstat(gfid)
        if st is not None and st.st_nlink <= 1:
            self._remove_handle(gfid)

    # --------------------------------------------------------- name lookups
    def _name_gfid(self, pfd: int, name: str) -> str | None:
        """gfid held by ``name`` in directory ``pfd``; ``None`` when the name is
        missing, ``""`` when it exists without a gfid."""
        try:
            raw = os.getxattr(_proc(pfd, name), self.gfid_xattr, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (E.ENOENT, E.ENOTDIR):
                return None
            if exc.errno in (E.ENODATA, E.EOPNOTSUPP, E.EPERM):
                return self._gfid_by_inode(pfd, name)
            raise
        return _gfid_text(raw)

    def _gfid_by_inode(self, pfd: int, name: str) -> str | None:
        """Fallback for objects that cannot carry a user xattr (non-root): find
        the handle with the same inode by scanning the index."""
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if S.S_ISDIR(st.st_mode) or st.st_nlink < 2:
            return ""
        for xx in os.scandir(self._gfs_fd):
            if len(xx.name) != 2 or not xx.is_dir(follow_symlinks=False):
                continue
            for yy in os.scandir(os.path.join(self.root, GLUSTERFS_DIR, xx.name)):
                if not yy.is_dir(follow_symlinks=False):
                    continue
                for h in os.scandir(yy.path):
                    try:
                        hst = h.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if hst.st_ino == st.st_ino and hst.st_dev == st.st_dev:
                        return h.name
        return ""

    def _set_gfid(self, fd_or_path: int | bytes, gfid: str) -> None:
        try:
            if isinstance(fd_or_path, int):
                os.setxattr(fd_or_path, self.gfid_xattr, uuid.UUID(gfid).bytes)
            else:
                os.setxattr(fd_or_path, self.gfid_xattr, uuid.UUID(gfid).bytes,
                            follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (E.EPERM, E.EOPNOTSUPP) or self.gfid_xattr.startswith("trusted."):
                raise

    def _dir_fd(self, gfid: str) -> int:
        """fd of directory ``gfid`` in the replica, resolved from the root through
        the handles one component at a time (raises :class:`_Fail`)."""
        if gfid == ROOT_GFID:
            return self._root_fd
        fd = self._dcache.get(gfid)
        if fd is not None:
            return fd
        if not valid_gfid(gfid):
            raise _Fail(E.EINVAL)
        chain: list[tuple[str, str]] = []
        cur = gfid
        seen = set()
        while cur != ROOT_GFID and cur not in self._dcache:
            if cur in seen or len(chain) > _MAX_DEPTH:
                raise _Fail(E.ELOOP)
            seen.add(cur)
            loc = self._read_dir_handle(cur)
            if loc is None:
                raise _Fail(E.ENOENT)
            chain.append((cur, loc[1]))
            cur = loc[0]
        pfd = self._root_fd if cur == ROOT_GFID else self._dcache[cur]
        for g, name in reversed(chain):
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
            except OSError as exc:
                raise _Fail(E.ENOENT if exc.errno == E.ENOENT else exc.errno) from None
            try:
                held = _gfid_text(os.getxattr(fd, self.gfid_xattr))
            except OSError:
                held = ""
            if held != g:
                os.close(fd)
                raise _Fail(E.ENOENT)  # stale handle: not where the index says
            self._dcache[g] = fd
            pfd = fd
        return pfd

    def _try_dir(self, gfid: str) -> int | None:
        try:
            return self._dir_fd(gfid)
        except _Fail:
            return None

    def _dir_if_any(self, gfid: str) -> int | None:
        """fd of directory ``gfid``; ``None`` only when it does not exist
        (``ENOENT``, a no-op for UNLINK/RMDIR as in gsyncd). Anything else (a
        component swapped for a symlink, an index that is not a directory)
        raises :class:`_Fail`: an op that cannot be applied is a failure."""
        try:
            return self._dir_fd(gfid)
        except _Fail as f:
            if f.err == E.ENOENT:
                return None
            raise

    # ------------------------------------------------ public lookups (view-like)
    def _safe_handle_lstat(self, gfid: str) -> os.stat_result | None:
        try:
            return self._handle_lstat(gfid) if valid_gfid(gfid) else None
        except _Fail:
            return None  # an index directory that is not a directory: not usable

    def lstat(self, gfid: str) -> Stat | None:
        """Current stat of ``gfid`` in the replica, ``None`` when absent."""
        if not valid_gfid(gfid):
            return None
        if gfid == ROOT_GFID:
            return Stat.from_os(os.fstat(self._root_fd))
        st = self._safe_handle_lstat(gfid)
        if st is None:
            return None
        if self._is_dir_handle(st):
            fd = self._try_dir(gfid)
            return None if fd is None else Stat.from_os(os.fstat(fd))
        return Stat.from_os(st)

    def entry_gfid(self, pgfid: str, bname: str) -> str | None:
        """gfid the name ``bname`` in directory ``pgfid`` holds in the replica."""
        if not valid_name(bname):
            return None
        pfd = self._try_dir(pgfid)
        if pfd is None:
            return None
        return self._name_gfid(pfd, bname) or None

    def dir_entry(self, gfid: str) -> tuple[str, str] | None:
        """``(pgfid, bname)`` of directory ``gfid`` per the replica's handle."""
        if not valid_gfid(gfid) or gfid == ROOT_GFID:
            return None
        try:
            return self._read_dir_handle(gfid)
        except _Fail:
            return None

    def data_path(self, gfid: str) -> str | None:
        """Path of the handle of a non-directory ``gfid`` (None when absent)."""
        st = self._safe_handle_lstat(gfid)
        if st is None or self._is_dir_handle(st):
            return None
        return os.path.join(self.root, handle_relpath(gfid))

    def take_made(self) -> list[str]:
        """The gfids of regular files made from a stat by LINK/RENAME since the last
        call (their source name was gone, so the file is new and empty: its data
        must be sent even without a D record after it).

        >>> import tempfile
        >>> ReplicaSink(tempfile.mkdtemp()).take_made()
        []
        """
        made, self._made = list(self._made), {}
        return made

    def open_data(self, gfid: str) -> int | None:
        """A write descriptor of the regular-file handle of ``gfid``, opened
        through the index with ``O_NOFOLLOW`` (never through a name a client
        made); ``None`` when the replica has no regular file for it. The inode
        is the one the namespace names link to, so writing it updates them all.
        """
        if not valid_gfid(gfid):
            return None
        try:
            xfd, rel = self._hloc(gfid)
            fd = os.open(rel, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=xfd)
        except (OSError, _Fail):
            return None
        if not S.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return fd

    def is_data_target(self, gfid: str) -> bool:
        """True when the replica has a regular-file handle for ``gfid`` (what a
        data engine may write into)."""
        st = self._safe_handle_lstat(gfid)
        return st is not None and S.S_ISREG(st.st_mode)

    def forget_orphan(self, gfid: str) -> bool:
        """Drop the handle of ``gfid`` when no name of the replica uses it any more
        (a name deleted behind the replica's back, by hand): a directory handle
        whose name is gone or holds something else, or a symlink's handle left
        alone (it then reads like a directory handle). A regular file's lone
        handle is kept: a LINK gives it a name again, bytes and all. Returns
        whether a handle was dropped (``streamsync verify --repair`` before it
        makes the object again)."""
        st = self._safe_handle_lstat(gfid)
        if st is None or gfid == ROOT_GFID or not self._is_dir_handle(st):
            return False
        loc = self._read_dir_handle(gfid)
        if loc is not None:
            try:
                pfd = self._dir_if_any(loc[0])
                if pfd is not None and self._name_gfid(pfd, loc[1]) == gfid:
                    return False  # the directory is where its handle says
            except (_Fail, OSError):
                pass
        xfd, rel = self._hloc(gfid)
        os.unlink(rel, dir_fd=xfd)
        return True

    def has_handle(self, gfid: str) -> bool:
        """True when the replica has a non-directory handle for ``gfid``."""
        st = self._safe_handle_lstat(gfid)
        return st is not None and not self._is_dir_handle(st)

    # ------------------------------------------------------------ entry ops
    def apply_entries(self, ops: Iterable[EntryOp], *,
                      waiting: Iterable[EntryFailure] = ()) -> list[EntryFailure]:
        """Apply entry ops in order; return the failures (gsyncd's ``entry_ops``).

        A run of consecutive CREATEs with distinct names and gfids is
        order-independent (a CREATE only adds a file name), so long runs are
        checked together and created in a row (on a few threads while the
        creates wait for the filesystem); anything unusual in such a run (an
        existing name or gfid, a missing parent, ...) falls back to the one-by-one
        path, in order, so the result is the same as applying the ops serially.
        """
        self._drop_caches()
        ops = list(ops)
        failures: list[EntryFailure] = []
        order = EntryOrder(waiting)  # (open ledger rows: what they hold, held here too)
        i, n = 0, len(ops)
        while i < n:
            if ops[i].op == "CREATE":
                j = create_run_end(ops, i)
                if order:  # the run ends before the first op that must wait
                    j = next((k for k in range(i, j) if order.held(ops[k])), j)
                if j - i >= _MIN_PARALLEL:
                    for op in self._create_run(ops[i:j]):
                        self._apply_one(op, order, failures)
                    i = j
                    continue
            self._apply_one(ops[i], order, failures)
            i += 1
        return failures

    def _apply_one(self, op: EntryOp, order: EntryOrder, failures: list[EntryFailure]) -> None:
        """Apply ``op`` by the secondary's rules (:mod:`streamsync.secondary.rules`,
        over this sink as the namespace) unless it waits behind a failed op
        (:mod:`.order`)."""
        f = order.held(op, self._ancestors)
        if f is None:
            made: list[str] = []
            f = apply_entry(self, op, made)
            self._made.update(dict.fromkeys(made))
        if f is not None:
            order.failed(f)
            failures.append(f)

    def _create_run(self, run: Sequence[EntryOp]) -> list[EntryOp]:
        """Create the plain cases of a CREATE run (:meth:`_in_slices`); return the
        ops left for the serial path (in order)."""
        todo: list[tuple[int, EntryOp, int, int, str, tuple[int, int]]] = []
        parents: dict[int, tuple[int, int]] = {}  # pfd -> (mode, gid): a run changes neither
        rest: dict[int, EntryOp] = {}
        keys: dict[str, int] = {}
        for k, op in enumerate(run):
            try:
                if not (valid_gfid(op.gfid) and valid_gfid(op.pgfid) and valid_name(op.bname)) \
                        or (op.pgfid == ROOT_GFID and op.bname in RESERVED_AT_ROOT):
                    raise _Fail(E.EINVAL)  # the serial path reports it, by the rules
                pfd = self._dir_fd(op.pgfid)
                if self._present(op.gfid):
                    continue  # CREATE of an existing gfid: nothing (as serially)
                xfd = self._hcache.get(op.gfid[0:2])
                if xfd is None:
                    xfd = self._mkdir_open(self._gfs_fd, op.gfid[0:2], 0o700)
                    self._hcache[op.gfid[0:2]] = xfd
            except (_Fail, OSError):
                rest[k] = op
                continue
            if op.gfid[0:4] not in self._yy_ok:
                keys[op.gfid[0:4]] = xfd
            parent = parents.get(pfd)
            if parent is None:
                st = os.fstat(pfd)
                parent = parents[pfd] = (st.st_mode, st.st_gid)
            todo.append((k, op, pfd, xfd, f"{op.gfid[2:4]}/{op.gfid}", parent))
        key_list = list(keys.items())
        made = self._in_slices(lambda kv: _ensure_dir(kv[1], kv[0][2:4]), key_list)
        bad_keys = {kv[0] for kv, ok in zip(key_list, made) if not ok}
        self._yy_ok.update(k for k in keys if k not in bad_keys)
        work = [t for t in todo if t[1].gfid[0:4] not in bad_keys]
        for t in todo:
            if t[1].gfid[0:4] in bad_keys:
                rest[t[0]] = t[1]
        for t, ok in zip(work, self._in_slices(self._create_plain, work)):
            if not ok:
                rest[t[0]] = t[1]
        return [rest[k] for k in sorted(rest)]

    def _in_slices(self, fn, items: list) -> list:
        """``[fn(x) for x in items]``: the first items on this thread, timed; the
        rest on the pool (one contiguous slice per thread: no per-item future
        overhead) only when those took long enough to be mostly the kernel's work
        or waits (:meth:`_slow`), which threads overlap. Quick calls (tmpfs, a disk
        keeping up) stay here: on threads they only contend for the interpreter
        (tmpfs: 1.2x rsync -a's time here, 1.4-2.1x on two threads)."""
        if self.threads == 1 or len(items) < 2 * _PROBE:
            return [fn(x) for x in items]
        start = time.perf_counter()
        out = [fn(x) for x in items[:_PROBE]]
        rest = items[_PROBE:]
        if not self._slow((time.perf_counter() - start) / _PROBE):
            out.extend(fn(x) for x in rest)
            return out
        n = min(self.threads, len(rest))
        size = -(-len(rest) // n)
        slices = [rest[i:i + size] for i in range(0, len(rest), size)]
        futures = [self._pool().submit(lambda sl: [fn(x) for x in sl], sl) for sl in slices]
        for f in futures:
            out.extend(f.result())
        return out

    @staticmethod
    def _slow(seconds_per_call: float) -> bool:
        """Whether calls taking this long are mostly the kernel's work or waits,
        which threads overlap (the Python around one create is ~20-30 µs)."""
        return seconds_per_call > _SLOW_CALL

    def _create_plain(self, item: tuple[int, EntryOp, int, int, str, tuple[int, int]]) -> bool:
        """Thread body: the plain CREATE (name free, gfid new). False -> serial path."""
        _k, op, pfd, xfd, rel, parent = item
        mode = op.mode if op.mode is not None else 0o100644
        if S.S_IFMT(mode) not in (0, S.S_IFREG):
            return False
        try:
            mode, gid = _inherit(*parent, mode, op.gid or 0)
            self._create_regular(pfd, op.bname, S.S_IMODE(mode), op.uid or 0, gid, op.gfid)
        except OSError:
            return False  # the serial path adopts a half-made file
        try:
            os.link(op.bname, rel, src_dir_fd=pfd, dst_dir_fd=xfd, follow_symlinks=False)
        except FileExistsError:
            pass
        except OSError:
            self._undo_create(pfd, op.bname, False)
            return False
        return True

    def _pool(self):
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor
            self._executor = ThreadPoolExecutor(max_workers=self.threads,
                                                thread_name_prefix="ss-replica")
        return self._executor

    def _forget_dir(self, gfid: str) -> None:
        # a directory moved or removed invalidates every cached descendant
        if self._dcache:
            for fd in self._dcache.values():
                os.close(fd)
            self._dcache.clear()

    def _purge_dir(self, pfd: int, name: str, gfid: str) -> None:
        """Remove a non-empty directory recursively, re-checking its gfid, through
        descriptors only (never following a symlink)."""
        dfd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        try:
            if _gfid_text(os.getxattr(dfd, self.gfid_xattr)) != gfid:
                raise _Fail(E.EEXIST)
            self._empty_dir(dfd)
        finally:
            os.close(dfd)
        os.rmdir(name, dir_fd=pfd)

    def _empty_dir(self, dfd: int) -> None:
        for ent in list(os.scandir(dfd)):
            child = self._name_gfid(dfd, ent.name)
            if ent.is_dir(follow_symlinks=False):
                cfd = os.open(ent.name, _DIR_FLAGS, dir_fd=dfd)
                try:
                    self._empty_dir(cfd)
                finally:
                    os.close(cfd)
                os.rmdir(ent.name, dir_fd=dfd)
                if child:
                    self._remove_handle(child)
            else:
                os.unlink(ent.name, dir_fd=dfd)
                self._drop_handle_if_orphan(child)

    def _create_regular(self, pfd: int, name: str, perm: int, uid: int, gid: int,
                        gfid: str) -> None:
        """Create a new regular file (``O_EXCL``, no symlink followed) with owner, mode, gfid.

        It is created with its final mode when the umask lets it through and no
        chown (which clears set-id bits) follows. Attributes first, gfid last: a
        name carrying a gfid is complete. Raises ``OSError`` (``FileExistsError``
        when the name is taken).
        """
        owned = bool(uid or gid) and self.chown
        direct = not owned and not (perm & self._umask)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     perm if direct else 0o600, dir_fd=pfd)
        try:
            if owned:
                os.fchown(fd, uid, gid)
            if not direct:
                os.fchmod(fd, perm)
            fill = self.fill
            if fill is not None:
                fill(gfid, fd)
            self._set_gfid(fd, gfid)
        finally:
            os.close(fd)

    def _make_node(self, gfid: str, pgfid: str, pfd: int, name: str, mode: int, uid: int,
                   gid: int) -> None:
        """Create a non-directory, non-symlink inode with gfid ``gfid`` at name."""
        ftype = S.S_IFMT(mode) or S.S_IFREG
        perm = S.S_IMODE(mode)
        if ftype == S.S_IFDIR or ftype == S.S_IFLNK:
            raise _Fail(E.EINVAL)
        try:
            if ftype == S.S_IFREG:
                self._create_regular(pfd, name, perm, uid, gid, gfid)
            else:
                os.mknod(name, ftype | 0o600, 0, dir_fd=pfd)
        except FileExistsError:
            self._adopt(gfid, pgfid, pfd, name, ftype, perm, uid, gid)
            return
        except OSError:
            if ftype == S.S_IFREG:  # O_EXCL made it, or nothing: a half-made file goes
                self._undo_create(pfd, name, False)
            raise
        try:
            if ftype != S.S_IFREG:
                self._finish_special(pfd, name, gfid, perm, uid, gid)
            self._link_handle(pfd, name, gfid)
        except OSError:
            self._undo_create(pfd, name, False)
            raise

    def _finish_special(self, pfd: int, name: str, gfid: str, perm: int | None,
                        uid: int, gid: int) -> None:
        """Owner, mode (not for symlinks: ``perm`` None), then the gfid, last."""
        if (uid or gid) and self.chown:
            os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
        if perm is not None:
            # not a symlink (checked by the caller): chmod through a descriptor
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                os.chmod(_proc(fd), perm)
            finally:
                os.close(fd)
        self._set_gfid(_proc(pfd, name), gfid)

    def _adopt(self, gfid: str, pgfid: str, pfd: int, name: str, ftype: int, perm: int | None,
               uid: int, gid: int) -> None:
        """EEXIST at create: the same gfid (a replay) -> make sure the handle
        exists; an object without gfid of the right type (our own create cut short
        by a crash) -> adopt it; else ``FileExistsError`` (the rules decide)."""
        disk = self._name_gfid(pfd, name)
        if disk == gfid:
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                return
            if S.S_ISDIR(st.st_mode):
                self._write_dir_handle(gfid, pgfid, name)
            else:
                self._link_handle(pfd, name, gfid)
            return
        if disk == "":
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and S.S_IFMT(st.st_mode) == ftype and not self._present(gfid):
                self._finish_special(pfd, name, gfid,
                                     None if ftype == S.S_IFLNK else perm, uid, gid)
                if ftype == S.S_IFDIR:
                    self._write_dir_handle(gfid, pgfid, name)
                else:
                    self._link_handle(pfd, name, gfid)
                return
        raise FileExistsError(E.EEXIST, os.strerror(E.EEXIST), name)

    def _make_dir(self, gfid: str, pgfid: str, pfd: int, name: str, mode: int, uid: int,
                  gid: int) -> None:
        try:
            os.mkdir(name, 0o700, dir_fd=pfd)
        except FileExistsError:
            self._adopt(gfid, pgfid, pfd, name, S.S_IFDIR, S.S_IMODE(mode), uid, gid)
            return
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
            try:
                if (uid or gid) and self.chown:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, S.S_IMODE(mode))
                self._set_gfid(fd, gfid)
            finally:
                os.close(fd)
            self._write_dir_handle(gfid, pgfid, name)
        except OSError:
            self._undo_create(pfd, name, True)
            raise

    # SYMLINK
    def _make_symlink(self, gfid: str, pgfid: str, pfd: int, name: str, target: str | None,
                      uid: int, gid: int) -> None:
        if not target or "\0" in target:
            raise _Fail(E.EINVAL)
        try:
            os.symlink(target, name, dir_fd=pfd)
        except FileExistsError:
            self._adopt(gfid, pgfid, pfd, name, S.S_IFLNK, None, uid, gid)
            return
        try:
            self._finish_special(pfd, name, gfid, None, uid, gid)
            self._link_handle(pfd, name, gfid)
        except OSError:
            self._undo_create(pfd, name, False)
            raise

    # ------------------------------------ the target namespace (secondary.rules)
    def kind(self, gfid: str) -> int | None:
        """``S_IFMT`` of ``gfid`` from its handle; ``None`` when it has none (a
        handle directory swapped for something else raises: never "absent")."""
        if gfid == ROOT_GFID:
            return S.S_IFDIR
        st = self._handle_lstat(gfid)
        if st is None:
            return None
        return S.S_IFDIR if self._is_dir_handle(st) else S.S_IFMT(st.st_mode)

    def name_gfid(self, pgfid: str, name: str) -> str | None:
        pfd = self._dir_if_any(pgfid)
        if pfd is None:
            raise Absent(pgfid)
        return self._name_gfid(pfd, name)

    def dir_location(self, gfid: str) -> tuple[str, str] | None:
        return self._read_dir_handle(gfid)

    def create(self, pgfid: str, name: str, gfid: str, mode: int, uid: int, gid: int,
               target: str | None = None) -> None:
        pfd = self._dir_fd(pgfid)
        ftype = S.S_IFMT(mode) or S.S_IFREG
        mode, gid = _inherited(pfd, mode, gid)
        if ftype == S.S_IFDIR:
            self._make_dir(gfid, pgfid, pfd, name, mode, uid, gid)
        elif ftype == S.S_IFLNK:
            self._make_symlink(gfid, pgfid, pfd, name, target, uid, gid)
        else:
            self._make_node(gfid, pgfid, pfd, name, mode, uid, gid)

    def link(self, gfid: str, pgfid: str, name: str) -> None:
        pfd = self._dir_fd(pgfid)
        st = self._handle_lstat(gfid)
        if st is None:
            raise _Fail(E.ENOENT)
        if self._is_dir_handle(st):
            raise _Fail(E.EPERM)
        xfd, rel = self._hloc(gfid)
        os.link(rel, name, src_dir_fd=xfd, dst_dir_fd=pfd, follow_symlinks=False)

    def rename(self, pgfid: str, name: str, pgfid1: str, name1: str) -> None:
        opfd = self._dir_fd(pgfid)
        npfd = self._dir_fd(pgfid1)
        gfid = self._name_gfid(opfd, name)
        is_dir = S.S_ISDIR(os.stat(name, dir_fd=opfd, follow_symlinks=False).st_mode)
        if is_dir and gfid:  # the handle first: a crash in between is healed by a replay
            self._write_dir_handle(gfid, pgfid1, name1)
        try:
            os.rename(name, name1, src_dir_fd=opfd, dst_dir_fd=npfd)
        except OSError:
            if is_dir and gfid:
                self._write_dir_handle(gfid, pgfid, name)
            raise
        if is_dir and gfid:
            self._forget_dir(gfid)

    def unlink(self, pgfid: str, name: str) -> None:
        pfd = self._dir_fd(pgfid)
        gfid = self._name_gfid(pfd, name)
        os.unlink(name, dir_fd=pfd)
        self._drop_handle_if_orphan(gfid)

    def rmdir(self, pgfid: str, name: str, gfid: str) -> None:
        pfd = self._dir_fd(pgfid)
        try:
            os.rmdir(name, dir_fd=pfd)
        except OSError as exc:
            if exc.errno != E.ENOTEMPTY:
                raise
            self._purge_dir(pfd, name, gfid)
        self._forget_dir(gfid)
        self._remove_handle(gfid)

    def settle(self, gfid: str, pgfid: str, name: str) -> None:
        """A directory RENAME already applied (replay): when ``pgfid/name`` holds
        the directory, make its handle agree (a crash between the handle update
        and the rename leaves it stale)."""
        npfd = self._dir_if_any(pgfid)
        if npfd is None or self._name_gfid(npfd, name) != gfid:
            return
        try:
            st = os.stat(name, dir_fd=npfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if S.S_ISDIR(st.st_mode) and self._read_dir_handle(gfid) != (pgfid, name):
            self._write_dir_handle(gfid, pgfid, name)
            self._forget_dir(gfid)

    # ------------------------------------------------------------- meta ops
    def apply_meta(self, ops: Iterable[MetaOp]) -> list[MetaFailure]:
        """Owner, mode and times (gsyncd's ``meta_ops``), by the secondary's rules
        (:func:`streamsync.secondary.rules.apply_meta`) over :meth:`set_attrs`."""
        self._drop_caches()
        return [f for op in ops for f in apply_meta(self, op)]

    def set_attrs(self, gfid: str, stat: Stat) -> list[tuple[int, str]]:
        """lchown, then chmod and utime (not for symlinks), through the handle;
        ``(errno, step)`` of each that failed. :class:`Absent` when the replica
        has no object for ``gfid`` (gsyncd skips it; the source still has it, so
        the replica owes it)."""
        if gfid == ROOT_GFID:
            return self._set_attrs_at(self._root_fd, stat)
        hst = self._handle_lstat(gfid)
        if hst is None:
            raise Absent(gfid)
        if self._is_dir_handle(hst):
            return self._set_attrs_at(self._dir_fd(gfid), stat)
        xfd, rel = self._hloc(gfid)
        if S.S_ISLNK(hst.st_mode):
            if self.chown:
                os.chown(rel, stat.uid, stat.gid, dir_fd=xfd, follow_symlinks=False)
            return []
        fd = os.open(rel, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=xfd)
        try:
            return self._set_attrs_at(_proc(fd), stat)
        finally:
            os.close(fd)

    def _set_attrs_at(self, target: int | bytes, st: Stat) -> list[tuple[int, str]]:
        try:
            if self.chown:
                os.chown(target, st.uid, st.gid)
            else:
                os.stat(target)
        except FileNotFoundError:
            raise Absent() from None
        out = []
        for step, call in (("chmod", lambda: os.chmod(target, S.S_IMODE(st.mode))),
                           ("utime", lambda: os.utime(target, (st.atime, st.mtime)))):
            try:
                call()
            except OSError as exc:
                out.append((exc.errno or E.EIO, step))
        return out

    def set_times(self, items: Iterable[tuple[str, float, float]]) -> int:
        """Set ``(gfid, atime, mtime)`` on directories, symlinks and files alike
        (symlinks themselves, never their targets); returns how many were set.
        Missing gfids are skipped."""
        self._drop_caches()
        n = 0
        for gfid, atime, mtime in items:
            if not valid_gfid(gfid):
                continue
            try:
                if gfid == ROOT_GFID:
                    os.utime(self._root_fd, (atime, mtime))
                else:
                    hst = self._handle_lstat(gfid)
                    if hst is None:
                        continue
                    if self._is_dir_handle(hst):
                        fd = self._try_dir(gfid)
                        if fd is None:
                            continue
                        os.utime(fd, (atime, mtime))
                    else:
                        xfd, rel = self._hloc(gfid)
                        os.utime(rel, (atime, mtime), dir_fd=xfd, follow_symlinks=False)
                n += 1
            except (OSError, _Fail):
                continue  # best effort: times are not part of gsyncd's contract
        return n

    def __repr__(self) -> str:
        return f"ReplicaSink({self.root!r})"


def check_replica_root(path: str) -> None:
    """Raise :class:`SourceError` unless ``path`` looks like a brick/replica root."""
    if not os.path.isdir(os.path.join(path, GLUSTERFS_DIR)):
        raise SourceError(f"{path}: not a brick (no {GLUSTERFS_DIR} directory)")

