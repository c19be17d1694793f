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

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Protocol, runtime_checkable

from ..records import Stat

__all__ = ["SourceView", "SnapshotView", "CountingView", "prefetch_view", "DEFAULT_WORKERS"]

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


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=DEFAULT_WORKERS,
                                       thread_name_prefix="streamsync-prefetch")
        return _POOL


def _resolve_chunk(view: SourceView, gfids: list[str], names: list[tuple[str, str]]):
    out_g = [_stat_and_link(view, g) for g in gfids]
    out_n = [view.entry_gfid(p, b) for p, b in names]
    return out_g, out_n


def prefetch_view(view: SourceView, gfids: Iterable[str],
                  names: Iterable[tuple[str, str]] = (), *,
                  workers: int = DEFAULT_WORKERS) -> SnapshotView:
    """Look up every gfid (lstat, and readlink for symlinks) and every name
    concurrently on ``workers`` threads; return a :class:`SnapshotView`.

    The lookups are split into at most ``workers`` chunks, one task each, so
    the cost of the pool stays small next to fast local lookups while slow
    (remote) ones overlap. Results are identical to direct calls on ``view``;
    exceptions propagate.
    """
    uniq_gfids = list(dict.fromkeys(gfids))
    uniq_names = list(dict.fromkeys(names))
    stats: dict[str, Stat | None] = {}
    links: dict[str, str | None] = {}
    found: dict[tuple[str, str], str | None] = {}
    total = len(uniq_gfids) + len(uniq_names)
    if total == 0:
        return SnapshotView(view, stats, links, found)
    chunks = max(1, min(workers, total))
    if chunks == 1:
        res_g, res_n = _resolve_chunk(view, uniq_gfids, uniq_names)
    else:
        gsize = -(-len(uniq_gfids) // chunks) if uniq_gfids else 0
        nsize = -(-len(uniq_names) // chunks) if uniq_names else 0
        parts = [(uniq_gfids[i * gsize:(i + 1) * gsize] if gsize else [],
                  uniq_names[i * nsize:(i + 1) * nsize] if nsize else [])
                 for i in range(chunks)]
        own = None
        pool = _shared_pool() if workers <= DEFAULT_WORKERS else \
            (own := ThreadPoolExecutor(max_workers=workers))
        try:
            futures = [pool.submit(_resolve_chunk, view, g, n) for g, n in parts if g or n]
            res_g, res_n = [], []
            for fut in futures:
                a, b = fut.result()
                res_g.extend(a)
                res_n.extend(b)
        finally:
            if own is not None:
                own.shutdown(wait=False)
    for g, (st, link) in zip(uniq_gfids, res_g):
        stats[g] = st
        links[g] = link
    for n, g in zip(uniq_names, res_n):
        found[n] = g
    return SnapshotView(view, stats, links, found)


class CountingView:
    """A view over another that counts the lookups reaching it, with an optional cost each.

    For benchmarks (a simulated network round trip per lookup), what-if replays
    (advance a simulated clock) and tests that check how many lookups reach the
    source. ``lstat``, ``readlink``, ``entry_gfid`` and ``dir_entry`` are
    lookups; ``data_path`` is passed through uncounted. Thread-safe.

    >>> from streamsync.views import MemoryView
    >>> base = MemoryView.from_json('{"root": "00000000-0000-0000-0000-000000000001", '
    ...                             '"inodes": {}, "entries": []}')
    >>> v = CountingView(base)
    >>> v.lstat("00000000-0000-0000-0000-000000000001").mode, v.lookups
    (16877, 1)
    """

    def __init__(self, base: SourceView, *, on_lookup=None, workers: int = DEFAULT_WORKERS) -> None:
        self.base = base
        self.on_lookup = on_lookup
        self.workers = workers
        self.lookups = 0
        self._lock = threading.Lock()

    def _tick(self) -> None:
        with self._lock:
            self.lookups += 1
        if self.on_lookup is not None:
            self.on_lookup()

    def lstat(self, gfid: str) -> Stat | None:
        self._tick()
        return self.base.lstat(gfid)

    def readlink(self, gfid: str) -> str | None:
        self._tick()
        return self.base.readlink(gfid)

    def entry_gfid(self, pgfid: str, bname: str) -> str | None:
        self._tick()
        return self.base.entry_gfid(pgfid, bname)

    def dir_entry(self, gfid: str) -> tuple[str, str] | None:
        self._tick()
        return self.base.dir_entry(gfid)

    def data_path(self, gfid: str) -> str | None:
        return self.base.data_path(gfid)

    def prefetch(self, gfids: Iterable[str], names: Iterable[tuple[str, str]] = ()) -> "SnapshotView":
        return prefetch_view(self, gfids, names, workers=self.workers)
