"""Mergeable summaries of changelog history.

A :class:`Summary` is an immutable value describing a set of journals: counts
per record type and fop (``D`` counted as ``DATA``), per time bucket, per
directory, per gfid, creations and name removals (create-then-delete churn),
data re-sends (files written in many changelogs), rename chains and the lag
behind a data stime.

Summaries form a commutative monoid: :func:`merge` is associative and
commutative, and ``Summary.empty(...)`` is its identity, so partial results over
any split of the input (per file, per directory, per Dask partition) combine to
exactly the summary of the whole. Everything that depends on the *order* of
events (the latest name of a gfid, the sequence of renames) is keyed by
``(ts, seq)`` so merging picks the same answer whatever the split.

>>> from streamsync.records import Changelog, DataRecord, EntryRecord, ROOT_GFID
>>> g = "5b1c2d3e-0000-4000-8000-00000000000a"
>>> a = summarize_changelog(Changelog("CHANGELOG.1700000000", 1700000000, 10),
...     [EntryRecord(g, "CREATE", ROOT_GFID, "f", 33188, 0, 0), DataRecord(g)])
>>> b = summarize_changelog(Changelog("CHANGELOG.1700000015", 1700000015, 10),
...     [DataRecord(g)])
>>> s = merge(a, b)
>>> s.changelogs, s.records, s.fops, s.data_changelogs[g]
(2, 3, {'CREATE': 1, 'DATA': 2}, 2)
>>> merge(s, Summary.empty()) == s
True
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ..records import Changelog, Record, Stime
from .._gc import paused

__all__ = [
    "Summary",
    "SummaryBuilder",
    "merge",
    "merge_all",
    "summarize_changelog",
    "summarize",
    "summarize_paths",
    "summarize_journals",
    "parse_duration",
    "renames_onto",
    "overwritten_among",
    "gone_among",
    "top_items",
    "NEW_FOPS",
    "REMOVE_FOPS",
]

#: fops that bring a new inode into the namespace
NEW_FOPS = frozenset({"CREATE", "MKNOD", "MKDIR", "SYMLINK"})
#: fops that remove a name
REMOVE_FOPS = frozenset({"UNLINK", "RMDIR"})
_NAMING = NEW_FOPS | {"LINK"}

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int) -> int:
    """Seconds of a duration like ``"90"``, ``"15m"``, ``"1h"``, ``"2d"``.

    >>> parse_duration("1h"), parse_duration("90"), parse_duration(30)
    (3600, 90, 30)
    """
    if isinstance(text, int):
        value = text
    else:
        t = text.strip().lower()
        mult = 1
        if t and t[-1] in _UNITS:
            mult = _UNITS[t[-1]]
            t = t[:-1]
        if not t.isdigit():
            raise ValueError(f"not a duration: {text!r} (use e.g. 30, 15m, 1h, 2d)")
        value = int(t) * mult
    if value <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return value


def _add_into(mine: dict, other: Mapping[Any, int]) -> None:
    """``mine += other`` key by key, dropping keys whose sum is 0. Keys only one side
    has (most gfids of two journal sets) are copied by ``dict.update``, in C."""
    common = mine.keys() & other.keys()
    if not common:
        mine.update(other)
        return
    sums = [(k, mine[k] + other[k]) for k in common]
    mine.update(other)
    for k, v in sums:
        if v:
            mine[k] = v
        else:
            del mine[k]


def _merge_into(mine: dict, other: Mapping, pick: Callable[[Any, Any], Any]) -> None:
    """``mine[k] = pick(mine[k], other[k])`` where both have ``k``, else ``other[k]``
    (keys only ``other`` has are copied by ``dict.update``, in C)."""
    picked = [(k, pick(mine[k], other[k])) for k in mine.keys() & other.keys()]
    mine.update(other)
    mine.update(picked)


def _add_counts(a: Mapping[Any, int], b: Mapping[Any, int]) -> dict[Any, int]:
    if len(a) < len(b):
        a, b = b, a
    out = dict(a)
    _add_into(out, b)
    return {k: v for k, v in out.items() if v} if 0 in out.values() else out


def _merge_nested(a: Mapping[Any, Mapping[Any, int]], b: Mapping[Any, Mapping[Any, int]]):
    out = {k: dict(v) for k, v in a.items()}
    for k, v in b.items():
        out[k] = _add_counts(out[k], v) if k in out else dict(v)
    return out


def _merge_with(a: Mapping, b: Mapping, pick: Callable[[Any, Any], Any]) -> dict:
    if len(a) < len(b):
        a, b = b, a
    out = dict(a)
    _merge_into(out, b, pick)
    return out


def _merge_sorted(x: tuple, y: tuple) -> tuple:
    return tuple(heapq.merge(x, y))


def _opt(fn, a, b):
    if a is None:
        return b
    if b is None:
        return a
    return fn(a, b)



def _n(count: int, noun: str) -> str:
    """``1 changelog``, ``2 changelogs``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


