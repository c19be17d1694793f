"""Stage: classify a changelog's records into decisions, by every rule of the
seed's per-changelog processing (spec 3.3).

Each record becomes zero or more *decisions*, small ``(kind, value)`` tuples
that :mod:`streamsync.stages.plan` folds into a
:class:`~streamsync.ops.ChangelogPlan`:

=============  ===============================================================
kind           value
=============  ===============================================================
``ENTRY``      an :class:`~streamsync.ops.EntryOp` to send, in journal order
``DATA``       a gfid whose data to transfer
``UNDATA``     a gfid gone from the source: drop it from the data queued so far
``META``       a gfid whose attributes to copy
``COUNT``      a fop name for the counters (``FSETXATTR`` counts as ``SETXATTR``)
=============  ===============================================================

The rules of an ``E`` record are written once, in :func:`entry_rule`; the fused
fast path (:mod:`streamsync.stages.fused`) calls the same function, so a rule
changes in one place and both paths follow.

Rules (names as in the spec): on a hot-tier brick every ``E`` record is
skipped. UNLINK/RMDIR drop the gfid's queued data when it is gone from the
source; an RMDIR is ignored while the directory still exists; otherwise they
are sent unless ``ignore-deletes``. CREATE/MKDIR/MKNOD are sent with the mode,
uid and gid of the line, except a MKNOD with the sticky bit, which is sent as a
LINK carrying a stat built from the line (times 0) and queues data. A RENAME
carries the source's current stat (``{}`` when gone) and, for a symlink, its
target. LINK/SYMLINK are sent only while the name still holds the gfid and the
gfid exists (a SYMLINK only when its target is readable). ``D`` queues data;
``M SETATTR`` queues metadata; ``M SETXATTR/XATTROP/FXATTROP`` queue data only
with rsync and xattr or ACL sync. Every ``E`` and ``M`` record that is not
skipped is counted.

>>> from streamsync.views import MemoryView
>>> from streamsync.options import Options
>>> from streamsync.records import DataRecord, MetaRecord, ROOT_GFID
>>> view = MemoryView()
>>> list(classify_records([DataRecord(ROOT_GFID), MetaRecord(ROOT_GFID, "SETATTR")],
...                       view=view, options=Options()))  # doctest: +NORMALIZE_WHITESPACE
[(1, '00000000-0000-0000-0000-000000000001'), (4, 'SETATTR'),
 (3, '00000000-0000-0000-0000-000000000001')]
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

from ..ops import EntryOp
from ..options import Options
from ..records import Changelog, Record, Stat
from ..views.base import SourceView

__all__ = ["ENTRY", "DATA", "META", "UNDATA", "COUNT", "Decision", "classify_records",
           "classify", "lookups", "xattrs_as_data", "entry_rule", "KEEP"]

ENTRY, DATA, UNDATA, META, COUNT = 0, 1, 2, 3, 4
Decision = tuple[int, Any]
#: :func:`entry_rule`'s effect on the gfid's queued data: none (``DATA``: queue it,
#: ``UNDATA``: drop what was queued)
KEEP = -1

_S_IFMT = 0o170000
_S_IFLNK = 0o120000
#: M fops that queue data when xattrs/ACLs travel (:func:`xattrs_as_data`)
XATTR_DATA_FOPS = frozenset({"SETXATTR", "XATTROP", "FXATTROP"})


def _is_link(st: Stat | None) -> bool:
    return st is not None and (st.mode & _S_IFMT) == _S_IFLNK


def xattrs_as_data(options: Options) -> bool:
    """Whether SETXATTR/XATTROP/FXATTROP records queue data (rsync with xattr/ACL sync)."""
    return options.sync_method != "tarssh" and bool(options.sync_xattrs or options.sync_acls)


def rename_link(view: SourceView, gfid: str, pgfid1: str, bname1: str) -> str | None:
    """The symlink target a RENAME of symlink ``gfid`` carries.

    Like the seed, the target is read through the destination name: ``None``
    when that name no longer exists. Where the seed crashes (the name now holds
    something that is not a symlink: EINVAL), the renamed inode's own target is
    used (see docs/differences.md).
    """
    holder = view.entry_gfid(pgfid1, bname1)
    if holder is None:
        return None
    if holder == gfid:
        return view.readlink(gfid)
    target = view.readlink(holder)
    if target is None:
        return view.readlink(gfid)
    return target


_new = tuple.__new__  # an EntryOp without NamedTuple's Python-level __new__: the hot path


def entry_rule(fop: str, gfid: str, pgfid: str, bname: str, mode: int | None,
               uid: int | None, gid: int | None, pgfid1: str | None, bname1: str | None,
               view: SourceView, ignore_deletes: bool) -> tuple[EntryOp | None, int]:
    """The seed's rule for one ``E`` record: ``(entry op to send or None, effect)``
    where the effect on the gfid's queued data is :data:`KEEP`, :data:`DATA` or
    :data:`UNDATA` (the module docstring lists the rules). Undo the data before
    the op, queue it after.

    >>> from streamsync.views import MemoryView
    >>> g, root = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-000000000001"
    >>> entry_rule("UNLINK", g, root, "f", None, None, None, None, None, MemoryView(), False)
    (EntryOp(op='UNLINK', gfid='00000000-0000-0000-0000-00000000000a', pgfid='00000000-0000-0000-0000-000000000001', bname='f', mode=None, uid=None, gid=None, pgfid1=None, bname1=None, stat=None, link=None, source_fop=None), 2)
    """
    if fop == "UNLINK" or fop == "RMDIR":
        effect = KEEP
        if view.lstat(gfid) is None:
            effect = UNDATA
        elif fop == "RMDIR":
            return None, KEEP
        if ignore_deletes:
            return None, effect
        return _new(EntryOp, (fop, gfid, pgfid, bname, None, None, None, None, None, None,
                              None, None)), effect
    if fop == "CREATE" or fop == "MKDIR" or fop == "MKNOD":
        if fop == "MKNOD" and mode & 0o1000:  # type: ignore[operator]
            return EntryOp("LINK", gfid, pgfid, bname, stat=Stat(uid, gid, mode, 0, 0),  # type: ignore[arg-type]
                           source_fop="MKNOD"), DATA
        return _new(EntryOp, (fop, gfid, pgfid, bname, mode, uid, gid, None, None, None, None,
                              None)), KEEP
    if fop == "RENAME":
        st = view.lstat(gfid)
        link = rename_link(view, gfid, pgfid1, bname1) if _is_link(st) else None  # type: ignore[arg-type]
        return _new(EntryOp, (fop, gfid, pgfid, bname, None, None, None, pgfid1, bname1, st,
                              link, None)), KEEP
    # LINK, SYMLINK: only while the name still holds the gfid and the gfid exists
    if view.entry_gfid(pgfid, bname) != gfid:
        return None, KEEP
    st = view.lstat(gfid)
    if st is None:
        return None, KEEP
    if fop == "LINK":
        link = view.readlink(gfid) if _is_link(st) else None
    else:
        link = view.readlink(gfid)
        if link is None:  # a SYMLINK whose target cannot be read
            return None, KEEP
    return _new(EntryOp, (fop, gfid, pgfid, bname, None, None, None, None, None, st, link,
                          None)), KEEP


def classify_records(records: Iterable[Record], *, view: SourceView,
                     options: Options) -> Iterator[Decision]:
    """Decisions for one changelog's records, in order (see the module docstring)."""
    hot_tier = options.hot_tier
    ignore_deletes = options.ignore_deletes
    xattr_data = xattrs_as_data(options)
    for r in records:
        t = r.TYPE
        if t == "D":
            yield DATA, r.gfid
        elif t == "M":
            fop = r.fop
            yield COUNT, "SETXATTR" if fop == "FSETXATTR" else fop
            if fop == "SETATTR":
                yield META, r.gfid
            elif xattr_data and fop in XATTR_DATA_FOPS:
                yield DATA, r.gfid
        else:
            if hot_tier:
                continue
            fop = r.fop
            gfid = r.gfid
            yield COUNT, fop
            op, effect = entry_rule(fop, gfid, r.pgfid, r.bname, r.mode, r.uid, r.gid,
                                    r.pgfid1, r.bname1, view, ignore_deletes)
            if effect == UNDATA:
                yield UNDATA, gfid
            if op is not None:
                yield ENTRY, op
            if effect == DATA:
                yield DATA, gfid


