"""glusterfind-style change listing: ``NEW``, ``MODIFY``, ``RENAME``, ``DELETE``.

Over a window of journals (``since <= ts <= until``) every entry and data record
is folded into one row per name, with glusterfind's merge rules (spec section 8):

* CREATE/MKNOD/MKDIR/SYMLINK/LINK -> ``NEW <path>``;
* RENAME -> ``RENAME <old> <new>``, merged into an earlier NEW (the NEW moves)
  or RENAME (the destination moves) of the same name; renaming back to the
  original name removes the row;
* UNLINK/RMDIR -> ``DELETE <path>``; a NEW of the same name simply disappears,
  a RENAME becomes the DELETE of its original name;
* D/M -> ``MODIFY <path>`` unless the gfid already has a NEW or MODIFY row
  (omitted with ``only_namespace``).

Where glusterfind has documented gaps, we do not: the inode replaced by a
RENAME onto its name is reported as deleted (no UNLINK is journaled for it),
a file modified then deleted is only DELETE, a write to an already unlinked
inode is not a MODIFY, directories resolve like files, and paths come from a
replay of the journals (a :class:`~streamsync.analysis.resolve.Resolver` over
the brick fills in names older than the journals). Old paths (RENAME source,
DELETE) are the paths at ``since``; new paths (NEW, MODIFY, RENAME destination)
are the paths at ``until``. Hard links give one row per name.

>>> from streamsync.records import Changelog, EntryRecord, DataRecord, ROOT_GFID
>>> f = "22222222-0000-4000-8000-000000000002"
>>> jr = [(Changelog("CHANGELOG.10", 10, 1), [EntryRecord(f, "CREATE", ROOT_GFID, "a", 33188, 0, 0)]),
...       (Changelog("CHANGELOG.20", 20, 1), [EntryRecord(f, "RENAME", ROOT_GFID, "a",
...                                                        pgfid1=ROOT_GFID, bname1="b"),
...                                            DataRecord(f)])]
>>> [c.line() for c in list_changes(jr)]
['NEW b']
>>> [c.line() for c in list_changes(jr, since=15)]
['RENAME a b', 'MODIFY b']
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

from ..escaping import escape
from ..fops import DELETE_FOPS
from ..records import GFID_PREFIX, ROOT_GFID, Changelog, Record, name_to_json
from .resolve import ROOT_PATH, JournalNamespace, Resolver, join_path

__all__ = ["Change", "list_changes", "changes_from_paths", "CHANGE_KINDS"]

CHANGE_KINDS = ("NEW", "MODIFY", "RENAME", "DELETE")
_NEW = frozenset({"CREATE", "MKNOD", "MKDIR", "SYMLINK", "LINK"})


class Change(NamedTuple):
    """One output row: ``kind`` is NEW, MODIFY, RENAME or DELETE; ``newpath`` only for RENAME."""

    kind: str
    path: str
    newpath: str | None = None
    gfid: str = ""

    def line(self, *, sep: str = " ", encode: bool = True) -> str:
        """glusterfind's output line; names escaped (``%25 %20 %0A``) unless ``encode=False``."""
        f = escape if encode else (lambda s: s)
        parts = [self.kind, f(self.path)]
        if self.newpath is not None:
            parts.append(f(self.newpath))
        return sep.join(parts)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.kind, "path": name_to_json(self.path)}
        if self.newpath is not None:
            d["newpath"] = name_to_json(self.newpath)
        d["gfid"] = self.gfid
        return d


class _Row:
    __slots__ = ("kind", "gfid", "orig", "cur", "captured", "alive")

    def __init__(self, kind: str, gfid: str, orig, cur, captured=None) -> None:
        self.kind = kind
        self.gfid = gfid
        self.orig = orig
        self.cur = cur
        self.captured = captured
        self.alive = True


