"""gsyncd's secondary rules (spec 4.3-4.6), written once over a :class:`Namespace`.

:func:`apply_entry` decides what one entry op does given what the target holds
and which failure tuple comes back; :func:`apply_meta` does the same for a meta
op. Adopted from the newest gsyncd and from streamsync's own fault testing:

* a MKDIR checks the gfid first (a GlusterFS volume accepts a second directory
  with a gfid another one has, and the first then lists as empty);
* a directory RENAME whose directory is nowhere on the target is owed (ENOENT),
  not "nothing to do"; a symlink RENAME with an unknown target is skipped;
* names with ``/`` or NUL, ``.``/``..`` and the reserved root names are refused
  (a volume silently shortens ``a/b`` to ``b``);
* a regular file a LINK or RENAME has to make from the source's stat (its
  source name is gone) is reported in ``made``: it is new and empty, its bytes
  are owed.

>>> from streamsync.ops import EntryOp
>>> apply_entry(None, EntryOp("CREATE", "5b1c2d3e-0000-4000-8000-00000000000a",
...             "00000000-0000-0000-0000-000000000001", "a/b")).errno
22
"""

from __future__ import annotations

import errno as E
import logging
import os
import stat as S
from typing import Callable

from ..ops import EntryFailure, EntryOp, FailureInfo, MetaFailure, MetaOp
from ..parse import is_gfid
from ..records import GFID_PREFIX, ROOT_GFID, afr_internal
from .namespace import Absent, Namespace

__all__ = ["apply_entry", "apply_meta", "valid_gfid", "valid_name", "RESERVED_AT_ROOT",
           "MISSING"]

log = logging.getLogger("streamsync.secondary")

#: names at the volume root that no op may create, move or remove
RESERVED_AT_ROOT = frozenset({".glusterfs", ".gfid"})
#: ``MetaFailure.what`` of a meta op whose object the target does not have
MISSING = "missing"



def valid_gfid(gfid: object) -> bool:
    """A canonical lower-case gfid text.

    >>> valid_gfid(ROOT_GFID), valid_gfid("../../etc")
    (True, False)
    """
    return isinstance(gfid, str) and is_gfid(gfid)


def valid_name(name: object) -> bool:
    """One safe path component (at most 255 bytes, as every filesystem here).

    >>> [valid_name(n) for n in ("a b", "..", "a/b", "", "x\\0", "a" * 256)]
    [True, False, False, False, False, False]
    """
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
        return False
    try:
        return len(os.fsencode(name)) <= 255
    except UnicodeError:
        return False


class _Fail(Exception):
    def __init__(self, err: int, info: FailureInfo | None = None) -> None:
        super().__init__(err)
        self.err = err
        self.info = info or FailureInfo()


def apply_entry(ns: Namespace, op: EntryOp, made: list[str] | None = None
                ) -> EntryFailure | None:
    """Apply one entry op on ``ns``; its failure tuple, or ``None`` when done (or
    nothing was to be done). ``made`` collects regular files made from a stat.
    AFR's anonymous-inode directory at the root (:func:`~streamsync.records.
    afr_internal`) is GlusterFS's own: an op naming it there is nothing to do."""
    if afr_internal(op.pgfid, op.bname) or (op.op == "RENAME"
                                             and afr_internal(op.pgfid1, op.bname1)):
        log.debug("not replicated (AFR's own directory): %s %s", op.op, op.bname)
        return None
    try:
        _check(op)
        _RULES[op.op](ns, op, made if made is not None else [])
    except _Fail as f:
        return EntryFailure(op, f.err, f.info)
    except Absent:
        return EntryFailure(op, E.ENOENT, FailureInfo())
    except OSError as exc:
        return _collect(ns, op, exc.errno or E.EIO)
    return None


def apply_meta(ns: Namespace, op: MetaOp) -> list[MetaFailure]:
    """Owner, mode and times of one object (spec 4.6); the failures."""
    if not valid_gfid(op.gfid):
        return [MetaFailure(op, E.EINVAL, "chown")]
    try:
        return [MetaFailure(op, err, what) for err, what in ns.set_attrs(op.gfid, op.stat)]
    except Absent:
        # gsyncd skips ENOENT on lchown; the dispatcher asked because the source
        # still has the gfid, so the target owes it: say so
        return [MetaFailure(op, E.ENOENT, MISSING)]
    except OSError as exc:
        return [MetaFailure(op, exc.errno or E.EIO, "chown")]


# ------------------------------------------------------------------ checks
def _check(op: EntryOp) -> None:
    if not valid_gfid(op.gfid) or not valid_gfid(op.pgfid) or not valid_name(op.bname):
        raise _Fail(E.EINVAL)
    if op.gfid == ROOT_GFID:
        raise _Fail(E.EPERM)
    if op.pgfid == ROOT_GFID and op.bname in RESERVED_AT_ROOT:
        raise _Fail(E.EPERM)
    if op.op == "RENAME":
        if not valid_gfid(op.pgfid1) or not valid_name(op.bname1):
            raise _Fail(E.EINVAL)
        if op.pgfid1 == ROOT_GFID and op.bname1 in RESERVED_AT_ROOT:
            raise _Fail(E.EPERM)
    elif op.op not in _RULES:
        raise _Fail(E.EINVAL)


