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
           "classify", "lookups", "xattrs_as_data"]

ENTRY, DATA, UNDATA, META, COUNT = 0, 1, 2, 3, 4
Decision = tuple[int, Any]

_S_IFMT = 0o170000
_S_IFLNK = 0o120000
_XATTR_DATA_FOPS = frozenset({"SETXATTR", "XATTROP", "FXATTROP"})


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
            elif xattr_data and fop in _XATTR_DATA_FOPS:
                yield DATA, r.gfid
        else:
            if hot_tier:
                continue
            fop = r.fop
            gfid = r.gfid
            yield COUNT, fop
            if fop == "UNLINK" or fop == "RMDIR":
                gone = view.lstat(gfid) is None
                if gone:
                    yield UNDATA, gfid
                elif fop == "RMDIR":
                    continue
                if not ignore_deletes:
                    yield ENTRY, EntryOp(fop, gfid, r.pgfid, r.bname)
            elif fop == "CREATE" or fop == "MKDIR" or fop == "MKNOD":
                if fop == "MKNOD" and r.mode & 0o1000:  # type: ignore[operator]
                    st = Stat(r.uid, r.gid, r.mode, 0, 0)  # type: ignore[arg-type]
                    yield ENTRY, EntryOp("LINK", gfid, r.pgfid, r.bname, stat=st,
                                         source_fop="MKNOD")
                    yield DATA, gfid
                else:
                    yield ENTRY, EntryOp(fop, gfid, r.pgfid, r.bname, r.mode, r.uid, r.gid)
            elif fop == "RENAME":
                st = view.lstat(gfid)
                link = rename_link(view, gfid, r.pgfid1, r.bname1) if _is_link(st) else None
                yield ENTRY, EntryOp(fop, gfid, r.pgfid, r.bname, pgfid1=r.pgfid1,
                                     bname1=r.bname1, stat=st, link=link)
            else:  # LINK, SYMLINK
                if view.entry_gfid(r.pgfid, r.bname) != gfid:
                    continue  # purged in the interim
                st = view.lstat(gfid)
                if st is None:
                    continue
                if fop == "LINK":
                    link = view.readlink(gfid) if _is_link(st) else None
                    yield ENTRY, EntryOp(fop, gfid, r.pgfid, r.bname, stat=st, link=link)
                elif fop == "SYMLINK":
                    link = view.readlink(gfid)
                    if link is None:
                        continue
                    yield ENTRY, EntryOp(fop, gfid, r.pgfid, r.bname, stat=st, link=link)


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