def lookups(records: Iterable[Record]) -> tuple[list[str], list[tuple[str, str]]]:
    """The gfids and names classifying (and applying) these records will look up.

    >>> from streamsync.records import EntryRecord
    >>> lookups([EntryRecord("g", "LINK", "p", "n")])
    (['g'], [('p', 'n')])
    """
    gfids: list[str] = []
    names: list[tuple[str, str]] = []
    for r in records:
        t = r.TYPE
        if t == "E":
            fop = r.fop
            if fop in ("UNLINK", "RMDIR"):
                gfids.append(r.gfid)
            elif fop == "RENAME":
                gfids.append(r.gfid)
                names.append((r.pgfid1, r.bname1))  # type: ignore[arg-type]
            elif fop in ("LINK", "SYMLINK"):
                gfids.append(r.gfid)
                names.append((r.pgfid, r.bname))
        elif t == "M" and r.fop == "SETATTR":
            gfids.append(r.gfid)
    return gfids, names


def classify(items: Iterable[tuple[Changelog, Iterable[Record]]], *, view: SourceView,
             options: Options, prefetch: bool = True
             ) -> Iterator[tuple[Changelog, list[Decision]]]:
    """Stage: ``(changelog, records)`` -> ``(changelog, decisions)``.

    With ``prefetch`` each changelog's lookups are resolved in bulk first
    (:meth:`SourceView.prefetch`), then classified against that snapshot.
    """
    for changelog, records in items:
        recs: Sequence[Record] = records if isinstance(records, (list, tuple)) else list(records)
        v = view
        if prefetch:
            gfids, names = lookups(recs)
            if gfids or names:
                v = view.prefetch(gfids, names)
        yield changelog, list(classify_records(recs, view=v, options=options))