def _collect(ns: Namespace, op: EntryOp, err: int, *, dst: bool = False) -> EntryFailure | None:
    """gsyncd's ``collect_failure``: EEXIST/ESTALE are failures only when the name
    holds another gfid; any other errno always is one."""
    if err not in (E.EEXIST, E.ESTALE):
        return EntryFailure(op, err, FailureInfo(dst=dst))
    pgfid, name = (op.pgfid1, op.bname1) if dst else (op.pgfid, op.bname)
    try:
        disk = ns.name_gfid(pgfid, name) if pgfid is not None and name else None
    except (Absent, OSError):
        disk = None
    if disk is None or disk == op.gfid:
        return None
    isdir = bool(disk) and ns.kind(disk) == S.S_IFDIR
    slave_name = None
    if isdir:
        loc = ns.dir_location(disk)
        if loc is not None:
            slave_name = f"{GFID_PREFIX}{loc[0]}/{loc[1]}"
    return EntryFailure(op, err, FailureInfo(gfid_mismatch=True, dst=dst, slave_isdir=isdir,
                                             slave_name=slave_name, slave_gfid=disk or None))


def _fail(ns: Namespace, op: EntryOp, err: int, *, dst: bool = False) -> None:
    f = _collect(ns, op, err, dst=dst)
    if f is not None:
        raise _Fail(f.errno, f.info)


def _name(ns: Namespace, pgfid: str, name: str) -> str | None:
    """The gfid at a name, ``None`` also when its parent is absent."""
    try:
        return ns.name_gfid(pgfid, name)
    except Absent:
        return None


def _create(ns: Namespace, op: EntryOp, pgfid: str, name: str, mode: int, uid: int, gid: int,
            target: str | None = None, *, dst: bool = False) -> None:
    try:
        ns.create(pgfid, name, op.gfid, mode, uid, gid, target)
    except FileExistsError:
        _fail(ns, op, E.EEXIST, dst=dst)


def _hardlink(ns: Namespace, op: EntryOp, pgfid: str, name: str, *, dst: bool = False) -> None:
    kind = ns.kind(op.gfid)
    if kind is None:
        raise _Fail(E.ENOENT)
    if kind == S.S_IFDIR:
        raise _Fail(E.EPERM)
    try:
        ns.link(op.gfid, pgfid, name)
    except FileExistsError:
        _fail(ns, op, E.EEXIST, dst=dst)


# ------------------------------------------------------------------ the ops
def _purge(ns: Namespace, op: EntryOp, made: list[str]) -> None:
    """UNLINK / RMDIR: nothing when the name or the gfid is missing; another gfid
    at the name is an EEXIST failure."""
    disk = _name(ns, op.pgfid, op.bname)
    kind = ns.kind(op.gfid)
    if disk is None or kind is None:
        return
    if disk != op.gfid:
        _fail(ns, op, E.EEXIST)
        return
    if op.op == "UNLINK":
        if kind == S.S_IFDIR:
            return  # EISDIR: safe to ignore (gsyncd does the same)
        ns.unlink(op.pgfid, op.bname)
        return
    if kind != S.S_IFDIR:
        raise _Fail(E.ENOTDIR)
    ns.rmdir(op.pgfid, op.bname, op.gfid)


def _create_op(ns: Namespace, op: EntryOp, made: list[str]) -> None:
    """CREATE / MKNOD: a new gfid is made; an existing one is linked for MKNOD."""
    if ns.kind(op.gfid) is None:
        mode = op.mode if op.mode is not None else 0o100644
        if S.S_IFMT(mode) in (S.S_IFDIR, S.S_IFLNK):
            raise _Fail(E.EINVAL)
        _create(ns, op, op.pgfid, op.bname, mode, op.uid or 0, op.gid or 0)
    elif op.op == "MKNOD":
        _hardlink(ns, op, op.pgfid, op.bname)


def _mkdir(ns: Namespace, op: EntryOp, made: list[str]) -> None:
    """MKDIR: the gfid first (never a second directory with one gfid)."""
    if ns.kind(op.gfid) is None:
        mode = op.mode if op.mode is not None else 0o40755
        _create(ns, op, op.pgfid, op.bname, S.S_IFDIR | S.S_IMODE(mode), op.uid or 0, op.gid or 0)
        if op.stat is not None:
            # made from the source's stat (a fix round's missing parent), not
            # replayed where the journal made it: what the target's parent passed
            # on (a set-group-id bit) is not the source's; its own attributes are
            ns.set_attrs(op.gfid, op.stat)
        return
    if _name(ns, op.pgfid, op.bname) == op.gfid:
        return
    loc = ns.dir_location(op.gfid)
    if loc is None:
        raise _Fail(E.ENOENT)
    if loc != (op.pgfid, op.bname):
        raise _Fail(E.EEXIST, FailureInfo(name_mismatch=True, slave_isdir=True,
                                          slave_gfid=op.gfid,
                                          slave_entry=f"{GFID_PREFIX}{loc[0]}/{loc[1]}"))


