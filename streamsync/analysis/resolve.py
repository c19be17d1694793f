"""gfid -> path resolution, from a brick, a source view, or the journals alone.

Three sources, tried in this order for each gfid:

1. a brick directory: directories through their handle symlinks
   (``.glusterfs/xx/yy/<gfid> -> ../../pp/qq/<pgfid>/<name>``), files through
   their ``trusted.gfid2path.<hash>`` xattrs (value ``<pgfid>/<name>``, one per
   hard link) when the process may read them;
2. a :class:`~streamsync.views.SourceView` (``dir_entry`` for directories);
3. the journals' own entry records, replayed in order by
   :class:`JournalNamespace` (CREATE/MKNOD/MKDIR/SYMLINK/LINK add a name, RENAME
   moves it and evicts the name's previous holder, UNLINK/RMDIR remove it), so
   paths are known offline with nothing but the journals. Inodes that are gone
   keep their last names.

Hard links give every path (:meth:`Resolver.paths`). A parent that no source
knows is written gsyncd-style as ``.gfid/<pgfid>/<name>``; the root is ``"."``.

>>> from streamsync.records import EntryRecord, ROOT_GFID
>>> d, f = "11111111-0000-4000-8000-000000000001", "22222222-0000-4000-8000-000000000002"
>>> ns = JournalNamespace()
>>> _ = ns.feed([EntryRecord(d, "MKDIR", ROOT_GFID, "top", 16877, 0, 0),
...          EntryRecord(f, "CREATE", d, "a", 33188, 0, 0),
...          EntryRecord(f, "RENAME", d, "a", pgfid1=ROOT_GFID, bname1="b"),
...          EntryRecord(f, "LINK", d, "c")])
>>> Resolver(namespace=ns).paths(f)
['b', 'top/c']
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Iterator, Mapping

from ..fops import DELETE_FOPS
from ..records import GFID_PREFIX, ROOT_GFID, Record

__all__ = ["JournalNamespace", "Resolver", "ROOT_PATH"]

#: how the root directory is written
ROOT_PATH = "."

_NEW = frozenset({"CREATE", "MKNOD", "MKDIR", "SYMLINK", "LINK"})
_GFID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_DIR_TARGET = re.compile(
    r"\.\./\.\./[0-9a-f]{2}/[0-9a-f]{2}/"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/([^/]+)\Z", re.S)
_GFID2PATH = "trusted.gfid2path."
_MAX_DEPTH = 4096

Name = tuple[str, str]


def join_path(parent: str, bname: str) -> str:
    """``parent/bname``, with the root (``"."``) dropped."""
    return bname if parent == ROOT_PATH else f"{parent}/{bname}"


class _LatestNames(Mapping):
    """gfid -> ``[(pgfid, bname)]`` read on demand from a summary's ``names``
    (``gfid -> (ts, seq, pgfid, bname)``): a report resolves a few dozen paths,
    so the hundreds of thousands of other gfids are never copied."""

    def __init__(self, latest: Mapping[str, tuple[int, int, str, str]]) -> None:
        self._latest = latest

    def __getitem__(self, gfid: str) -> list[Name]:
        v = self._latest[gfid]
        return [(v[2], v[3])]

    def __iter__(self) -> Iterator[str]:
        return iter(self._latest)

    def __len__(self) -> int:
        return len(self._latest)


class JournalNamespace:
    """The namespace as the journals describe it, replayed record by record.

    ``names[gfid]`` is the list of ``(pgfid, bname)`` the inode holds now,
    ``holder[(pgfid, bname)]`` the gfid a name holds, ``gone[gfid]`` the last
    names of inodes that lost every name, ``dirs`` the gfids known to be
    directories, ``delete_paths[gfid]`` the captured delete path (capture-del-path).
    """

    __slots__ = ("names", "holder", "gone", "dirs", "delete_paths")

    def __init__(self) -> None:
        self.names: dict[str, list[Name]] = {}
        self.holder: dict[Name, str] = {}
        self.gone: dict[str, list[Name]] = {}
        self.dirs: set[str] = {ROOT_GFID}
        self.delete_paths: dict[str, str] = {}

    def copy(self) -> "JournalNamespace":
        """An independent snapshot (e.g. the namespace at ``--since``)."""
        out = JournalNamespace()
        out.names = {g: list(v) for g, v in self.names.items()}
        out.holder = dict(self.holder)
        out.gone = {g: list(v) for g, v in self.gone.items()}
        out.dirs = set(self.dirs)
        out.delete_paths = dict(self.delete_paths)
        return out

    # -- updates -----------------------------------------------------------
    def _drop(self, gfid: str, name: Name) -> None:
        held = self.names.get(gfid)
        if held is None:
            return
        try:
            held.remove(name)
        except ValueError:
            return
        if self.holder.get(name) == gfid:
            del self.holder[name]
        if not held:
            del self.names[gfid]
            self.gone[gfid] = [name]

    def _add(self, gfid: str, name: Name) -> str | None:
        """Give ``name`` to ``gfid``; returns the gfid it evicted, if any."""
        victim = self.holder.get(name)
        if victim is not None and victim != gfid:
            self._drop(victim, name)
        else:
            victim = None
        held = self.names.get(gfid)
        if held is None:
            held = self.names[gfid] = []
            self.gone.pop(gfid, None)
        if name not in held:
            held.append(name)
        self.holder[name] = gfid
        return victim

    def apply(self, rec: Record) -> str | None:
        """Apply one record; returns the gfid a RENAME evicted from its target name."""
        if rec.TYPE != "E":
            return None
        fop = rec.fop  # type: ignore[union-attr]
        self.dirs.add(rec.pgfid)  # type: ignore[union-attr]
        name = (rec.pgfid, rec.bname)  # type: ignore[union-attr]
        if fop in _NEW:
            if fop == "MKDIR":
                self.dirs.add(rec.gfid)
            return self._add(rec.gfid, name)
        if fop in DELETE_FOPS:
            if fop == "RMDIR":
                self.dirs.add(rec.gfid)
            if rec.path is not None:  # type: ignore[union-attr]
                self.delete_paths[rec.gfid] = rec.path  # type: ignore[union-attr]
            held = self.names.get(rec.gfid)
            if held is None or name not in held:
                # the name predates the journals: remember it as the last one
                if held is None:
                    self.gone[rec.gfid] = [name]
                if self.holder.get(name) == rec.gfid:
                    del self.holder[name]
                return None
            self._drop(rec.gfid, name)
            return None
        if fop == "RENAME":
            self.dirs.add(rec.pgfid1)  # type: ignore[union-attr]
            held = self.names.get(rec.gfid)
            if held is not None and name in held:
                held.remove(name)
                if self.holder.get(name) == rec.gfid:
                    del self.holder[name]
            elif self.holder.get(name) == rec.gfid:
                del self.holder[name]
            return self._add(rec.gfid, (rec.pgfid1, rec.bname1))  # type: ignore[union-attr]
        return None

    def feed(self, records: Iterable[Record]) -> "JournalNamespace":
        """Apply records in order; returns ``self``."""
        apply = self.apply
        for r in records:
            if r.TYPE == "E":
                apply(r)
        return self

    # -- queries -----------------------------------------------------------
    def current(self, gfid: str) -> list[Name]:
        """The names the inode holds now (empty when gone or unknown)."""
        return list(self.names.get(gfid, ()))

    def last(self, gfid: str) -> list[Name]:
        """Names now, or the last names before the inode went away."""
        return list(self.names.get(gfid) or self.gone.get(gfid, ()))

    def dir_path(self, gfid: str) -> str | None:
        """A directory's path from the journals alone (``None`` when a parent is unknown)."""
        parts: list[str] = []
        g = gfid
        for _ in range(_MAX_DEPTH):
            if g == ROOT_GFID:
                return "/".join(reversed(parts)) if parts else ROOT_PATH
            names = self.names.get(g) or self.gone.get(g)
            if not names:
                return None
            g, b = names[0]
            parts.append(b)
        return None

    def path_of(self, name: Name) -> str:
        """Path of ``(pgfid, bname)``; an unknown parent is written ``.gfid/<pgfid>``."""
        p, b = name
        parent = self.dir_path(p)
        if parent is None:
            return f"{GFID_PREFIX}{p}/{b}"
        return join_path(parent, b)


