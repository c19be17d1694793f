"""The fused fast path: parse + classify + plan of one processed changelog in one loop.

Same results as ``parse_processed`` -> :func:`~streamsync.stages.classify.classify`
-> :func:`~streamsync.stages.plan.fold_plan` (-> gating), without building a
record per ``D``/``M`` line or a decision per record. ``D`` and plain ``M`` lines
are handled with string slicing; their gfids are validated once per distinct
gfid at the end. ``E`` lines go through the strict line parser. Any malformed
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

from ..errors import ParseError
from ..fops import FOP_NUMBERS
from ..ops import ChangelogPlan, EntryOp
from ..options import Options
from ..parse import is_gfid, parse_line, parse_processed, split_entry
from ..records import Changelog, Stat
from ..views.base import SourceView
from .classify import rename_link, xattrs_as_data
from .gate import GATED_UNCOUNTED
from .plan import finish_stats

__all__ = ["fused_plan", "text_lookups"]

_S_IFMT = 0o170000
_S_IFLNK = 0o120000
_XATTR_DATA = frozenset({"SETXATTR", "XATTROP", "FXATTROP"})


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
    others: set[str] = set()
    entries: list[EntryOp] = []
    append = entries.append
    counts: dict[str, int] = {}
    fops = FOP_NUMBERS
    for line in lines:
        k = line[:2]
        if k == "D ":
            if len(line) != 38:
                raise _Invalid
            add_data(line[2:])
        elif k == "M ":
            gfid, sep, fop = line[2:].partition(" ")
            if " " in fop:
                r = parse_line(line)       # xsync SETATTR with an inline stat, or invalid
                gfid, fop = r.gfid, r.fop  # type: ignore[union-attr]
            elif fop not in fops or len(gfid) != 36:
                raise _Invalid
            key = "SETXATTR" if fop == "FSETXATTR" else fop
            counts[key] = counts.get(key, 0) + 1
            if fop == "SETATTR":
                metas.add(gfid)
            elif xattr_data and fop in _XATTR_DATA:
                add_data(gfid)
            else:
                others.add(gfid)
        elif k == "E ":
            r = parse_line(line)
            if hot_tier:
                continue
            fop = r.fop  # type: ignore[union-attr]
            if gated and fop in GATED_UNCOUNTED:
                continue
            counts[fop] = counts.get(fop, 0) + 1
            gfid = r.gfid
            if fop == "UNLINK" or fop == "RMDIR":
                if lstat(gfid) is None:
                    datas.discard(gfid)
                elif fop == "RMDIR":
                    continue
                if not ignore_deletes and not gated:
                    append(EntryOp(fop, gfid, r.pgfid, r.bname))  # type: ignore[union-attr]
            elif fop == "CREATE" or fop == "MKDIR" or fop == "MKNOD":
                mode = r.mode  # type: ignore[union-attr]
                if fop == "MKNOD" and mode & 0o1000:
                    if not gated:
                        append(EntryOp("LINK", gfid, r.pgfid, r.bname,  # type: ignore[union-attr]
                                       stat=Stat(r.uid, r.gid, mode, 0, 0),  # type: ignore
                                       source_fop="MKNOD"))
                    add_data(gfid)
                elif not gated:
                    append(EntryOp(fop, gfid, r.pgfid, r.bname, mode,  # type: ignore[union-attr]
                                   r.uid, r.gid))  # type: ignore[union-attr]
            elif fop == "RENAME":
                st = lstat(gfid)
                link = None
                if st is not None and (st.mode & _S_IFMT) == _S_IFLNK:
                    link = rename_link(view, gfid, r.pgfid1, r.bname1)  # type: ignore
                append(EntryOp(fop, gfid, r.pgfid, r.bname, pgfid1=r.pgfid1,  # type: ignore
                               bname1=r.bname1, stat=st, link=link))  # type: ignore
            else:  # LINK, SYMLINK
                if entry_gfid(r.pgfid, r.bname) != gfid:  # type: ignore[union-attr]
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
                append(EntryOp(fop, gfid, r.pgfid, r.bname, stat=st,  # type: ignore
                               link=link))
        else:
            raise _Invalid
    for group in (datas, metas, others):
        for g in group:
            if not is_gfid(g):
                raise _Invalid
    stats = finish_stats(counts, len(datas))
    return ChangelogPlan(changelog, False, gated, () if gated else tuple(entries),
                         tuple(sorted(metas)), tuple(sorted(datas)), stats)
