"""The fused fast path: parse + classify + plan of one processed changelog in one loop.

Same results as ``parse_processed`` -> :func:`~streamsync.stages.classify.classify`
-> :func:`~streamsync.stages.plan.fold_plan` (-> gating), without building a
record per ``D``/``M`` line or a decision per record. Lines are handled with string
slicing and splitting, with the strict parser's checks; gfids are validated once
per distinct gfid at the end, numbers and ``pgfid/name`` fields once per distinct
text. Any malformed
line makes the whole changelog go through :func:`~streamsync.parse.parse_processed`,
so the error raised is exactly the one it raises (file and line number).

>>> from streamsync.records import Changelog
>>> from streamsync.views import MemoryView
>>> from streamsync.options import Options
>>> text = b"D 00000000-0000-0000-0000-000000000001\\n"
>>> fused_plan(Changelog("CHANGELOG.5", 5, len(text)), text, view=MemoryView(),
...            options=Options()).data_gfids
('00000000-0000-0000-0000-000000000001',)
"""

from __future__ import annotations

import re
from collections import Counter

from ..errors import ParseError
from ..escaping import unescape
from ..fops import DELETE_FOPS, FOP_NUMBERS, NAMED_FOPS, NEWENTRY_FOPS
from ..ops import ChangelogPlan, EntryOp
from ..options import Options
from ..parse import parse_line, parse_processed, split_entry
from ..records import Changelog, Stat
from ..views.base import SourceView
from .classify import rename_link, xattrs_as_data
from .gate import GATED_UNCOUNTED
from .plan import finish_stats

__all__ = ["fused_plan", "text_lookups"]

_S_IFMT = 0o170000
_S_IFLNK = 0o120000
_XATTR_DATA = frozenset({"SETXATTR", "XATTROP", "FXATTROP"})
_NEWENTRY = NEWENTRY_FOPS
_DELETE = DELETE_FOPS
_NAMED_DELETE = NAMED_FOPS | DELETE_FOPS
_ALL_GFIDS = re.compile(
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n)*\Z").match


class _Invalid(Exception):
    pass


def _lines(data: bytes | str) -> list[str]:
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
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


def fused_plan(changelog: Changelog, data: bytes | str, *, view: SourceView,
               options: Options, gated: bool = False, prefetch: bool = True) -> ChangelogPlan:
    """The plan of one processed changelog (see the module docstring)."""
    lines = _lines(data)
    v = view
    if prefetch:
        probe = view.prefetch((), ())
        if probe is not view:
            gfids, names = text_lookups(lines)
            if gfids or names:
                v = view.prefetch(gfids, names)
    try:
        return _plan(changelog, lines, v, options, gated)
    except (_Invalid, ValueError):
        pass
    where = changelog.path if changelog.member is None else \
        f"{changelog.path}[{changelog.member}]"
    for _ in parse_processed(data, path=where):
        pass
    raise ParseError("malformed changelog", path=where, line=0)  # pragma: no cover


