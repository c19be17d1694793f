"""Hybrid (xsync) crawl: walk a brick and journal what is there, as gsyncd does.

For every object below the brick root (depth first, a directory's contents
right after its own lines) the crawl writes the records gsyncd's hybrid crawl
writes (spec section 1.3):

=====================================  ==============================================
object                                 records
=====================================  ==============================================
directory                              ``E gfid MKDIR <mode> 0 0 pgfid/bname`` then
                                       ``M gfid SETATTR uid gid mode atime mtime``
symlink                                ``E gfid SYMLINK pgfid/bname``
regular file, ``st_nlink - 1 == 1``    ``E gfid MKNOD <mode> 0 0 pgfid/bname``, ``D gfid``
regular file with more links           ``E gfid LINK pgfid/bname``, ``D gfid``
fifo, socket, char/block device        ``E gfid MKNOD <mode> 0 0 pgfid/bname`` (one
                                       name) or ``E gfid LINK pgfid/bname`` (more),
                                       then ``M gfid SETATTR uid gid mode atime mtime``
=====================================  ==============================================

``.glusterfs``, ``.trashcan`` and AFR's anonymous-inode directory at the root,
DHT link-to files (sticky bit plus a non-empty ``trusted.glusterfs.dht.linkto``)
and objects without a gfid are skipped. Unlike gsyncd, whose hybrid crawl drops fifos, sockets and devices (a
replica seeded by it lacks them for good), they are journaled too - as a
GlusterFS brick journals a ``mknod`` - with a SETATTR for owner, mode and times
since no data sync brings them (``specials=False`` restores gsyncd's crawl;
``docs/differences.md``). A device's major/minor is not carried: GlusterFS
journals have no field for it either. After ``max_entries`` (8192) counted
objects the journal is flushed and a new one is started.

Directory stimes: after a directory's contents, ``(relpath, stime)`` is
emitted with the directory's xtime capped at ``(register_time, 0)``; the root
comes last. Without gsyncd's marker xtimes (``trusted.glusterfs.<volume>.xtime``)
the xtime is unknown: everything is crawled and the stime is the cap.

The gfid of an object is its ``trusted.gfid`` xattr (16 bytes), else the one
streamsync replicas use (``user.streamsync.gfid``), else the brick's handle
with the same inode.

:func:`xsync_chunks` yields the record chunks and stime events (pure reading);
:func:`write_xsync` writes them as ``XSYNC-CHANGELOG.<ts>`` files;
:func:`xsync_crawl` runs the whole mode through the pipeline and the sinks.

>>> import tempfile
>>> b = tempfile.mkdtemp()
>>> [type(e).__name__ for e in xsync_chunks(b, register_time=100)]
['XsyncStime']
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat as S
import struct
import time
import uuid
from typing import Any, Callable, Iterator, NamedTuple

from ..parse import render_processed
from ..records import (AFR_ANON_PREFIX, MINUS_INFINITY, ROOT_GFID, Changelog, DataRecord,
                       EntryRecord, MetaRecord, Record, Stat, Stime)

__all__ = ["XSYNC_MAX_ENTRIES", "XsyncChunk", "XsyncStime", "xsync_chunks", "write_xsync",
           "xsync_crawl", "purge_stale_xsync", "read_xtime"]

log = logging.getLogger("streamsync.crawl.xsync")

#: gsyncd's ``XSYNC_MAX_ENTRIES``: counted objects per xsync journal
XSYNC_MAX_ENTRIES = 1 << 13
_SKIP_AT_ROOT = frozenset({".glusterfs", ".trashcan"})
_GFID_XATTRS = ("trusted.gfid", "user.streamsync.gfid")
_LINKTO = "trusted.glusterfs.dht.linkto"
_XTIME = struct.Struct("!II")
#: a directory's handle: ``../../xx/yy/<parent gfid>/<name>``
_DIR_HANDLE = re.compile(r"\.\./\.\./[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f-]{36}/")


class XsyncChunk(NamedTuple):
    """The records of one xsync journal and the number of counted objects."""

    records: tuple[Record, ...]
    objects: int


class XsyncStime(NamedTuple):
    """A directory's stime, due once the journals before it are applied
    (``relpath`` is ``"."`` for the root)."""

    relpath: str
    stime: Stime


def read_xtime(path: str, volume_uuid: str | None) -> Stime | None:
    """gsyncd's marker xtime of ``path`` (``None`` when unknown)."""
    if not volume_uuid:
        return None
    try:
        raw = os.getxattr(path, f"trusted.glusterfs.{volume_uuid}.xtime", follow_symlinks=False)
    except OSError:
        return None
    if len(raw) != 8:
        return None
    return Stime(*_XTIME.unpack(raw))


