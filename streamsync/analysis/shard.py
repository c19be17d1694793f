"""gfid shards of a summary, so its per-gfid state can live on several workers.

A gfid belongs to shard ``int(gfid[:2], 16) % shards`` (:func:`shard_of`), the
same in every process. :func:`read_shard` reads journals as one worker of
``shards`` does: records are built only for its own gfids, and on the way it
notes every rename and every parent gfid, all that it needs to know of the
other shards (:mod:`streamsync.analysis.report`; the Dask report,
:func:`streamsync.analysis.dask.report_dask`, runs one per worker).
:func:`split` cuts a summary already made: every map keyed by a gfid
(``gfid_records``, ``names``, ``renames``... and ``dir_entries``, keyed by the
parent's gfid) by shard, the fields not keyed by a gfid (totals, fops, the
timeline, the lag) to shard 0. Either way nothing is lost: the shards merge back
to the summary of the whole.

>>> from streamsync.analysis import merge_all, summarize_paths
>>> s = summarize_paths("tests/data/gluster-10.3/processed/ascii-delpath-on")
>>> parts = split(s, 3)
>>> sum(len(p.gfid_records) for p in parts) == len(s.gfid_records)
True
>>> merge_all(parts) == s
True
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable, Iterable

from .._gc import paused
from ..decode import SomeRecords, decode_journal_some, is_raw_journal
from ..discover import read_changelog_bytes
from ..errors import JournalError, ParseError
from ..parse import parse_processed_some
from ..escaping import unescape
from ..records import Changelog, Record, Stime
from .summary import Onto, Summary, SummaryBuilder

__all__ = ["split", "shard_of", "prefixes", "read_shard", "summarize_shard",
           "earliest_error", "ShardRead", "GFID_FIELDS"]

#: the summary fields keyed by a gfid (``dir_entries`` by a parent directory's)
GFID_FIELDS = ("gfid_records", "data_changelogs", "gfid_dm", "link_delta", "created",
               "names", "renames", "dir_entries")
_HEX = "0123456789abcdef"
_LAST_36 = itemgetter(slice(-36, None))
_HEAD_FIELDS = ("changelogs", "records", "journal_bytes", "first_ts", "last_ts",
                "pending_changelogs", "pending_records", "pending_bytes")


def shard_of(gfid: str, shards: int) -> int:
    """The shard (``0 <= n < shards``) a gfid's state belongs to; the same in every process.

    >>> shard_of("5b1c2d3e-0000-4000-8000-00000000000a", 2)  # 0x5b is odd
    1
    """
    if len(gfid) >= 2 and gfid[0] in _HEX and gfid[1] in _HEX:
        return int(gfid[:2], 16) % shards
    return zlib.crc32(gfid.encode("utf-8", "surrogateescape")) % shards


def split(s: Summary, shards: int) -> list[Summary]:
    """``shards`` summaries holding ``s``'s per-gfid state by gfid; they merge back to ``s``.

    >>> from streamsync.analysis import summarize_paths
    >>> s = summarize_paths("tests/data/gluster-10.3/processed/ascii-delpath-on")
    >>> a, b = split(s, 2)
    >>> a.records, b.records, len(a.names) + len(b.names) == len(s.names)
    (4472, 0, True)
    """
    if shards < 1:
        raise ValueError(f"shards must be at least 1, not {shards}")
    cut: dict[str, list[dict]] = {}
    for name in GFID_FIELDS:
        parts: list[dict] = [{} for _ in range(shards)]
        for g, v in getattr(s, name).items():
            parts[shard_of(g, shards)][g] = v
        cut[name] = parts
    head: dict[str, Any] = {name: getattr(s, name) for name in _HEAD_FIELDS}
    head.update(types=dict(s.types), fops=dict(s.fops), bucket_changelogs=dict(
        s.bucket_changelogs), buckets={b: dict(c) for b, c in s.buckets.items()})
    return [Summary(bucket=s.bucket, data_stime=s.data_stime, **(head if k == 0 else {}),
                    **{name: cut[name][k] for name in GFID_FIELDS})
            for k in range(shards)]


def prefixes(shard: int, shards: int) -> frozenset[str]:
    """The two-hex-digit gfid prefixes of a shard.

    >>> sorted(prefixes(1, 128))[:3]
    ['01', '81']
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of 0..{shards - 1}")
    return frozenset(a + b for a in _HEX for b in _HEX if int(a + b, 16) % shards == shard)


@dataclass(frozen=True)
class ShardRead:
    """One shard's reading of a set of journals: the summary of its gfids, plus

    * ``onto``: every rename seen on the way, the other shards' too, keyed by
      destination (:func:`~streamsync.analysis.summary.renames_onto`'s shape):
      whether an inode of this shard was renamed over depends on them;
    * ``parents``: every gfid any record names as a parent, the other shards'
      records too (with, at worst, a few strings that are no gfid: an UNLINK's
      path field or an M line's extra text may hold a ``/``): the directories
      whose names the paths need.
    """

    summary: Summary
    onto: Onto
    parents: frozenset[str]