#: rename destinations: ``(pgfid1, bname1) -> [(ts, seq, gfid), ...]``
Onto = dict[tuple[str, str], list[tuple[int, int, str]]]


def renames_onto(renames: Mapping[str, Iterable[tuple[int, int, str, str, str, str]]]) -> Onto:
    """Rename destinations: ``(pgfid1, bname1) -> [(ts, seq, gfid), ...]``.

    >>> renames_onto({"g": ((5, 0, "p", "a", "p", "b"),)})
    {('p', 'b'): [(5, 0, 'g')]}
    """
    onto: Onto = {}
    for g, rs in renames.items():
        for ts, seq, _p, _b, p1, b1 in rs:
            onto.setdefault((p1, b1), []).append((ts, seq, g))
    return onto


def overwritten_among(s: "Summary", onto: Onto) -> set[str]:
    """The gfids of ``s.names`` that lost a name to a rename in ``onto`` of another gfid.

    ``onto`` may hold renames from beyond ``s`` (every shard of a summary split
    by gfid checks its own names against the renames of all shards).

    >>> g, h = "5b1c2d3e-0000-4000-8000-00000000000a", "5b1c2d3e-0000-4000-8000-00000000000b"
    >>> s = Summary(names={g: (1, 0, "p", "a")}, created={g: (1, 0, "p", "a")})
    >>> overwritten_among(s, {("p", "a"): [(2, 0, h)]}), overwritten_among(s, {})
    ({'5b1c2d3e-0000-4000-8000-00000000000a'}, set())
    """
    if not onto:
        return set()
    never = (-1 << 62, 0)
    forever = (1 << 62, 0)
    out = set()
    renames = s.renames
    targets = {b for _p, b in onto}
    for g, (ts, seq, p, b) in s.names.items():
        if b not in targets or renames.get(g):
            continue
        # one name held since (ts, seq): the common case
        cands = onto.get((p, b))
        if cands is not None and any(g2 != g and (ts, seq) < (t2, s2) for t2, s2, g2 in cands):
            out.add(g)
    names = s.names
    for g, rs in renames.items():
        latest = names.get(g)
        if not rs or latest is None:
            continue
        held = _names_held(rs, s.created.get(g), latest, never, forever)
        for name, start, end in held:
            if any(g2 != g and start < (t2, s2) < end for t2, s2, g2 in onto.get(name, ())):
                out.add(g)
                break
    return out


def gone_among(s: "Summary", onto: Onto) -> list[str]:
    """The gfids ``s`` saw created that have no name left at the end, given every
    rename onto each name (``onto``, possibly from beyond ``s``); unsorted.

    >>> g = "5b1c2d3e-0000-4000-8000-00000000000a"
    >>> gone_among(Summary(created={g: (1, 0, "p", "a")}, names={g: (1, 0, "p", "a")},
    ...                    link_delta={g: 1}), {})
    []
    """
    overwritten = overwritten_among(s, onto)
    delta = s.link_delta.get
    return [g for g in s.created if delta(g, 0) - (g in overwritten) <= 0]