class _GfidOf:
    """gfid of a brick path: xattr first, then the handle index by inode."""

    def __init__(self, brick: str) -> None:
        self.brick = brick
        self._xattrs = list(_GFID_XATTRS)
        self._index: dict[tuple[int, int], str] | None = None

    def _build(self) -> dict[tuple[int, int], str]:
        idx: dict[tuple[int, int], str] = {}
        base = os.path.join(self.brick, ".glusterfs")
        for l1 in _ls(base):
            if len(l1) != 2:
                continue
            for l2 in _ls(os.path.join(base, l1)):
                if len(l2) != 2:
                    continue
                d = os.path.join(base, l1, l2)
                for name in _ls(d):
                    if len(name) != 36 or name == ROOT_GFID:
                        continue
                    p = os.path.join(d, name)
                    try:
                        st = os.lstat(p)
                        if S.S_ISLNK(st.st_mode) and st.st_nlink == 1 \
                                and _DIR_HANDLE.match(os.readlink(p)):
                            # a directory handle: the directory itself (a symlink's
                            # handle is a hard link of it, even when its target
                            # starts with ../../)
                            st = os.stat(p)
                    except OSError:
                        continue
                    idx[(st.st_dev, st.st_ino)] = name
        return idx

    def __call__(self, path: str, st: os.stat_result) -> str | None:
        for key in list(self._xattrs):
            try:
                raw = os.getxattr(path, key, follow_symlinks=False)
            except OSError as exc:
                if exc.errno in (errno.EPERM, errno.EACCES, errno.ENOTSUP):
                    self._xattrs.remove(key)
                continue
            if len(raw) == 16:
                return str(uuid.UUID(bytes=raw))
        if self._index is None:
            self._index = self._build()
        return self._index.get((st.st_dev, st.st_ino))