class Resolver:
    """A cached gfid -> path(s) resolver over a brick, a view and/or journals.

    ``brick``: brick root (handles + ``trusted.gfid2path.*``); ``view``: any
    :class:`~streamsync.views.SourceView`; ``namespace``: a
    :class:`JournalNamespace` fed with the journals (see :meth:`from_journals`).
    Directory paths are cached (an offline source does not change underneath).

    >>> Resolver().path("00000000-0000-0000-0000-000000000001")
    '.'
    """

    def __init__(self, *, brick: str | os.PathLike | None = None, view=None,
                 namespace: JournalNamespace | None = None, use_xattrs: bool = True) -> None:
        self.brick = None if brick is None else os.path.abspath(os.fspath(brick))
        self.view = view
        self.namespace = namespace
        self.use_xattrs = use_xattrs
        self._dir_cache: dict[str, str | None] = {ROOT_GFID: ROOT_PATH}
        self._names_cache: dict[str, tuple[Name, ...]] = {}

    @classmethod
    def from_journals(cls, paths: Iterable[str | os.PathLike], **kw) -> "Resolver":
        """A resolver that also knows every name the journals under ``paths`` created."""
        from ._input import iter_journals, read_records
        ns = JournalNamespace()
        for c in iter_journals(paths):
            ns.feed(read_records(c))
        return cls(namespace=ns, **kw)

    @classmethod
    def from_summary(cls, summary, **kw) -> "Resolver":
        """A resolver knowing the latest name of every gfid a
        :class:`~streamsync.analysis.summary.Summary` saw named (for reports)."""
        return cls.from_names(summary.names, **kw)

    @classmethod
    def from_names(cls, names: Mapping[str, tuple[int, int, str, str]], **kw) -> "Resolver":
        """A resolver knowing latest names, ``gfid -> (ts, seq, pgfid, bname)`` (the
        shape of :attr:`Summary.names <streamsync.analysis.summary.Summary>`).

        >>> from streamsync.records import ROOT_GFID
        >>> d = "11111111-0000-4000-8000-000000000001"
        >>> Resolver.from_names({d: (1, 0, ROOT_GFID, "top")}).path(d)
        'top'
        """
        ns = JournalNamespace()
        ns.names = _LatestNames(names)  # type: ignore[assignment]
        return cls(namespace=ns, **kw)

    # -- brick lookups -----------------------------------------------------
    def _handle(self, gfid: str) -> str | None:
        if self.brick is None or not _GFID.match(gfid):
            return None
        return os.path.join(self.brick, ".glusterfs", gfid[0:2], gfid[2:4], gfid)

    def _brick_names(self, gfid: str) -> tuple[Name, ...] | None:
        path = self._handle(gfid)
        if path is None:
            return None
        try:
            target = os.readlink(path)
        except OSError as exc:
            if exc.errno == 22:  # EINVAL: not a symlink -> a hard link (file)
                target = None
            else:
                return None  # no handle: gone or never on this brick
        if target is not None:
            m = _DIR_TARGET.match(target)
            if m is not None:
                return ((m.group(1), m.group(2)),)
            # a symlink inode's own handle (its target is the user's)
        if not self.use_xattrs:
            return None
        try:
            keys = [k for k in os.listxattr(path, follow_symlinks=False)
                    if k.startswith(_GFID2PATH)]
            values = [os.getxattr(path, k, follow_symlinks=False) for k in keys]
        except OSError:
            return None
        out = []
        for v in values:
            text = os.fsdecode(v.rstrip(b"\0"))
            p, sep, b = text.partition("/")
            if sep and _GFID.match(p) and b:
                out.append((p, b))
        return tuple(sorted(out)) if out else None

    # -- public ------------------------------------------------------------
    def names(self, gfid: str) -> list[Name]:
        """Every ``(pgfid, bname)`` of the inode (all hard links), best source first."""
        if gfid == ROOT_GFID:
            return []
        cached = self._names_cache.get(gfid)
        if cached is not None:
            return list(cached)
        found = self._brick_names(gfid)
        if found is None and self.view is not None:
            entry = self.view.dir_entry(gfid)
            if entry is not None:
                found = (tuple(entry),)
        if found is None and self.namespace is not None:
            last = self.namespace.last(gfid)
            if last:
                found = tuple(last)
        result = found or ()
        self._names_cache[gfid] = result
        return list(result)

    def dir_path(self, gfid: str) -> str | None:
        """A directory's path, ``None`` when some ancestor is unknown."""
        cache = self._dir_cache
        if gfid in cache:
            return cache[gfid]
        chain: list[tuple[str, str]] = []
        g = gfid
        result: str | None = None
        seen = set()
        while True:
            if g in cache:
                result = cache[g]
                break
            if g in seen or len(chain) > _MAX_DEPTH:
                result = None
                break
            seen.add(g)
            names = self.names(g)
            if not names:
                result = None
                break
            p, b = names[0]
            chain.append((g, b))
            g = p
        for g2, b in reversed(chain):
            result = None if result is None else join_path(result, b)
            cache[g2] = result
        return cache.get(gfid, result)

    def path_of(self, pgfid: str, bname: str) -> str:
        """Path of a name; an unknown parent is written ``.gfid/<pgfid>/<bname>``."""
        parent = self.dir_path(pgfid)
        if parent is None:
            return f"{GFID_PREFIX}{pgfid}/{bname}"
        return join_path(parent, bname)

    def paths(self, gfid: str) -> list[str]:
        """Every path of the inode (hard links give several), sorted; ``["."]`` for the root."""
        if gfid == ROOT_GFID:
            return [ROOT_PATH]
        return sorted({self.path_of(p, b) for p, b in self.names(gfid)})

    def path(self, gfid: str) -> str:
        """One path (the first of :meth:`paths`), or ``.gfid/<gfid>`` when unknown."""
        ps = self.paths(gfid)
        return ps[0] if ps else f"{GFID_PREFIX}{gfid}"

    __call__ = path