def top_items(counter: Mapping[str, int], n: int = 20) -> list[tuple[str, int]]:
    """The ``n`` largest entries of a counter, ties broken by key (deterministic).

    >>> top_items({"a": 1, "b": 3, "c": 3}, 2)
    [('b', 3), ('c', 3)]
    """
    return heapq.nsmallest(n, counter.items(), key=lambda kv: (-kv[1], kv[0]))


def _names_held(rs, born, latest, never, forever):
    """``(name, from, until)`` for each name a renamed gfid held."""
    first = (rs[0][0], rs[0][1])
    held = [((rs[0][2], rs[0][3]), never, first)]
    if born is not None and (born[2], born[3]) != (rs[0][2], rs[0][3]):
        held.append(((born[2], born[3]), (born[0], born[1]), first))
    for i, r in enumerate(rs):
        end = (rs[i + 1][0], rs[i + 1][1]) if i + 1 < len(rs) else forever
        held.append(((r[4], r[5]), (r[0], r[1]), end))
    if (latest[0], latest[1]) > (rs[-1][0], rs[-1][1]):
        held.append(((latest[2], latest[3]), (latest[0], latest[1]), forever))  # a later LINK
    return held


@dataclass(frozen=True)
class Summary:
    """What a set of journals did. Treat as immutable; combine with :func:`merge`.

    Configuration (must be equal to merge): ``bucket`` (seconds per time
    bucket) and ``data_stime`` (the replica's data sync point, for lag; ``None``
    when unknown).

    Counters (``fop -> n``, ``gfid -> n``...) hold no zero entries.

    * ``fops``: every E and M fop by name, D records as ``"DATA"``;
    * ``types``: ``{"E": n, "D": n, "M": n}``;
    * ``buckets``: ``bucket start -> {fop: n}``; ``bucket_changelogs``: journals per bucket;
    * ``dir_entries``: parent gfid -> entry records naming something in it
      (a RENAME counts in both directories);
    * ``gfid_records``: gfid -> records about it; ``gfid_dm``: gfid -> its D and M records;
    * ``data_changelogs``: gfid -> journals with a ``D`` record for it (what
      gsyncd re-sends: each such journal queues the file again);
    * ``link_delta``: gfid -> names gained minus names removed (CREATE, MKNOD,
      MKDIR, SYMLINK, LINK: +1; UNLINK, RMDIR: -1);
    * ``created``: gfid -> ``(ts, seq, pgfid, bname)`` of its creation record;
    * ``names``: gfid -> ``(ts, seq, pgfid, bname)`` of its latest naming event
      (creation, LINK, RENAME destination);
    * ``renames``: gfid -> sorted ``(ts, seq, pgfid, bname, pgfid1, bname1)``;
    * ``pending_*``: journals with ``ts >= data_stime`` (what a worker would still process).
    """

    bucket: int = 3600
    data_stime: int | None = None
    changelogs: int = 0
    records: int = 0
    journal_bytes: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    types: dict[str, int] = field(default_factory=dict)
    fops: dict[str, int] = field(default_factory=dict)
    buckets: dict[int, dict[str, int]] = field(default_factory=dict)
    bucket_changelogs: dict[int, int] = field(default_factory=dict)
    dir_entries: dict[str, int] = field(default_factory=dict)
    gfid_records: dict[str, int] = field(default_factory=dict)
    data_changelogs: dict[str, int] = field(default_factory=dict)
    gfid_dm: dict[str, int] = field(default_factory=dict)
    link_delta: dict[str, int] = field(default_factory=dict)
    created: dict[str, tuple[int, int, str, str]] = field(default_factory=dict)
    names: dict[str, tuple[int, int, str, str]] = field(default_factory=dict)
    renames: dict[str, tuple[tuple[int, int, str, str, str, str], ...]] = field(default_factory=dict)
    pending_changelogs: int = 0
    pending_records: int = 0
    pending_bytes: int = 0

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def empty(cls, *, bucket: int | str = 3600, data_stime: Stime | int | None = None) -> "Summary":
        """The identity of :func:`merge` for this configuration."""
        return cls(bucket=parse_duration(bucket), data_stime=_stime_sec(data_stime))

    # ------------------------------------------------------------------ derived views
    def __repr__(self) -> str:
        """Short: the sizes, not the per-gfid maps (which can hold millions of entries)."""
        span = (f"{self.first_ts}..{self.last_ts}" if self.first_ts is not None else "empty")
        return (f"Summary({_n(self.changelogs, 'changelog')}, {_n(self.records, 'record')}, "
                f"{_n(len(self.gfid_records), 'gfid')}, ts {span}, bucket={self.bucket}s)")

    def _repr_html_(self) -> str:
        """A small table for notebooks: totals and the busiest fops."""
        from html import escape
        rows = [("changelogs", self.changelogs), ("records", self.records),
                ("journal bytes", self.journal_bytes), ("gfids", len(self.gfid_records)),
                ("first ts", self.first_ts), ("last ts", self.last_ts),
                ("pending changelogs", self.pending_changelogs)]
        rows += [(f"fop {k}", v) for k, v in self.top(self.fops, 8)]
        body = "".join(f"<tr><th style='text-align:left'>{escape(str(k))}</th>"
                       f"<td>{escape(str(v))}</td></tr>" for k, v in rows)
        return f"<table><caption>Summary</caption>{body}</table>"

    def top(self, counter: Mapping[str, int], n: int = 20) -> list[tuple[str, int]]:
        """The ``n`` largest entries of a counter, ties broken by key (deterministic)."""
        return top_items(counter, n)

    def hot_files(self, n: int = 20) -> list[tuple[str, int]]:
        """gfids written in the most journals: ``[(gfid, journals), ...]``."""
        return self.top(self.data_changelogs, n)

    def resends(self) -> int:
        """Data transfers beyond the first per file: sum of ``journals - 1`` over written gfids."""
        return sum(self.data_changelogs.values()) - len(self.data_changelogs)

    def created_then_deleted(self) -> list[str]:
        """gfids created inside the window that have no name left at its end (sorted).

        A gfid loses a name by UNLINK/RMDIR, or when another gfid is renamed onto
        its latest name (no UNLINK is journaled for the replaced inode). Hard
        links are counted (CREATE/LINK +1, UNLINK/RMDIR -1); an overwrite of an
        older hard-link name is not seen.
        """
        return sorted(gone_among(self, renames_onto(self.renames)))

    def overwritten(self) -> set[str]:
        """gfids that lost a name to a RENAME of another gfid onto it.

        Each name a gfid held (its creation name, then each rename destination)
        is checked against the renames of other gfids onto that name while it
        was held.
        """
        return overwritten_among(self, renames_onto(self.renames))

    def wasted_records(self, gone: Iterable[str] | None = None) -> int:
        """Records spent on inodes created and gone inside the window (work a replica
        undoes); ``gone``: :meth:`created_then_deleted` when already known."""
        gr = self.gfid_records
        return sum(gr.get(g, 0) for g in (self.created_then_deleted() if gone is None
                                          else gone))

    def rename_chains(self, n: int = 20, *, min_length: int = 2) -> list[tuple[str, int]]:
        """gfids renamed at least ``min_length`` times, longest first: ``[(gfid, renames)]``."""
        counts = {g: len(r) for g, r in self.renames.items() if len(r) >= min_length}
        return self.top(counts, n)

    def lag(self) -> dict[str, Any] | None:
        """Replication lag behind ``data_stime``: seconds, journals, records, bytes pending."""
        if self.data_stime is None:
            return None
        seconds = 0 if self.last_ts is None else max(0, self.last_ts - self.data_stime)
        return {"data_stime": self.data_stime, "seconds": seconds,
                "changelogs": self.pending_changelogs, "records": self.pending_records,
                "bytes": self.pending_bytes}

    def transfer_estimate(self, view: Any, *, default_size: int | None = None) -> dict[str, int]:
        """Bytes the data phase would move, sizes from a source view's ``data_path``.

        ``files``/``bytes``: each written gfid still on the source, once (what one
        big batch sends); ``bytes_per_changelog``: each file once per journal that
        wrote it (the upper bound when every journal is its own batch);
        ``gone``: written gfids the source no longer has (nothing to send);
        ``unsized``: present files whose size the view cannot tell (counted as
        ``default_size`` when given, else 0).
        """
        files = nbytes = per_changelog = gone = unsized = 0
        for g, n in self.data_changelogs.items():
            if view.lstat(g) is None:
                gone += 1
                continue
            path = view.data_path(g)
            size = None
            if path is not None:
                try:
                    size = os.stat(path).st_size
                except OSError:
                    size = None
            if size is None:
                unsized += 1
                size = default_size or 0
            files += 1
            nbytes += size
            per_changelog += size * n
        return {"files": files, "bytes": nbytes, "bytes_per_changelog": per_changelog,
                "gone": gone, "unsized": unsized}

    def parents(self) -> dict[str, str]:
        """gfid -> parent gfid of its latest known name (from the journals alone)."""
        return {g: v[2] for g, v in self.names.items()}

    def dir_activity(self) -> dict[str, int]:
        """Directory gfid -> records about it: entry records naming something in it plus
        D/M records of its children whose name the journals know."""
        out = dict(self.dir_entries)
        names = self.names
        for g, n in self.gfid_dm.items():
            v = names.get(g)
            if v is not None:
                out[v[2]] = out.get(v[2], 0) + n
        return out

    def to_dict(self, *, top: int = 20, paths: Callable[[str], str] | None = None) -> dict[str, Any]:
        """A JSON-safe report (orjson), the shape ``streamsync analyze --json`` prints
        (:func:`streamsync.analysis.report.report` of this summary).

        ``paths`` maps a gfid to a display path (e.g. a :class:`~streamsync.analysis.resolve.Resolver`).
        """
        from .report import report
        return report([self], top, paths)