def _plan(changelog: Changelog, lines: list[str], view: SourceView, options: Options,
          gated: bool) -> ChangelogPlan:
    hot_tier = options.hot_tier
    ignore_deletes = options.ignore_deletes
    xattr_data = xattrs_as_data(options)
    lstat = view.lstat
    readlink = view.readlink
    entry_gfid = view.entry_gfid
    datas: set[str] = set()
    add_data = datas.add
    metas: set[str] = set()
    check: set[str] = set()          # gfids to validate once, at the end
    add_check = check.add
    entries: list[EntryOp] = []
    append = entries.append
    counted: list[str] = []
    count = counted.append
    fops = FOP_NUMBERS
    nums: dict[str, int] = {}
    ents: dict[str, tuple[str, str]] = {}
    triples: dict[tuple[str, str, str], tuple[int, int, int]] = {}

    def num(text: str) -> int:
        value = nums.get(text)
        if value is None:
            if not (text.isdigit() and text.isascii()) or len(text) > 10:
                raise _Invalid
            value = int(text)
            if value > 0xFFFFFFFF:
                raise _Invalid
            nums[text] = value
        return value

    def ent(field: str) -> tuple[str, str]:
        hit = ents.get(field)
        if hit is None:
            if field[36:37] != "/":
                raise _Invalid
            pgfid = field[:36]
            bname = field[37:]
            if "%" in bname:
                bname = unescape(bname)
            if not bname or "/" in bname or "\0" in bname or bname == "." or bname == "..":
                raise _Invalid
            add_check(pgfid)
            hit = ents[field] = (pgfid, bname)
        return hit

    for line in lines:
        k = line[:2]
        if k == "D ":
            if len(line) != 38:
                raise _Invalid
            g = line[2:]
            add_check(g)
            add_data(g)
        elif k == "M ":
            gfid, sep, fop = line[2:].partition(" ")
            if " " in fop:
                r = parse_line(line)       # xsync SETATTR with an inline stat, or invalid
                gfid, fop = r.gfid, r.fop  # type: ignore[union-attr]
            elif fop not in fops:
                raise _Invalid
            add_check(gfid)
            count("SETXATTR" if fop == "FSETXATTR" else fop)
            if fop == "SETATTR":
                metas.add(gfid)
            elif xattr_data and fop in _XATTR_DATA:
                add_data(gfid)
        elif k == "E ":
            parts = line[2:].split(" ")
            n = len(parts)
            if n < 3:
                raise _Invalid
            gfid = parts[0]
            fop = parts[1]
            add_check(gfid)
            if fop in _NEWENTRY:
                if n != 6:
                    raise _Invalid
                key = (parts[2], parts[3], parts[4])
                triple = triples.get(key)
                if triple is None:
                    triple = triples[key] = (num(parts[2]), num(parts[3]), num(parts[4]))
                mode, uid, gid = triple
                field = parts[5]
                pgfid, bname = ents.get(field) or ent(field)
            elif fop in _NAMED_DELETE:
                if n != 3 and (n != 4 or fop not in _DELETE or not unescape(parts[3])):
                    raise _Invalid
                field = parts[2]
                pgfid, bname = ents.get(field) or ent(field)
            elif fop == "RENAME":
                if n != 4:
                    raise _Invalid
                pgfid, bname = ent(parts[2])
                pgfid1, bname1 = ent(parts[3])
            else:
                raise _Invalid
            if hot_tier:
                continue
            if gated and fop in GATED_UNCOUNTED:
                continue
            count(fop)
            if fop == "UNLINK" or fop == "RMDIR":
                if lstat(gfid) is None:
                    datas.discard(gfid)
                elif fop == "RMDIR":
                    continue
                if not ignore_deletes and not gated:
                    append(EntryOp(fop, gfid, pgfid, bname))
            elif fop == "CREATE" or fop == "MKDIR" or fop == "MKNOD":
                if fop == "MKNOD" and mode & 0o1000:
                    if not gated:
                        append(EntryOp("LINK", gfid, pgfid, bname, None, None, None, None,
                                       None, Stat(uid, gid, mode, 0, 0), None, "MKNOD"))
                    add_data(gfid)
                elif not gated:
                    append(EntryOp(fop, gfid, pgfid, bname, mode, uid, gid))
            elif fop == "RENAME":
                st = lstat(gfid)
                link = None
                if st is not None and (st.mode & _S_IFMT) == _S_IFLNK:
                    link = rename_link(view, gfid, pgfid1, bname1)
                append(EntryOp(fop, gfid, pgfid, bname, None, None, None, pgfid1, bname1, st,
                               link))
            else:  # LINK, SYMLINK
                if entry_gfid(pgfid, bname) != gfid:
                    continue
                st = lstat(gfid)
                if st is None:
                    continue
                if fop == "LINK":
                    link = readlink(gfid) if (st.mode & _S_IFMT) == _S_IFLNK else None
                else:
                    link = readlink(gfid)
                    if link is None:
                        continue
                append(EntryOp(fop, gfid, pgfid, bname, None, None, None, None, None, st,
                               link))
        else:
            raise _Invalid
    if check and _ALL_GFIDS("\n".join(check) + "\n") is None:
        raise _Invalid
    stats = finish_stats(Counter(counted), len(datas))
    return ChangelogPlan(changelog, False, gated, () if gated else tuple(entries),
                         tuple(sorted(metas)), tuple(sorted(datas)), stats)
