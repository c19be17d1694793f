"""The analysis report (``streamsync analyze``), from a summary or from its gfid shards.

Besides totals, the report needs facts that span gfids: the busiest
directories (a file's D and M records count in its parent), the top files,
which created inodes are gone at the end (an inode also loses its name when
another is renamed onto it) and the paths of what it shows. Each shard of a
summary (:mod:`streamsync.analysis.shard`, one per worker) computes its
:class:`ShardPart` where it is, given two things about all shards that every
reader of the journals sees anyway: every rename onto each name, and the
gfids named as parents. :func:`assemble` adds the parts up; nothing per gfid
travels but the names of the directories and of the top entries.

A whole summary is its own single shard: :meth:`Summary.to_dict` is
:func:`report` of ``[summary]``.

>>> from streamsync.analysis import summarize_paths
>>> from streamsync.analysis.shard import split
>>> s = summarize_paths("tests/data/gluster-10.3/processed/ascii-delpath-on")
>>> report(split(s, 4)) == report([s]) == s.to_dict()
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, Sequence

from .summary import Onto, Summary, gone_among, merge_all, renames_onto, top_items

__all__ = ["ShardPart", "shard_part", "assemble", "report"]

_HEAD = ("changelogs", "records", "journal_bytes", "first_ts", "last_ts", "types", "fops",
         "buckets", "bucket_changelogs", "pending_changelogs", "pending_records",
         "pending_bytes")


@dataclass(frozen=True)
class ShardPart:
    """One shard's share of the report: small (no per-gfid map but ``dirs``, one entry
    per directory, and ``names``, the latest names of the directories and top
    entries the shard holds)."""

    head: Summary
    gfids: int
    created: int
    written: int
    resends: int
    renamed: int
    gone: int
    wasted: int
    hot_files: list[tuple[str, int]]
    rename_chains: list[tuple[str, int]]
    dirs: dict[str, int]
    names: dict[str, tuple[int, int, str, str]]


def shard_part(s: Summary, onto: Onto, top: int = 20, *,
               parents: Collection[str] = ()) -> ShardPart:
    """One shard's part: ``onto`` holds every shard's renames
    (:func:`~streamsync.analysis.summary.renames_onto`); the names of ``parents``
    and of the shard's top entries come along for the paths.

    >>> from streamsync.analysis import summarize_paths
    >>> s = summarize_paths("tests/data/gluster-10.3/processed/ascii-delpath-on")
    >>> p = shard_part(s, renames_onto(s.renames), 2)
    >>> p.gfids, len(p.hot_files), p.gone == len(s.created_then_deleted())
    (2076, 2, True)
    """
    head = Summary(bucket=s.bucket, data_stime=s.data_stime,
                   **{name: getattr(s, name) for name in _HEAD})
    hot = s.hot_files(top)
    chains = s.rename_chains(top)
    gone = gone_among(s, onto)
    gr = s.gfid_records
    names = s.names
    shown = {g: names[g] for g in parents if g in names}
    shown.update((g, names[g]) for g, _ in hot + chains if g in names)
    return ShardPart(head=head, gfids=len(gr), created=len(s.created),
                     written=len(s.data_changelogs), resends=s.resends(),
                     renamed=len(s.renames), gone=len(gone),
                     wasted=sum(gr.get(g, 0) for g in gone), hot_files=hot,
                     rename_chains=chains, dirs=s.dir_activity(), names=shown)


def _top(items: Iterable[tuple[str, int]], n: int) -> list[tuple[str, int]]:
    return top_items(dict(items), n)


def assemble(parts: Sequence[ShardPart], top: int = 20,
             paths: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The report from every shard's part, the shape :meth:`Summary.to_dict` gives
    (``paths`` maps a gfid to the path shown).

    >>> from streamsync.analysis import summarize_paths
    >>> from streamsync.analysis.shard import split
    >>> s = summarize_paths("tests/data/gluster-10.3/processed/ascii-delpath-on")
    >>> shards = split(s, 2)
    >>> onto = renames_onto(s.renames)  # every shard's renames
    >>> assemble([shard_part(x, onto, 5) for x in shards], 5) == s.to_dict(top=5)
    True
    """
    if len(parts) == 1:
        head, dirs = parts[0].head, parts[0].dirs
    else:
        head = merge_all((p.head for p in parts), bucket=parts[0].head.bucket,
                         data_stime=parts[0].head.data_stime)
        dirs = {}
        for p in parts:
            for g, n in p.dirs.items():
                dirs[g] = dirs.get(g, 0) + n
    show = paths or (lambda g: g)
    busiest = _top(dirs.items(), top)
    hot = _top((kv for p in parts for kv in p.hot_files), top)
    chains = _top((kv for p in parts for kv in p.rename_chains), top)
    return {
        "changelogs": head.changelogs,
        "records": head.records,
        "journal_bytes": head.journal_bytes,
        "first_ts": head.first_ts,
        "last_ts": head.last_ts,
        "bucket": head.bucket,
        "types": dict(sorted(head.types.items())),
        "fops": dict(sorted(head.fops.items())),
        "timeline": [{"start": b, "changelogs": head.bucket_changelogs.get(b, 0),
                      "fops": dict(sorted(head.buckets.get(b, {}).items()))}
                     for b in sorted(head.buckets.keys() | head.bucket_changelogs.keys())],
        "gfids": sum(p.gfids for p in parts),
        "hot_dirs": [{"gfid": g, "path": show(g), "records": n} for g, n in busiest],
        "hot_files": [{"gfid": g, "path": show(g), "changelogs": n} for g, n in hot],
        "churn": {
            "created": sum(p.created for p in parts),
            "created_then_deleted": sum(p.gone for p in parts),
            "wasted_records": sum(p.wasted for p in parts),
            "written_files": sum(p.written for p in parts),
            "data_resends": sum(p.resends for p in parts),
            "renamed": sum(p.renamed for p in parts),
            "rename_chains": [{"gfid": g, "path": show(g), "renames": n} for g, n in chains],
        },
        "lag": head.lag(),
    }


def report(shards: Sequence[Summary], top: int = 20,
           paths: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The report of a summary given whole (``[summary]``) or as gfid shards, in this
    process.

    >>> from streamsync.analysis import summarize_paths
    >>> r = report([summarize_paths("tests/data/gluster-10.3/processed/ascii-delpath-on")], 3)
    >>> r["records"], len(r["hot_files"])
    (4472, 3)
    """
    onto: Onto = {}
    for s in shards:
        for name, entries in renames_onto(s.renames).items():
            onto.setdefault(name, []).extend(entries)
    return assemble([shard_part(s, onto, top) for s in shards], top, paths)