def _stime_sec(value: Stime | int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        return int(value[0])
    return int(value)


# fields merged by adding counters
_COUNTER_FIELDS = ("types", "fops", "bucket_changelogs", "dir_entries", "gfid_records",
                   "data_changelogs", "gfid_dm", "link_delta")
_SUM_FIELDS = ("changelogs", "records", "journal_bytes", "pending_changelogs",
               "pending_records", "pending_bytes")


def merge(a: Summary, b: Summary) -> Summary:
    """The summary of both inputs. Associative and commutative; ``Summary.empty()`` is neutral.

    Raises ``ValueError`` when the two were made with different ``bucket`` or ``data_stime``.

    Any split of the journals merges to the summary of them all:

    >>> from streamsync.discover import discover
    >>> journals = list(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))
    >>> a, b = summarize_journals(journals[:10]), summarize_journals(journals[10:])
    >>> a
    Summary(10 changelogs, 320 records, 160 gfids, ts 1795467001..1795467043, bucket=3600s)
    >>> merge(a, b) == summarize_journals(journals) == merge(b, a)
    True
    """
    if a.bucket != b.bucket or a.data_stime != b.data_stime:
        raise ValueError(f"cannot merge summaries with different configuration: "
                         f"bucket {a.bucket}/{b.bucket}, data_stime {a.data_stime}/{b.data_stime}")
    kw: dict[str, Any] = {"bucket": a.bucket, "data_stime": a.data_stime}
    for name in _SUM_FIELDS:
        kw[name] = getattr(a, name) + getattr(b, name)
    for name in _COUNTER_FIELDS:
        kw[name] = _add_counts(getattr(a, name), getattr(b, name))
    kw["first_ts"] = _opt(min, a.first_ts, b.first_ts)
    kw["last_ts"] = _opt(max, a.last_ts, b.last_ts)
    kw["buckets"] = _merge_nested(a.buckets, b.buckets)
    kw["created"] = _merge_with(a.created, b.created, min)
    kw["names"] = _merge_with(a.names, b.names, max)
    kw["renames"] = _merge_with(a.renames, b.renames, _merge_sorted)
    return Summary(**kw)


def merge_all(summaries: Iterable[Summary], *, bucket: int | str = 3600,
              data_stime: Stime | int | None = None) -> Summary:
    """Merge many summaries (in place on a builder: linear, not quadratic).

    >>> from streamsync.discover import discover
    >>> journals = list(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))
    >>> parts = [summarize_journals(journals[i:i + 5]) for i in range(0, len(journals), 5)]
    >>> merge_all(parts) == summarize_journals(journals)
    True
    """
    builder = SummaryBuilder(bucket=bucket, data_stime=data_stime)
    for s in summaries:
        builder.update(s)
    return builder.freeze()


class SummaryBuilder:
    """A mutable accumulator producing a :class:`Summary` (the fast path for streams).

    >>> from streamsync.records import Changelog, DataRecord, ROOT_GFID
    >>> b = SummaryBuilder(bucket="1h")
    >>> b.add_changelog(Changelog("CHANGELOG.7200", 7200, 1), [DataRecord(ROOT_GFID)])
    >>> b.freeze().buckets
    {7200: {'DATA': 1}}
    """

    def __init__(self, *, bucket: int | str = 3600, data_stime: Stime | int | None = None) -> None:
        self.bucket = parse_duration(bucket)
        self.data_stime = _stime_sec(data_stime)
        self.changelogs = self.records = self.journal_bytes = 0
        self.pending_changelogs = self.pending_records = self.pending_bytes = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.types: dict[str, int] = {}
        self.fops: dict[str, int] = {}
        self.buckets: dict[int, dict[str, int]] = {}
        self.bucket_changelogs: dict[int, int] = {}
        self.dir_entries: dict[str, int] = {}
        self.gfid_records: dict[str, int] = {}
        self.gfid_dm: dict[str, int] = {}
        self.data_changelogs: dict[str, int] = {}
        self.link_delta: dict[str, int] = {}
        self.created: dict[str, tuple[int, int, str, str]] = {}
        self.names: dict[str, tuple[int, int, str, str]] = {}
        self.renames: dict[str, list[tuple[int, int, str, str, str, str]]] = {}

    def add_changelog(self, changelog: Changelog, records: Iterable[Record]) -> None:
        """Account one journal and its records (in file order)."""
        self.add_records(changelog, enumerate(records))

    def add_records(self, changelog: Changelog, records: Iterable[tuple[int, Record]], *,
                    journal: bool = True) -> None:
        """Account ``(index in the journal, record)`` pairs of one journal, in file order:
        all of its records, or some of them (a gfid shard,
        :func:`streamsync.analysis.shard.summarize_shard`). ``journal``: also count
        the journal itself (once per journal over all shards).

        >>> from streamsync.records import DataRecord, ROOT_GFID
        >>> b = SummaryBuilder()
        >>> b.add_records(Changelog("CHANGELOG.7200", 7200, 1), [(4, DataRecord(ROOT_GFID))],
        ...               journal=False)
        >>> b.changelogs, b.records
        (0, 1)
        """
        with paused():  # no cycles: the collector would re-scan the state so far (1.1x)
            self._add_records(changelog, records, journal)

    def _add_records(self, changelog: Changelog, records: Iterable[tuple[int, Record]],
                     journal: bool) -> None:
        ts = changelog.ts
        bstart = ts - ts % self.bucket
        if journal:
            self.changelogs += 1
            self.journal_bytes += changelog.size
            if self.first_ts is None or ts < self.first_ts:
                self.first_ts = ts
            if self.last_ts is None or ts > self.last_ts:
                self.last_ts = ts
            self.bucket_changelogs[bstart] = self.bucket_changelogs.get(bstart, 0) + 1
        local: dict[str, int] = {}
        gfid_records = self.gfid_records
        gfid_dm = self.gfid_dm
        dir_entries = self.dir_entries
        link_delta = self.link_delta
        names = self.names
        written: set[str] = set()
        n = n_e = n_m = 0
        for seq, rec in records:
            n += 1
            g = rec.gfid
            gfid_records[g] = gfid_records.get(g, 0) + 1
            t = rec.TYPE
            if t == "D":
                local["DATA"] = local.get("DATA", 0) + 1
                written.add(g)
                gfid_dm[g] = gfid_dm.get(g, 0) + 1
                continue
            fop = rec.fop  # type: ignore[union-attr]
            local[fop] = local.get(fop, 0) + 1
            if t == "M":
                n_m += 1
                gfid_dm[g] = gfid_dm.get(g, 0) + 1
                continue
            n_e += 1
            p = rec.pgfid  # type: ignore[union-attr]
            dir_entries[p] = dir_entries.get(p, 0) + 1
            if fop in _NAMING:
                link_delta[g] = link_delta.get(g, 0) + 1
                key = (ts, seq, p, rec.bname)  # type: ignore[union-attr]
                old = names.get(g)
                if old is None or key > old:
                    names[g] = key
                if fop != "LINK":
                    old_c = self.created.get(g)
                    if old_c is None or key < old_c:
                        self.created[g] = key
            elif fop in REMOVE_FOPS:
                link_delta[g] = link_delta.get(g, 0) - 1
            elif fop == "RENAME":
                p1 = rec.pgfid1  # type: ignore[union-attr]
                b1 = rec.bname1  # type: ignore[union-attr]
                if p1 != p:
                    dir_entries[p1] = dir_entries.get(p1, 0) + 1
                key = (ts, seq, p1, b1)
                old = names.get(g)
                if old is None or key > old:
                    names[g] = key
                self.renames.setdefault(g, []).append((ts, seq, p, rec.bname, p1, b1))  # type: ignore
        self.records += n
        for g in written:
            self.data_changelogs[g] = self.data_changelogs.get(g, 0) + 1
        types = self.types
        fops = self.fops
        if local:
            bucket = self.buckets.setdefault(bstart, {})
            for fop, c in local.items():
                fops[fop] = fops.get(fop, 0) + c
                bucket[fop] = bucket.get(fop, 0) + c
        for key, c in (("E", n_e), ("D", n - n_e - n_m), ("M", n_m)):
            if c:
                types[key] = types.get(key, 0) + c
        if self.data_stime is not None and ts >= self.data_stime:
            self.pending_records += n
            if journal:
                self.pending_changelogs += 1
                self.pending_bytes += changelog.size

    def update(self, s: Summary) -> None:
        """Merge a finished summary into this builder (same configuration)."""
        if s.bucket != self.bucket or s.data_stime != self.data_stime:
            raise ValueError("cannot merge summaries with different configuration")
        for name in _SUM_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(s, name))
        self.first_ts = _opt(min, self.first_ts, s.first_ts)
        self.last_ts = _opt(max, self.last_ts, s.last_ts)
        for name in _COUNTER_FIELDS:
            _add_into(getattr(self, name), getattr(s, name))
        for b, counts in s.buckets.items():
            mine = self.buckets.setdefault(b, {})
            for k, v in counts.items():
                mine[k] = mine.get(k, 0) + v
        _merge_into(self.created, s.created, min)
        _merge_into(self.names, s.names, max)
        for g, rs in s.renames.items():
            self.renames.setdefault(g, []).extend(rs)

    def freeze(self) -> Summary:
        """The immutable :class:`Summary` of everything added so far."""
        return Summary(
            bucket=self.bucket, data_stime=self.data_stime, changelogs=self.changelogs,
            records=self.records, journal_bytes=self.journal_bytes, first_ts=self.first_ts,
            last_ts=self.last_ts, types=dict(self.types), fops=dict(self.fops),
            buckets={b: dict(c) for b, c in self.buckets.items() if c},
            bucket_changelogs=dict(self.bucket_changelogs),
            dir_entries={k: v for k, v in self.dir_entries.items() if v},
            gfid_records=dict(self.gfid_records),
            data_changelogs=dict(self.data_changelogs),
            link_delta={k: v for k, v in self.link_delta.items() if v},
            created=dict(self.created), names=dict(self.names),
            renames={g: tuple(sorted(r)) for g, r in self.renames.items()},
            pending_changelogs=self.pending_changelogs, pending_records=self.pending_records,
            pending_bytes=self.pending_bytes, gfid_dm=dict(self.gfid_dm))