class _Lister:
    def __init__(self, ns: JournalNamespace, only_namespace: bool) -> None:
        self.ns = ns
        self.rows: list[_Row] = []
        self.by_gfid: dict[str, list[_Row]] = {}
        self.only_namespace = only_namespace

    def _add(self, row: _Row) -> None:
        self.rows.append(row)
        self.by_gfid.setdefault(row.gfid, []).append(row)

    def _find(self, gfid: str, name, kinds) -> _Row | None:
        for row in self.by_gfid.get(gfid, ()):
            if row.alive and row.kind in kinds and row.cur == name:
                return row
        return None

    def _has(self, gfid: str, kinds) -> bool:
        return any(r.alive and r.kind in kinds for r in self.by_gfid.get(gfid, ()))

    def _removed(self, gfid: str, name, captured: str | None) -> None:
        """``name`` of ``gfid`` disappeared (UNLINK/RMDIR or evicted by a RENAME)."""
        row = self._find(gfid, name, ("NEW", "RENAME"))
        if row is None:
            self._add(_Row("DELETE", gfid, name, None, captured))
        elif row.kind == "NEW":
            row.alive = False
        else:
            row.kind, row.cur, row.captured = "DELETE", None, captured

    def _after_removal(self, gfid: str) -> None:
        if not self.ns.names.get(gfid):
            for r in self.by_gfid.get(gfid, ()):
                if r.kind == "MODIFY":
                    r.alive = False

    def record(self, rec: Record) -> None:
        ns = self.ns
        g = rec.gfid
        if rec.TYPE != "E":
            if self.only_namespace or g in ns.gone:
                return
            if self._has(g, ("NEW", "MODIFY")):
                return
            self._add(_Row("MODIFY", g, None, None))
            return
        fop = rec.fop  # type: ignore[union-attr]
        name = (rec.pgfid, rec.bname)  # type: ignore[union-attr]
        if fop in _NEW:
            victim = ns.holder.get(name)
            ns.apply(rec)
            if victim is not None and victim != g:
                self._removed(victim, name, None)
                self._after_removal(victim)
            self._add(_Row("NEW", g, None, name))
        elif fop in DELETE_FOPS:
            captured = rec.path  # type: ignore[union-attr]
            ns.apply(rec)
            self._removed(g, name, captured)
            self._after_removal(g)
        elif fop == "RENAME":
            new = (rec.pgfid1, rec.bname1)  # type: ignore[union-attr]
            victim = ns.apply(rec)
            if victim is not None:
                self._removed(victim, new, None)
                self._after_removal(victim)
            row = self._find(g, name, ("NEW", "RENAME"))
            if row is None:
                self._add(_Row("RENAME", g, name, new))
            else:
                row.cur = new
                if row.kind == "RENAME" and row.orig == new:
                    row.alive = False

    def render(self, before: JournalNamespace, resolver: Resolver | None) -> list[Change]:
        after = self.ns

        def path_in(ns: JournalNamespace, name, captured: str | None = None) -> str:
            p, b = name
            parent = ns.dir_path(p)
            if parent is None and captured:
                return captured
            if parent is None and resolver is not None:
                parent = resolver.dir_path(p)
            if parent is None:
                return f"{GFID_PREFIX}{p}/{b}"
            return join_path(parent, b)

        out: list[Change] = []
        seen: set[tuple] = set()

        def emit(kind: str, gfid: str, path: str, newpath: str | None = None) -> None:
            key = (kind, path, newpath)
            if key not in seen:
                seen.add(key)
                out.append(Change(kind, path, newpath, gfid))

        for row in self.rows:
            if not row.alive:
                continue
            g = row.gfid
            if row.kind == "NEW":
                emit("NEW", g, path_in(after, row.cur))
            elif row.kind == "RENAME":
                emit("RENAME", g, path_in(before, row.orig), path_in(after, row.cur))
            elif row.kind == "DELETE":
                emit("DELETE", g, path_in(before, row.orig, row.captured))
            else:  # MODIFY
                if g == ROOT_GFID:
                    emit("MODIFY", g, ROOT_PATH)
                    continue
                names = after.current(g)
                if names:
                    paths = sorted({path_in(after, n) for n in names})
                elif resolver is not None:
                    paths = resolver.paths(g)
                else:
                    paths = []
                if not paths:
                    paths = [f"{GFID_PREFIX}{g}"]
                for p in paths:
                    emit("MODIFY", g, p)
        return out


def list_changes(journals: Iterable[tuple[Changelog, Iterable[Record]]], *,
                 since: int | None = None, until: int | None = None,
                 resolver: Resolver | None = None,
                 only_namespace: bool = False) -> list[Change]:
    """The merged change rows of the journals with ``since <= ts <= until``.

    ``journals`` are ``(changelog, records)`` pairs in ts order; journals before
    ``since`` are replayed only to know the names as they were at ``since``;
    journals after ``until`` are not read.

    >>> from streamsync.discover import discover, read_changelog
    >>> journals = ((j, read_changelog(j)) for j in discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))
    >>> rows = list_changes(journals, since=1795467006, until=1795467006)
    >>> rows[0]
    Change(kind='NEW', path='top', newpath=None, gfid='d11575a7-bfec-475e-8e73-c98e35a6564c')
    >>> [(r.kind, r.path) for r in rows[1:3]]
    [('NEW', 'top/a'), ('NEW', 'top/a/b')]
    """
    ns = JournalNamespace()
    lister: _Lister | None = None
    before = ns
    for changelog, records in journals:
        ts = changelog.ts
        if until is not None and ts > until:
            break
        if since is not None and ts < since:
            ns.feed(records)
            continue
        if lister is None:
            before = ns.copy()
            lister = _Lister(ns, only_namespace)
        rec = lister.record
        for r in records:
            rec(r)
    if lister is None:
        return []
    return lister.render(before, resolver)


def changes_from_paths(paths: Iterable[str], *, since: int | None = None,
                       until: int | None = None, brick: str | None = None,
                       only_namespace: bool = False) -> list[Change]:
    """:func:`list_changes` over every journal under ``paths``; ``brick`` resolves older names.

    >>> rows = changes_from_paths(["tests/data/gluster-10.3/processed/ascii-delpath-on"])
    >>> sorted({c.kind for c in rows})
    ['MODIFY', 'NEW']
    """
    from ._input import iter_journals, read_records
    resolver = Resolver(brick=brick) if brick is not None else None
    pairs = ((c, read_records(c)) for c in iter_journals(paths, until=until))
    return list_changes(pairs, since=since, until=until, resolver=resolver,
                        only_namespace=only_namespace)
