"""An in-memory source view: a namespace held in dicts, for tests, notebooks
and what-if replays.

JSON shape (``inodes`` = every gfid that exists now, ``entries`` = every name;
names may be ``{"b64": ...}`` for bytes that are not UTF-8; the root is a
``0o40755`` directory when absent from ``inodes``)::

    {"root": "<gfid>",
     "inodes": {"<gfid>": {"mode": 33188, "uid": 0, "gid": 0, "atime": 1.5,
                           "mtime": 2.5, "link": "<target, symlinks only>"}},
     "entries": [["<parent gfid>", "<raw basename>", "<gfid>"], ...]}

>>> v = MemoryView.from_json({"root": "00000000-0000-0000-0000-000000000001",
...     "inodes": {"5b1c2d3e-0000-4000-8000-00000000000a": {"mode": 41471, "uid": 0,
...                "gid": 0, "atime": 1.0, "mtime": 2.0, "link": "target"}},
...     "entries": [["00000000-0000-0000-0000-000000000001", "ln",
...                  "5b1c2d3e-0000-4000-8000-00000000000a"]]})
>>> v.readlink("5b1c2d3e-0000-4000-8000-00000000000a")
'target'
>>> v.entry_gfid("00000000-0000-0000-0000-000000000001", "ln")
'5b1c2d3e-0000-4000-8000-00000000000a'
>>> v.lstat("no-such-gfid") is None
True
"""

from __future__ import annotations

import os
import stat as _stat
from typing import Any, Iterable, Mapping

import orjson

from ..errors import SourceError
from ..records import ROOT_GFID, Stat, name_from_json, name_to_json

__all__ = ["MemoryView", "ROOT_STAT"]

#: the stat of a root directory absent from ``inodes``
ROOT_STAT = Stat(0, 0, 0o40755, 0.0, 0.0)


class MemoryView:
    """A source namespace held in memory (see the module docstring for JSON).

    ``inodes`` maps gfid -> :class:`Stat`; ``links`` gfid -> symlink target;
    ``entries`` (pgfid, bname) -> gfid.
    """

    __slots__ = ("root", "inodes", "links", "entries", "_dirs")

    def __init__(self, inodes: Mapping[str, Stat] | None = None,
                 entries: Mapping[tuple[str, str], str] | None = None,
                 links: Mapping[str, str] | None = None, *, root: str = ROOT_GFID) -> None:
        self.root = root
        self.inodes: dict[str, Stat] = dict(inodes or {})
        self.inodes.setdefault(root, ROOT_STAT)
        self.links: dict[str, str] = dict(links or {})
        self.entries: dict[tuple[str, str], str] = dict(entries or {})
        self._dirs: dict[str, tuple[str, str]] | None = None

    # -- loading / saving -----------------------------------------------
    @classmethod
    def from_json(cls, doc: Any) -> "MemoryView":
        """Load from a dict, JSON text/bytes, or a path to a JSON file."""
        where = "<document>"
        if isinstance(doc, (str, os.PathLike)) and not (isinstance(doc, str)
                                                       and doc.lstrip().startswith("{")):
            where = os.fspath(doc)
            try:
                with open(doc, "rb") as fh:
                    doc = fh.read()
            except OSError as exc:
                raise SourceError(f"{where}: cannot read source state: {exc.strerror}") from None
        if isinstance(doc, (bytes, str)):
            try:
                doc = orjson.loads(doc)
            except orjson.JSONDecodeError as exc:
                raise SourceError(f"{where}: not JSON: {exc}") from None
        try:
            return cls._from_doc(doc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SourceError(f"{where}: bad source state document: {exc!r}") from None

    @classmethod
    def _from_doc(cls, doc: Mapping[str, Any]) -> "MemoryView":
        root = doc.get("root", ROOT_GFID)
        inodes: dict[str, Stat] = {}
        links: dict[str, str] = {}
        for gfid, d in doc.get("inodes", {}).items():
            inodes[gfid] = Stat(int(d.get("uid", 0)), int(d.get("gid", 0)), int(d["mode"]),
                                float(d.get("atime", 0.0)), float(d.get("mtime", 0.0)))
            if d.get("link") is not None:
                links[gfid] = name_from_json(d["link"])
        entries: dict[tuple[str, str], str] = {}
        for item in doc.get("entries", []):
            pgfid, bname, gfid = item
            entries[(pgfid, name_from_json(bname))] = gfid
        return cls(inodes, entries, links, root=root)

    def to_json(self) -> dict[str, Any]:
        """The JSON document (inverse of :meth:`from_json`)."""
        inodes: dict[str, Any] = {}
        for gfid, st in self.inodes.items():
            d = st.to_dict()
            if gfid in self.links:
                d["link"] = name_to_json(self.links[gfid])
            inodes[gfid] = d
        return {"root": self.root, "inodes": inodes,
                "entries": [[p, name_to_json(b), g] for (p, b), g in self.entries.items()]}

    # -- SourceView -----------------------------------------------------
    def lstat(self, gfid: str) -> Stat | None:
        return self.inodes.get(gfid)

    def readlink(self, gfid: str) -> str | None:
        st = self.inodes.get(gfid)
        if st is None or not _stat.S_ISLNK(st.mode):
            return None
        return self.links.get(gfid)

    def entry_gfid(self, pgfid: str, bname: str) -> str | None:
        return self.entries.get((pgfid, bname))

    def dir_entry(self, gfid: str) -> tuple[str, str] | None:
        if self._dirs is None:
            dirs: dict[str, tuple[str, str]] = {}
            inodes = self.inodes
            for key, g in self.entries.items():
                st = inodes.get(g)
                if st is not None and _stat.S_ISDIR(st.mode):
                    dirs[g] = key
            self._dirs = dirs
        return self._dirs.get(gfid)

    def data_path(self, gfid: str) -> str | None:
        return None

    def prefetch(self, gfids: Iterable[str],
                 names: Iterable[tuple[str, str]] = ()) -> "MemoryView":
        """Everything is in memory already: the view itself."""
        return self

    def __repr__(self) -> str:
        return f"MemoryView({len(self.inodes)} inodes, {len(self.entries)} names)"