def summarize_changelog(changelog: Changelog, records: Iterable[Record], *,
                        bucket: int | str = 3600,
                        data_stime: Stime | int | None = None) -> Summary:
    """The summary of one journal's records.

    >>> from streamsync.discover import discover, read_changelog
    >>> journal = list(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))[2]
    >>> summarize_changelog(journal, read_changelog(journal))
    Summary(1 changelog, 31 records, 16 gfids, ts 1795467011..1795467011, bucket=3600s)
    """
    b = SummaryBuilder(bucket=bucket, data_stime=data_stime)
    b.add_changelog(changelog, records)
    return b.freeze()


def summarize(pairs: Iterable[tuple[Changelog, Iterable[Record]]], *,
              bucket: int | str = 3600, data_stime: Stime | int | None = None,
              progress: Callable[[Changelog], None] | None = None) -> Summary:
    """The summary of ``(changelog, records)`` pairs (streaming; one pass).

    ``progress`` is called after each journal (e.g. to draw a progress bar).

    >>> from streamsync.discover import discover, read_changelog
    >>> journals = discover("tests/data/gluster-10.3/raw/ascii-delpath-on")
    >>> s = summarize((j, read_changelog(j)) for j in journals)
    >>> s.changelogs, s.records, s.top(s.fops, 2)
    (34, 4472, [('DATA', 2054), ('CREATE', 2020)])
    """
    b = SummaryBuilder(bucket=bucket, data_stime=data_stime)
    with paused():  # the state grows by the journal and makes no cycles (1.1x)
        for changelog, records in pairs:
            b.add_changelog(changelog, records)
            if progress is not None:
                progress(changelog)
        return b.freeze()


