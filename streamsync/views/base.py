"""The :class:`SourceView` protocol and the concurrent prefetch snapshot.

A source view answers the few read-only questions classification asks about
the source (the master brick or volume): the current stat of a gfid, a
symlink's target, which gfid a name holds now, where a directory lives, and
where a file's bytes can be read. No method raises for a missing gfid or name:
it answers ``None``.

Lookups are what costs on a real mount (one network round trip each), so
:func:`prefetch_view` resolves a whole changelog's lookups concurrently on a
thread pool and returns a :class:`SnapshotView` that answers from memory, with
the same results as calling the base view directly.

>>> from streamsync.views import MemoryView
>>> v = MemoryView.from_json({"root": "00000000-0000-0000-0000-000000000001",
...                           "inodes": {}, "entries": []})
>>> snap = prefetch_view(v, ["00000000-0000-0000-0000-000000000001"], workers=2)
>>> snap.lstat("00000000-0000-0000-0000-000000000001").mode == 0o40755
True
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Protocol, runtime_checkable

from ..records import Stat

__all__ = ["SourceView", "SnapshotView", "prefetch_view", "DEFAULT_WORKERS"]

#: threads used by :func:`prefetch_view` unless told otherwise
DEFAULT_WORKERS = 16


@runtime_checkable
class SourceView(Protocol):
    """Read-only facts about the source; every method answers ``None`` when gone."""

    def lstat(self, gfid: str) -> Stat | None:
        """Current stat of the inode (mode with type bits), ``None`` when gone."""

    def readlink(self, gfid: str) -> str | None:
        """Target of a symlink inode; ``None`` when gone or not a symlink."""

    def entry_gfid(self, pgfid: str, bname: str) -> str | None:
        """The gfid the name ``bname`` in directory ``pgfid`` holds now."""

    def dir_entry(self, gfid: str) -> tuple[str, str] | None:
        """A directory's ``(pgfid, bname)``; ``None`` for the root, files and gone gfids."""

    def data_path(self, gfid: str) -> str | None:
        """A local path whose bytes are the file's data (``None`` when not available)."""

    def prefetch(self, gfids: Iterable[str],
                 names: Iterable[tuple[str, str]] = ()) -> "SourceView":
        """A view answering those lookups from a snapshot fetched concurrently."""


class SnapshotView:
    """Answers from prefetched results; anything not prefetched goes to ``base``.

    Built by :func:`prefetch_view`; ``stats``, ``links`` and ``names`` map the
    looked-up keys to exactly what ``base`` answered.
    """

    __slots__ = ("base", "stats", "links", "names")

    def __init__(self, base: SourceView, stats: dict[str, Stat | None],
                 links: dict[str, str | None],
                 names: dict[tuple[str, str], str | None]) -> None:
        self.base = base
        self.stats = stats
        self.links = links
        self.names = names

    def lstat(self, gfid: str) -> Stat | None:
        try:
            return self.stats[gfid]
        except KeyError:
            return self.base.lstat(gfid)

    def readlink(self, gfid: str) -> str | None:
        try:
            return self.links[gfid]
        except KeyError:
            return self.base.readlink(gfid)

    def entry_gfid(self, pgfid: str, bname: str) -> str | None:
        try:
            return self.names[(pgfid, bname)]
        except KeyError:
            return self.base.entry_gfid(pgfid, bname)

    def dir_entry(self, gfid: str) -> tuple[str, str] | None:
        return self.base.dir_entry(gfid)

    def data_path(self, gfid: str) -> str | None:
        return self.base.data_path(gfid)

    def prefetch(self, gfids: Iterable[str],
                 names: Iterable[tuple[str, str]] = ()) -> "SourceView":
        return prefetch_view(self.base, gfids, names)


def _stat_and_link(view: SourceView, gfid: str) -> tuple[Stat | None, str | None]:
    st = view.lstat(gfid)
    if st is not None and (st.mode & 0o170000) == 0o120000:
        return st, view.readlink(gfid)
    return st, None


def prefetch_view(view: SourceView, gfids: Iterable[str],
                  names: Iterable[tuple[str, str]] = (), *,
                  workers: int = DEFAULT_WORKERS) -> SnapshotView:
    """Look up every gfid (lstat, and readlink for symlinks) and every name
    concurrently on ``workers`` threads; return a :class:`SnapshotView`.

    Results are identical to direct calls on ``view``; exceptions propagate.
    """
    uniq_gfids = list(dict.fromkeys(gfids))
    uniq_names = list(dict.fromkeys(names))
    stats: dict[str, Stat | None] = {}
    links: dict[str, str | None] = {}
    found: dict[tuple[str, str], str | None] = {}
    total = len(uniq_gfids) + len(uniq_names)
    if total == 0:
        return SnapshotView(view, stats, links, found)
    if workers <= 1 or total == 1:
        for g in uniq_gfids:
            stats[g], links[g] = _stat_and_link(view, g)
        for n in uniq_names:
            found[n] = view.entry_gfid(*n)
        return SnapshotView(view, stats, links, found)
    with ThreadPoolExecutor(max_workers=min(workers, total)) as pool:
        gfut = pool.map(lambda g: _stat_and_link(view, g), uniq_gfids)
        nfut = pool.map(lambda n: view.entry_gfid(*n), uniq_names)
        for g, (st, link) in zip(uniq_gfids, gfut):
            stats[g] = st
            links[g] = link
        for n, g in zip(uniq_names, nfut):
            found[n] = g
    return SnapshotView(view, stats, links, found)
