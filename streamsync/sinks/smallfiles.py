"""Files copied in-process: no rsync run for a file a local target can take directly.

An rsync run costs tens of milliseconds before it moves a byte and then a
handful of round trips per file; into a GlusterFS volume through FUSE it lands
260-310 small files/s per process. :class:`SmallFileLane` wraps a local data
engine and copies the files it can copy exactly as ``rsync -a --inplace
--existing --numeric-ids --super`` would (bytes, length, owner, mode, times)
itself: up to 1 MiB read and written from memory, larger ones descriptor to
descriptor by the kernel (``copy_file_range``, else ``sendfile``, else read and
write), which is what a local rsync's whole-file ``--inplace`` copy amounts to.
It hands everything else to the wrapped engine:

* a source that is not a regular file, or larger than ``limit`` bytes;
* a source carrying an extended attribute that is not GlusterFS's own
  (``trusted.gfid``, ``trusted.gfid2path.*``, ``trusted.glusterfs.*``,
  ``trusted.afr.*``, ``trusted.ec.*``, ``trusted.pgfid.*``) or an ACL, when
  ``sync-xattrs`` or ``sync-acls`` asks for them to travel (rsync knows how);
* a destination that is not a regular file.

As with rsync's ``--existing``, a file whose destination does not exist is not
created (the entry op owns creation): it is reported ``missed``, as is a source
that vanished, so the dispatcher retries and, in the end, ledgers it. An error
writing the destination is a partial transfer (exit 23, the message in
``stderr``), retried like rsync's.

>>> from streamsync.sinks.recording import RecordingEngine
>>> import os, tempfile
>>> src, dst = tempfile.mkdtemp(), tempfile.mkdtemp()
>>> g = "5b1c2d3e-0000-4000-8000-00000000000a"
>>> os.makedirs(os.path.join(src, ".glusterfs/5b/1c"))
>>> _ = open(os.path.join(src, ".glusterfs/5b/1c", g), "w").write("hello")
>>> _ = open(os.path.join(dst, g), "w").write("old bytes, longer")
>>> lane = SmallFileLane(RecordingEngine(), src, lambda g: os.path.join(dst, g), limit=1024)
>>> lane.transfer([g]).missed, open(os.path.join(dst, g)).read()
((), 'hello')
>>> lane.transfer(["5b1c2d3e-0000-4000-8000-00000000000b"]).missed  # no source
('5b1c2d3e-0000-4000-8000-00000000000b',)
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any, Callable, Sequence

from .engine import GLUSTER_INTERNAL_XATTRS, DataEngine, TransferResult, option_value
from .replica import handle_relpath

__all__ = ["SmallFileLane", "lane_for", "gluster_internal_xattr"]

_COPIED, _MISSED, _DELEGATE = 0, 1, 2
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_WRITE = os.O_WRONLY | os.O_CLOEXEC
#: files up to this size are read into memory (and filled at their CREATE); larger
#: ones are copied descriptor to descriptor by the kernel
_IN_MEMORY = 1 << 20
_CHUNK = 1 << 24
#: errors meaning "this way of copying in the kernel does not apply here"
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP,
                             errno.EBADF})


def gluster_internal_xattr(name: str) -> bool:
    """True for an xattr GlusterFS keeps on a brick for itself (never replicated).

    >>> gluster_internal_xattr("trusted.gfid2path.1a2b"), gluster_internal_xattr("user.tag")
    (True, False)
    """
    return name == "trusted.gfid" or name.startswith(GLUSTER_INTERNAL_XATTRS)


class SmallFileLane:
    """``engine`` with small plain files copied in-process (see the module text).

    ``dest_path(gfid)`` names where a gfid's bytes go (a replica's handle, or
    ``MOUNT/.gfid/<gfid>`` on a volume); ``limit`` is the largest file copied here;
    ``xattrs``: whether the engine would carry xattrs/ACLs (then a source with any
    beyond GlusterFS's own goes to the engine).
    """

    def __init__(self, engine: DataEngine, source_root: str,
                 dest_path: Callable[[str], str], *, limit: int, xattrs: bool = True) -> None:
        self.engine = engine
        self.name = engine.name
        self.source_root = os.fspath(source_root)
        self.dest_path = dest_path
        self.limit = limit
        self.xattrs = xattrs
        self._root = os.geteuid() == 0
        #: called with each gfid copied here, as it lands (progress during a job;
        #: thread-safe callables only: jobs run in parallel)
        self.on_copied: Callable[[str], Any] | None = None

    def is_partial(self, code: int) -> bool:
        return self.engine.is_partial(code)

    def transfer(self, gfids: Sequence[str]) -> TransferResult:
        rest: list[str] = []
        missed: list[str] = []
        errors: list[str] = []
        for g in gfids:
            try:
                how = self._copy(g)
            except OSError as exc:
                errors.append(f"copy {self.dest_path(g)}: {exc.strerror or exc}")
                missed.append(g)
                continue
            if how == _DELEGATE:
                rest.append(g)
            elif how == _MISSED:
                missed.append(g)
            elif self.on_copied is not None:
                self.on_copied(g)
        res = self.engine.transfer(rest) if rest else TransferResult(0)
        code = res.returncode or (23 if errors else 0)
        stderr = "\n".join(errors + ([res.stderr] if res.stderr else []))
        return TransferResult(code, stderr, len(gfids), missed=tuple(missed) + res.missed)

    def _copy(self, gfid: str) -> int:
        got = self._source(gfid)
        if isinstance(got, int):
            return got
        sfd, st = got
        try:
            data = _read_all(sfd, st.st_size) if st.st_size <= _IN_MEMORY else sfd
            opened = _open_regular(self.dest_path(gfid))
            if opened is None:
                return _MISSED  # --existing: creating it is the entry op's job
            if opened is _NOT_REGULAR:
                return _DELEGATE
            dfd, dst = opened
            try:
                self._write(dfd, dst, st, data)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)
        return _COPIED

    def fill(self, gfid: str, dfd: int) -> int | None:
        """Write the bytes (and owner, mode, times) of ``gfid`` into ``dfd``, a
        regular file just created for it, when this lane would copy it and it is
        small (at most 1 MiB: the entry op waits for it): how many bytes, or
        ``None`` (nothing written) when it is the engine's to send, larger, or
        gone. A replica calls this while creating the file: the data lands
        without a second open."""
        try:
            got = self._source(gfid, _IN_MEMORY)
            if isinstance(got, int):
                return None
            sfd, st = got
            try:
                data = _read_all(sfd, st.st_size)
                self._write(dfd, os.fstat(dfd), st, data)
            finally:
                os.close(sfd)
        except OSError:
            return None  # sent the usual way after the entries (rewritten whole)
        if self.on_copied is not None:
            self.on_copied(gfid)
        return len(data)

    def _source(self, gfid: str, limit: int | None = None) -> Any:
        """``(open descriptor, stat)`` of a source file this lane copies (the
        caller closes it), else ``_MISSED`` (gone) or ``_DELEGATE`` (the engine's,
        or larger than ``limit``, default the lane's)."""
        try:
            sfd = os.open(os.path.join(self.source_root, handle_relpath(gfid)), _READ)
        except (FileNotFoundError, NotADirectoryError):
            return _MISSED  # vanished on the source: not sent, as rsync --ignore-missing-args
        except OSError:
            return _DELEGATE  # a symlink (ELOOP) or anything odd: rsync's call
        cap = self.limit if limit is None else min(limit, self.limit)
        try:
            st = os.fstat(sfd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > cap or (
                    self.xattrs and not all(map(gluster_internal_xattr, os.listxattr(sfd)))):
                os.close(sfd)
                return _DELEGATE
        except BaseException:
            os.close(sfd)
            raise
        return sfd, st

    def _write(self, dfd: int, dst: os.stat_result, st: os.stat_result,
               data: bytes | int) -> None:
        """rsync -a's result on an open destination: bytes (``data``, or all that
        can be read from the descriptor ``data``), length, owner, mode, times
        (every call a round trip on a volume: only those that change something)."""
        if isinstance(data, int):
            size = _copy_all(data, dfd)
        else:
            _write_all(dfd, data)
            size = len(data)
        if dst.st_size > size:
            os.ftruncate(dfd, size)
        chowned = self._root and (dst.st_uid, dst.st_gid) != (st.st_uid, st.st_gid)
        if chowned:
            os.fchown(dfd, st.st_uid, st.st_gid)  # before the mode: chown clears set-id bits
        if chowned or stat.S_IMODE(dst.st_mode) != stat.S_IMODE(st.st_mode) or \
                st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            os.fchmod(dfd, stat.S_IMODE(st.st_mode))  # (a write clears set-id bits)
        os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))


_NOT_REGULAR = object()


def _open_regular(path: str) -> Any:
    """``(write descriptor, stat before)`` of the regular file at ``path``; ``None``
    when there is no such name, ``_NOT_REGULAR`` when it is something else (a
    symlink, a fifo, a device: never opened for writing, so no device sees an open)."""
    try:
        pfd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        st = os.fstat(pfd)
        if not stat.S_ISREG(st.st_mode):
            return _NOT_REGULAR
        return os.open(f"/proc/self/fd/{pfd}", _WRITE), st
    finally:
        os.close(pfd)


def _read_all(fd: int, size: int) -> bytes:
    """The whole file (``size``: what fstat said; it may have grown since)."""
    want = max(size, 65536) + 1
    chunk = os.read(fd, want)
    if len(chunk) == size:  # all fstat saw, and less than asked for: the end (one call)
        return chunk
    chunks = [chunk]
    while True:
        chunk = os.read(fd, want)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_all(sfd: int, dfd: int) -> int:
    """Copy from ``sfd``'s offset to its end into ``dfd``: in the kernel (no bytes
    through Python) by ``copy_file_range``, else by ``sendfile`` where the two
    files' filesystems do not allow it (a brick into a FUSE mount), else by read
    and write, whose errors are the caller's (as are any after a first byte).
    Returns the number of bytes copied (the file may have grown since its fstat)."""
    total = 0
    for copy in _COPY_WAYS:
        try:
            while n := copy(sfd, dfd):
                total += n
            return total
        except OSError as exc:
            if total or exc.errno not in _NO_KERNEL_COPY or copy is _COPY_WAYS[-1]:
                raise
    raise AssertionError("unreachable: the last way's errors propagate")


def _by_copy_file_range(sfd: int, dfd: int) -> int:
    return os.copy_file_range(sfd, dfd, _CHUNK)


def _by_sendfile(sfd: int, dfd: int) -> int:
    return os.sendfile(dfd, sfd, None, _CHUNK)


def _by_read_write(sfd: int, dfd: int) -> int:
    chunk = os.read(sfd, 1 << 20)
    _write_all(dfd, chunk)
    return len(chunk)


_COPY_WAYS = (_by_copy_file_range, _by_sendfile, _by_read_write)


def lane_for(engine: Any, source_root: str, dest_path: Callable[[str], str],
             options: Any) -> Any:
    """``engine`` behind a :class:`SmallFileLane` when the ``copy-small-files``
    option (bytes; 0 turns it off) allows, else ``engine`` itself. A user who set
    ``rsync-command`` or ``rsync-options`` gets rsync for every file unless they
    also set ``copy-small-files``.

    >>> from streamsync.options import Options
    >>> from streamsync.sinks.recording import RecordingEngine
    >>> type(lane_for(RecordingEngine(), "/b", str, Options())).__name__
    'SmallFileLane'
    >>> type(lane_for(RecordingEngine(), "/b", str, Options({"rsync-options": "--bwlimit=9"}))).__name__
    'RecordingEngine'
    """
    limit = int(option_value(options, "copy-small-files", 0) or 0)
    changed = options.changed() if hasattr(options, "changed") else {}
    if limit <= 0 or ("copy-small-files" not in changed
                      and ({"rsync-command", "rsync-options"} & set(changed))):
        return engine  # a chosen rsync (or its options) is what the user wants run
    xattrs = bool(option_value(options, "sync-xattrs", True)) or \
        bool(option_value(options, "sync-acls", True))
    return SmallFileLane(engine, source_root, dest_path, limit=limit, xattrs=xattrs)