def _link(ns: Namespace, op: EntryOp, made: list[str]) -> None:
    """LINK: a gfid the target lacks is made from the stat; else a hard link."""
    if ns.kind(op.gfid) is not None:
        _hardlink(ns, op, op.pgfid, op.bname)
        return
    st = op.stat
    if st is None:
        raise _Fail(E.EINVAL)
    if S.S_ISLNK(st.mode) and op.link is not None:
        _create(ns, op, op.pgfid, op.bname, st.mode, st.uid, st.gid, op.link)
    elif S.S_ISDIR(st.mode) or S.S_ISLNK(st.mode):
        raise _Fail(E.EINVAL)
    else:
        _create(ns, op, op.pgfid, op.bname, st.mode, st.uid, st.gid)
        if S.S_ISREG(st.mode):
            made.append(op.gfid)


def _symlink(ns: Namespace, op: EntryOp, made: list[str]) -> None:
    """SYMLINK: a free name gets the symlink (a link if the gfid is there already);
    a name holding the object without its gfid (a create cut short) is completed."""
    disk = ns.name_gfid(op.pgfid, op.bname)  # (Absent: the parent is not there)
    if not disk:
        if disk is None and ns.kind(op.gfid) is not None:
            _hardlink(ns, op, op.pgfid, op.bname)
            return
        if not op.link:
            raise _Fail(E.EINVAL)
        st = op.stat
        _create(ns, op, op.pgfid, op.bname, S.S_IFLNK | 0o777, st.uid if st else 0,
                st.gid if st else 0, op.link)
    elif disk != op.gfid:
        _fail(ns, op, E.EEXIST)


def _rename(ns: Namespace, op: EntryOp, made: list[str]) -> None:
    assert op.pgfid1 is not None and op.bname1 is not None
    try:
        old, reachable = ns.name_gfid(op.pgfid, op.bname), True
    except Absent:
        old, reachable = None, False
    if old != op.gfid:
        _rename_without_source(ns, op, made, reachable)
        return
    if (op.pgfid, op.bname) == (op.pgfid1, op.bname1):
        return
    new = ns.name_gfid(op.pgfid1, op.bname1)  # (Absent: the target parent is not there)
    if new is None:
        ns.rename(op.pgfid, op.bname, op.pgfid1, op.bname1)
    elif new == op.gfid:  # both names are links of one inode: drop the old one
        if ns.kind(op.gfid) == S.S_IFDIR:
            ns.rmdir(op.pgfid, op.bname, op.gfid)
        else:
            ns.unlink(op.pgfid, op.bname)
    else:
        _fail(ns, op, E.EEXIST, dst=True)


def _rename_without_source(ns: Namespace, op: EntryOp, made: list[str], reachable: bool) -> None:
    """RENAME whose old name does not hold the gfid (a replay, or an earlier op
    that did not reach the target)."""
    st = op.stat
    kind = ns.kind(op.gfid)
    if st is None or S.S_ISDIR(st.mode):
        if st is not None and kind is None:
            raise _Fail(E.ENOENT)  # the directory is nowhere: owed, not done
        if st is not None and not reachable and ns.dir_location(op.gfid) == (op.pgfid, op.bname):
            raise _Fail(E.ENOENT)  # it is at the old name, under a parent not there
        settle = getattr(ns, "settle", None)  # a replay: the target's own records agree
        if settle is not None:
            settle(op.gfid, op.pgfid1, op.bname1)
        return
    new = ns.name_gfid(op.pgfid1, op.bname1)  # (Absent: the target parent is not there)
    if S.S_ISLNK(st.mode):
        if op.link is None:
            return  # a symlink with an unknown target: skipped (newest gsyncd)
        if not new:
            if kind is not None and new is None:
                _hardlink(ns, op, op.pgfid1, op.bname1, dst=True)
            else:
                _create(ns, op, op.pgfid1, op.bname1, st.mode, st.uid, st.gid, op.link,
                        dst=True)
        elif new != op.gfid:
            _fail(ns, op, E.EEXIST, dst=True)
        return
    if new == op.gfid:
        return
    if kind is None:
        _create(ns, op, op.pgfid1, op.bname1, st.mode, st.uid, st.gid, dst=True)
        if S.S_ISREG(st.mode):
            made.append(op.gfid)
    else:
        _hardlink(ns, op, op.pgfid1, op.bname1, dst=True)


_RULES: dict[str, Callable[[Namespace, EntryOp, list[str]], None]] = {
    "UNLINK": _purge, "RMDIR": _purge, "CREATE": _create_op, "MKNOD": _create_op,
    "MKDIR": _mkdir, "LINK": _link, "SYMLINK": _symlink, "RENAME": _rename,
}