def summarize_journals(changelogs: Iterable[Changelog], *, bucket: int | str = 3600,
                       data_stime: Stime | int | None = None,
                       progress: Callable[[Changelog], None] | None = None) -> Summary:
    """Read and summarise journals (each read with the library's journal reader).

    >>> from streamsync.discover import discover
    >>> summarize_journals(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"), bucket="10s")
    Summary(34 changelogs, 4472 records, 2076 gfids, ts 1795467001..1795467081, bucket=10s)
    """
    from ._input import read_records
    return summarize(((c, read_records(c)) for c in changelogs), bucket=bucket,
                     data_stime=data_stime, progress=progress)


def summarize_paths(paths: Iterable[str | os.PathLike] | str | os.PathLike, *,
                    bucket: int | str = 3600,
                    data_stime: Stime | int | None = None,
                    progress: Callable[[Changelog], None] | None = None) -> Summary:
    """Summarise every journal under ``paths`` (files, changelog directories, bricks).

    >>> s = summarize_paths(["tests/data/gluster-10.3/processed/ascii-delpath-on"])
    >>> s.changelogs, s.fops["MKDIR"]
    (34, 49)
    >>> summarize_paths("tests/data/gluster-10.3/processed/ascii-delpath-on").changelogs  # one path
    34
    """
    from ._input import iter_journals
    return summarize_journals(iter_journals(paths), bucket=bucket, data_stime=data_stime,
                              progress=progress)