def _ls(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _is_linkto(path: str, mode: int) -> bool:
    if not mode & 0o1000:
        return False
    try:
        return bool(os.getxattr(path, _LINKTO, follow_symlinks=False).rstrip(b"\0"))
    except OSError:
        return False


def xsync_chunks(brick: str | os.PathLike[str], *, register_time: int,
                 root_stime: Stime | tuple[int, int] | None = None,
                 dir_stimes: Callable[[str], Stime | None] | None = None,
                 volume_uuid: str | None = None, max_entries: int = XSYNC_MAX_ENTRIES,
                 specials: bool = True) -> Iterator[XsyncChunk | XsyncStime]:
    """Walk ``brick``: record chunks of at most ``max_entries`` counted objects,
    each followed by the directory stimes that became due with it; the root's
    stime comes last.

    ``root_stime``/``dir_stimes`` are the replica's stimes (entries whose xtime
    is not newer are skipped; a root stime of ``(0, 0)`` forces a full crawl);
    they only matter when ``volume_uuid`` names the marker xtimes.

    ``specials`` (default True, unlike gsyncd) also journals fifos, sockets and
    character/block devices; ``specials=False`` is gsyncd's crawl exactly.
    """
    brick = os.path.abspath(os.fspath(brick))
    cap = Stime(int(register_time), 0)
    gfid_of = _GfidOf(brick)
    xtr_root = Stime(*root_stime) if root_stime is not None else MINUS_INFINITY
    records: list[Record] = []
    stimes: list[XsyncStime] = []
    counter = 0

    def need_sync(xte: Stime | None, xtr: Stime) -> bool:
        return xte is None or xte > xtr

    def flush() -> Iterator[XsyncChunk | XsyncStime]:
        nonlocal records, stimes, counter
        if records:
            yield XsyncChunk(tuple(records), counter)
        yield from stimes
        records, stimes, counter = [], [], 0

    def capped(xt: Stime | None) -> Stime:
        return cap if xt is None else min(cap, xt)

    def crawl(path: str, rel: str, pgfid: str) -> Iterator[XsyncChunk | XsyncStime]:
        nonlocal counter
        xtr = (dir_stimes(rel) if dir_stimes else None) or MINUS_INFINITY
        xtr = max(xtr, xtr_root)
        if xtr_root == (0, 0):
            xtr = MINUS_INFINITY
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            log.warning("skipping directory %s: %s", path, exc.strerror)
            return
        for name in names:
            if rel == "." and (name in _SKIP_AT_ROOT or name.startswith(AFR_ANON_PREFIX)):
                continue
            p = os.path.join(path, name)
            try:
                st = os.lstat(p)
            except OSError:
                log.warning("got purged in the interim: %s", p)
                continue
            xte = read_xtime(p, volume_uuid)
            if not need_sync(xte, xtr):
                continue
            mode = st.st_mode
            if S.S_ISREG(mode) and _is_linkto(p, mode):
                log.debug("ignoring sticky bit file %s", p)
                continue
            special = not (S.S_ISDIR(mode) or S.S_ISLNK(mode) or S.S_ISREG(mode))
            if special and not specials:
                continue  # fifos, sockets, devices: gsyncd's hybrid crawl skips them
            gfid = gfid_of(p, st)
            if gfid is None:
                log.warning("skipping entry without a gfid: %s", p)
                continue
            counter += 1
            child_rel = name if rel == "." else f"{rel}/{name}"
            if S.S_ISDIR(mode):
                records.append(EntryRecord(gfid, "MKDIR", pgfid, name, mode=mode, uid=0, gid=0))
                records.append(MetaRecord(gfid, "SETATTR", Stat(st.st_uid, st.st_gid, mode,
                                                                st.st_atime, st.st_mtime)))
                if counter >= max_entries:
                    yield from flush()
                yield from crawl(p, child_rel, gfid)
                stimes.append(XsyncStime(child_rel, capped(xte)))
                continue
            if S.S_ISLNK(mode):
                records.append(EntryRecord(gfid, "SYMLINK", pgfid, name))
            elif special:
                # no data to copy: owner, mode and times come with a SETATTR instead
                if st.st_nlink - 1 == 1:
                    records.append(EntryRecord(gfid, "MKNOD", pgfid, name, mode=mode, uid=0,
                                               gid=0))
                else:
                    records.append(EntryRecord(gfid, "LINK", pgfid, name))
                records.append(MetaRecord(gfid, "SETATTR", Stat(st.st_uid, st.st_gid, mode,
                                                                st.st_atime, st.st_mtime)))
            elif st.st_nlink - 1 == 1:
                records.append(EntryRecord(gfid, "MKNOD", pgfid, name, mode=mode, uid=0, gid=0))
                records.append(DataRecord(gfid))
            else:
                records.append(EntryRecord(gfid, "LINK", pgfid, name))
                records.append(DataRecord(gfid))
            if counter >= max_entries:
                yield from flush()

    yield from crawl(brick, ".", ROOT_GFID)
    stimes.append(XsyncStime(".", capped(read_xtime(brick, volume_uuid))))
    yield from flush()


def purge_stale_xsync(directory: str) -> int:
    """Remove leftover ``XSYNC-CHANGELOG*`` files (gsyncd does it at start)."""
    n = 0
    for name in _ls(directory):
        if name.startswith("XSYNC-CHANGELOG"):
            os.unlink(os.path.join(directory, name))
            n += 1
    return n


def write_xsync(directory: str, records: tuple[Record, ...], *, ts: int) -> Changelog:
    """Write one ``XSYNC-CHANGELOG.<ts>`` journal (fsynced) and return it."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"XSYNC-CHANGELOG.{ts}")
    data = render_processed(records)
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Changelog(path, ts, len(data), "xsync")


def xsync_crawl(ctx: Any, *, volume_uuid: str | None = None,
                max_entries: int = XSYNC_MAX_ENTRIES, keep: bool = False,
                specials: bool = True) -> Any:
    """Run the hybrid crawl of ``ctx.source`` through the pipeline and sinks.

    Each journal is written to ``<working_dir>/xsync/``, planned and dispatched
    as it is flushed (the walk continues after it), then removed unless
    ``keep``; directory stimes are applied after the journals before them; the
    root's becomes the data stime (``last_synced``). Journal timestamps are
    the clock, at least one second apart. Returns a
    :class:`~streamsync.crawl.CrawlResult`.
    """
    from . import CrawlResult, process_changelogs

    result = CrawlResult("xsync")
    ctx.set_crawl_mode("xsync")
    wdir = os.path.join(ctx.working_dir or os.path.join(ctx.source, ".glusterfs", "streamsync"),
                        "xsync")
    os.makedirs(wdir, exist_ok=True)
    purge_stale_xsync(wdir)
    root = ctx.state.data_stime()
    last_ts = 0
    started = time.monotonic()
    log.info("starting hybrid crawl [{stime=%s}]", root)
    for ev in xsync_chunks(ctx.source, register_time=ctx.register_time, root_stime=root,
                           volume_uuid=volume_uuid, max_entries=max_entries,
                           specials=specials):
        if isinstance(ev, XsyncChunk):
            ts = max(int(ctx.clock()), last_ts + 1)
            last_ts = ts
            cl = write_xsync(wdir, ev.records, ts=ts)
            process_changelogs(ctx, [cl], mode="xsync", result=result)
            if not keep:
                os.unlink(cl.path)
            if ctx.stop.is_set():
                result.stopped = True
                return result
        elif ev.relpath == ".":
            cur = ctx.state.data_stime()
            if ev.stime != MINUS_INFINITY and (cur is None or ev.stime > cur):
                ctx.state.set_data_stime(ev.stime)
                ctx.root_stime_updated()
        else:
            setter = getattr(ctx.state, "set_dir_stime", None)
            if setter is not None:
                setter(ev.relpath, ev.stime)
    log.info("finished hybrid crawl [{stime=%s}, {duration=%.3f}]", ctx.state.data_stime(),
             time.monotonic() - started)
    return result
