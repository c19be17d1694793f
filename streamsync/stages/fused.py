"""The fused fast path: parse + classify + plan of one processed changelog in one loop.

Same results as ``parse_processed`` -> :func:`~streamsync.stages.classify.classify`
-> :func:`~streamsync.stages.plan.fold_plan` (-> gating), without building a
record per ``D``/``M`` line or a decision per record. One compiled regular
expression (:func:`~streamsync.parse.well_formed`) first checks that every line
has a shape the strict parser accepts (in C, for the whole text at once); the loop then slices and splits without
re-checking, with a per-changelog cache of ``mode uid gid`` triples. The rule of
each ``E`` record is :func:`~streamsync.stages.classify.entry_rule`, the one the
composed stages use. A changelog that fails the check goes through
:func:`~streamsync.parse.parse_processed`, so the error raised is exactly the
one it raises (file and line number); should the strict parser accept it, the
composed stages plan it.

>>> from streamsync.records import Changelog
>>> from streamsync.views import MemoryView
>>> from streamsync.options import Options
>>> text = b"D 00000000-0000-0000-0000-000000000001\\n"
>>> fused_plan(Changelog("CHANGELOG.5", 5, len(text)), text, view=MemoryView(),
...            options=Options()).data_gfids
('00000000-0000-0000-0000-000000000001',)
"""

from __future__ import annotations

from collections import Counter

from .._gc import paused
from ..escaping import unescape
from ..fops import FOP_NUMBERS, NEWENTRY_FOPS
from ..ops import ChangelogPlan, EntryOp
from ..options import Options
from ..parse import parse_line, parse_processed, split_entry, well_formed
from ..records import Changelog
from ..views.base import SourceView
from .classify import DATA, UNDATA, XATTR_DATA_FOPS, entry_rule, xattrs_as_data
from .gate import GATED_UNCOUNTED
from .plan import finish_stats, plan_records

__all__ = ["fused_plan", "text_lookups"]

_NEWENTRY = NEWENTRY_FOPS


class _Invalid(Exception):
    pass


def _lines(text: str) -> list[str]:
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def text_lookups(lines: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Gfids and names a changelog's classification looks up (a quick scan;
    malformed lines are ignored here and reported by the parsing pass)."""
    gfids: list[str] = []
    names: list[tuple[str, str]] = []
    for line in lines:
        k = line[:2]
        if k == "E ":
            parts = line[2:].split(" ")
            if len(parts) < 3:
                continue
            fop = parts[1]
            try:
                if fop == "UNLINK" or fop == "RMDIR":
                    gfids.append(parts[0])
                elif fop == "RENAME" and len(parts) == 4:
                    gfids.append(parts[0])
                    names.append(split_entry(parts[3]))
                elif fop == "LINK" or fop == "SYMLINK":
                    gfids.append(parts[0])
                    names.append(split_entry(parts[2]))
            except ValueError:
                continue
        elif k == "M " and line.endswith(" SETATTR"):
            gfids.append(line[2:38])
    return gfids, names


def _prefetched(view: SourceView, text: str, prefetch: bool) -> SourceView:
    """``view``, or a snapshot of what this changelog looks up (a view that
    prefetches: one round of bulk lookups instead of one per record)."""
    if not prefetch or view.prefetch((), ()) is view:
        return view
    gfids, names = text_lookups(_lines(text))
    return view.prefetch(gfids, names) if gfids or names else view


def fused_plan(changelog: Changelog, data: bytes | str, *, view: SourceView,
               options: Options, gated: bool = False, prefetch: bool = True) -> ChangelogPlan:
    """The plan of one processed changelog (see the module docstring)."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    if well_formed(text):
        with paused():  # no cycles, many small objects (streamsync._gc)
            try:
                return _plan(changelog, _lines(text), _prefetched(view, text, prefetch),
                             options, gated)
            except (_Invalid, ValueError):
                pass
    # malformed somewhere (or an unusual shape): the strict parser names the line
    records = list(parse_processed(text, path=changelog.where))
    return plan_records(changelog, records, view=view, options=options, gated=gated,
                        prefetch=prefetch)


def _plan(changelog: Changelog, lines: list[str], view: SourceView, options: Options,
          gated: bool) -> ChangelogPlan:
    """The loop over lines already known to be well formed."""
    hot_tier = options.hot_tier
    ignore_deletes = options.ignore_deletes
    xattr_data = xattrs_as_data(options)
    rule = entry_rule
    datas: set[str] = set()
    add_data = datas.add
    metas: set[str] = set()
    entries: list[EntryOp] = []
    append = entries.append
    counted: list[str] = []
    count = counted.append
    fops = FOP_NUMBERS
    triples: dict[tuple[str, str, str], tuple[int, int, int]] = {}

    for line in lines:
        k = line[0]
        if k == "D":
            add_data(line[2:])
        elif k == "M":
            gfid, _, fop = line[2:].partition(" ")
            if " " in fop:
                r = parse_line(line)       # xsync SETATTR with an inline stat, or invalid
                gfid, fop = r.gfid, r.fop  # type: ignore[union-attr]
            elif fop not in fops:
                raise _Invalid
            count("SETXATTR" if fop == "FSETXATTR" else fop)
            if fop == "SETATTR":
                metas.add(gfid)
            elif xattr_data and fop in XATTR_DATA_FOPS:
                add_data(gfid)
        else:
            parts = line.split(" ")        # ["E", gfid, fop, ...]
            gfid = parts[1]
            fop = parts[2]
            if fop in _NEWENTRY:
                key = (parts[3], parts[4], parts[5])
                triple = triples.get(key)
                if triple is None:
                    triple = (int(parts[3]), int(parts[4]), int(parts[5]))
                    if triple[0] > 0xFFFFFFFF or triple[1] > 0xFFFFFFFF or \
                            triple[2] > 0xFFFFFFFF:
                        raise _Invalid
                    triples[key] = triple
                mode, uid, gid = triple
                field = parts[6]
                pgfid1 = bname1 = None
            else:
                mode = uid = gid = None
                field = parts[3]
                if fop == "RENAME":
                    field1 = parts[4]
                    pgfid1, bname1 = field1[:36], field1[37:]
                    if "%" in bname1:
                        bname1 = unescape(bname1)
                else:
                    pgfid1 = bname1 = None
            pgfid, bname = field[:36], field[37:]
            if "%" in bname:
                bname = unescape(bname)
            if hot_tier:
                continue
            if gated and fop in GATED_UNCOUNTED:
                continue
            count(fop)
            op, effect = rule(fop, gfid, pgfid, bname, mode, uid, gid, pgfid1, bname1, view,
                              ignore_deletes)
            if effect == UNDATA:
                datas.discard(gfid)
            elif effect == DATA:
                add_data(gfid)
            if op is not None and not gated:
                append(op)
    stats = finish_stats(Counter(counted), len(datas))
    return ChangelogPlan(changelog, False, gated, () if gated else tuple(entries),
                         tuple(sorted(metas)), tuple(sorted(datas)), stats)