def read_shard(changelogs: Iterable[Changelog], shard: int, shards: int, *,
               bucket: int | str = 3600, data_stime: Stime | int | None = None,
               progress: Callable[[Changelog], None] | None = None) -> ShardRead:
    """Read every journal, keep the state of ``shard``'s gfids (:class:`ShardRead`).

    Records are built only for the shard's gfids (shard 0 also counts the
    journals themselves and checks the lines that name no gfid); a raw journal
    is checked whole by one shard (its position in ``changelogs`` modulo
    ``shards``), a processed one line by line by the shard owning each line,
    so the shards together check everything, as a single reader does, while
    one shard alone does not. The ``shards`` summaries merge to the summary
    of the journals when every shard succeeds; when some fail, the error of
    the earliest journal (and line) is the one a single reader raises
    (:func:`earliest_error`). ``progress`` is called after each journal.

    >>> from streamsync.analysis import merge_all, summarize_paths
    >>> from streamsync.discover import discover
    >>> corpus = "tests/data/gluster-10.3/raw/ascii-delpath-on"
    >>> reads = [read_shard(discover(corpus), k, 3) for k in range(3)]
    >>> whole = summarize_paths(corpus)
    >>> merge_all(r.summary for r in reads) == whole
    True
    >>> reads[0].onto == reads[2].onto, reads[1].parents == set(whole.dir_entries)
    (True, True)
    """
    b = SummaryBuilder(bucket=bucket, data_stime=data_stime)
    first = shard == 0
    keep = prefixes(shard, shards)
    onto: Onto = {}
    parents: set[str] = set()
    with paused():  # no cycles (summary.summarize)
        for n, c in enumerate(changelogs):
            data = read_changelog_bytes(c)
            where = c.where
            if is_raw_journal(data):
                # checked whole by one shard, the others trust it (check=False)
                some = decode_journal_some(data, keep, path=where,
                                           check=n % shards == shard)
                records = _raw_some(some, c.ts, onto, parents)
            else:
                # a parent is the 36 characters before a "/" (a name has none)
                chunks = data.split(b"/")
                chunks.pop()
                parents.update(map(_LAST_36, chunks))
                text = data.decode("utf-8", "surrogateescape")
                _renames_in(text, c.ts, onto)
                records = parse_processed_some(text, keep, path=where, strays=first)
            b.add_records(c, records, journal=first)
            if progress is not None:
                progress(c)
    return ShardRead(b.freeze(), onto, frozenset(
        p if isinstance(p, str) else p.decode("utf-8", "surrogateescape") for p in parents))


def summarize_shard(changelogs: Iterable[Changelog], shard: int, shards: int, *,
                    bucket: int | str = 3600,
                    data_stime: Stime | int | None = None) -> Summary:
    """The summary of the records of ``changelogs`` whose gfid is in ``shard``
    (:func:`read_shard`'s summary).

    >>> from streamsync.analysis import merge_all, summarize_paths
    >>> from streamsync.discover import discover
    >>> js = list(discover("tests/data/gluster-10.3/processed/ascii-delpath-on"))
    >>> merge_all(summarize_shard(js, k, 3) for k in range(3)) == summarize_paths(
    ...     "tests/data/gluster-10.3/processed/ascii-delpath-on")
    True
    """
    return read_shard(changelogs, shard, shards, bucket=bucket, data_stime=data_stime).summary


def earliest_error(errors: Iterable[JournalError | ParseError],
                   changelogs: Iterable[Changelog]) -> JournalError | ParseError:
    """Of the errors the shards of one read raised, the one a single reader raises:
    the earliest journal's (in ``changelogs`` order), its first line or byte.

    Every error a shard raises is real (a shard trusts only journals another
    shard checks) and each shard stops at its first, so nothing stops the shard
    that checks the single reader's error before it raises it, and nothing
    raised is earlier.

    >>> from streamsync.records import Changelog
    >>> js = [Changelog("CHANGELOG.1", 1, 9), Changelog("CHANGELOG.2", 2, 9)]
    >>> late, early = ParseError("x", path="CHANGELOG.2", line=1), ParseError("y", path="CHANGELOG.1", line=7)
    >>> earliest_error([late, early], js) is early
    True
    """
    order: dict[str, int] = {}
    for n, c in enumerate(changelogs):
        order.setdefault(c.where, n)
    unknown = len(order)

    def position(exc: JournalError | ParseError) -> tuple[int, int]:
        at = exc.line if isinstance(exc, ParseError) else exc.offset
        return order.get(exc.path, unknown), at
    return min(errors, key=position)


def _raw_some(some: SomeRecords, ts: int, onto: Onto, parents: set
              ) -> list[tuple[int, Record]]:
    """The shard's ``(index, record)`` pairs of a raw journal; every rename goes to
    ``onto``, every entry record's parents to ``parents``."""
    parents.update(some.parents)
    for i, g, p1, b1 in some.renames:
        onto.setdefault((p1, b1), []).append((ts, i, g))
    return some.records


def _renames_in(text: str, ts: int, onto: Onto) -> None:
    """Every rename of a processed journal's text, whoever's gfid: a line
    ``E <gfid> RENAME <p>/<b> <p1>/<b1>`` (whether it is valid is for the shard
    owning it to say; found by ``str.find``, most lines are never looked at)."""
    find = text.find
    at = find(" RENAME ")
    line = 0
    counted = 0
    while at >= 0:
        start = text.rfind("\n", 0, at) + 1
        end = find("\n", at)
        if end < 0:
            end = len(text)
        line += text.count("\n", counted, start)
        counted = start
        if at - start == 38 and text.startswith("E ", start):
            fields = text[at + 8:end].split(" ")
            if len(fields) == 2 and fields[1][36:37] == "/":
                f1 = fields[1]
                onto.setdefault((f1[:36], unescape(f1[37:])), []).append(
                    (ts, line, text[start + 2:at]))
        at = find(" RENAME ", end)
