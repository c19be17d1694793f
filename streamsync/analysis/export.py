"""Exports: JSON lines (orjson) and DataFrame-friendly rows (pandas optional).

* :func:`record_rows` - one flat dict per record with its journal (``ts``,
  ``changelog``, ``seq``), the same columns for every record type;
* :func:`plan_rows` - one flat dict per planned op (entry, meta, data) of
  :class:`~streamsync.ops.ChangelogPlan` or :class:`~streamsync.ops.Batch` values;
* :func:`summary_rows` - a summary's tables (``fops``, ``timeline``,
  ``gfids``, ``dirs``) as flat rows;
* :func:`to_jsonl` / :func:`write_jsonl` - JSON lines of anything with
  ``to_dict()`` (records, ops, changes) or of plain dicts;
* :func:`summary_to_dict` / :func:`summary_from_dict` - a lossless JSON form of
  a :class:`~streamsync.analysis.summary.Summary`, so partial summaries can be
  stored and merged later;
* :func:`to_pandas` - a ``pandas.DataFrame`` of rows; pandas is imported only
  here (``pip install 'streamsync[analysis]'``).

>>> from streamsync.records import Changelog, DataRecord, ROOT_GFID
>>> rows = list(record_rows([(Changelog("CHANGELOG.5", 5, 1), [DataRecord(ROOT_GFID)])]))
>>> rows[0]["type"], rows[0]["fop"], rows[0]["ts"]
('D', 'DATA', 5)
"""

from __future__ import annotations

from typing import IO, Any, Iterable, Iterator

import orjson

from ..records import Changelog, Record, name_from_json, name_to_json
from .summary import Summary

__all__ = ["record_rows", "plan_rows", "summary_rows", "to_jsonl", "write_jsonl", "summary_to_dict",
           "summary_from_dict", "summary_to_json", "summary_from_json", "to_pandas",
           "RECORD_COLUMNS", "OP_COLUMNS"]

#: the columns of :func:`record_rows`, in order
RECORD_COLUMNS = ("ts", "changelog", "seq", "type", "fop", "gfid", "pgfid", "bname", "pgfid1",
                  "bname1", "mode", "uid", "gid", "path")


def _json_name(name: str | None) -> Any:
    if name is None:
        return None
    v = name_to_json(name)
    # a DataFrame column wants one type: non-UTF-8 names keep their bytes escaped
    return v if isinstance(v, str) else name.encode("utf-8", "surrogateescape").decode(
        "utf-8", "backslashreplace")


def record_rows(journals: Iterable[tuple[Changelog, Iterable[Record]]]) -> Iterator[dict[str, Any]]:
    """Flat rows (:data:`RECORD_COLUMNS`) for every record; ``D`` rows have fop ``"DATA"``.

    >>> from streamsync.discover import discover, read_changelog
    >>> journal = list(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))[1]
    >>> row = next(record_rows([(journal, read_changelog(journal))]))
    >>> row["changelog"], row["type"], row["fop"], row["bname"], oct(row["mode"])
    ('CHANGELOG.1795467006', 'E', 'MKDIR', 'top', '0o40755')
    """
    for c, records in journals:
        name = c.name
        ts = c.ts
        for seq, r in enumerate(records):
            t = r.TYPE
            row = dict.fromkeys(RECORD_COLUMNS)
            row.update(ts=ts, changelog=name, seq=seq, type=t, gfid=r.gfid)
            if t == "D":
                row["fop"] = "DATA"
            elif t == "M":
                row["fop"] = r.fop  # type: ignore[union-attr]
            else:
                row.update(fop=r.fop, pgfid=r.pgfid, bname=_json_name(r.bname),  # type: ignore
                           pgfid1=r.pgfid1, bname1=_json_name(r.bname1), mode=r.mode,  # type: ignore
                           uid=r.uid, gid=r.gid, path=_json_name(r.path))  # type: ignore
            yield row


#: the columns of :func:`plan_rows`, in order
OP_COLUMNS = ("ts", "changelog", "batch", "kind", "op", "gfid", "entry", "entry1", "gated",
              "skipped")


def plan_rows(plans: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Flat rows (:data:`OP_COLUMNS`) of what plans ask of a replica: one ``entry``
    row per entry op (``op`` is CREATE, RENAME, ...), one ``meta`` row per gfid
    whose attributes to copy, one ``data`` row per gfid to transfer.

    Accepts :class:`~streamsync.ops.ChangelogPlan` values or
    :class:`~streamsync.ops.Batch` values (then ``batch`` is the batch index).
    A skipped changelog gives one row of kind ``skipped``.

    >>> from streamsync.discover import discover
    >>> from streamsync.options import Options
    >>> from streamsync.pipeline import plan_changelogs
    >>> from streamsync.views import MemoryView
    >>> plans = plan_changelogs(list(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))[2:3],
    ...                         view=MemoryView(), options=Options(), data_stime=None,
    ...                         entry_stime=None)
    >>> import collections
    >>> sorted(collections.Counter(r["kind"] for r in plan_rows(plans)).items())
    [('data', 11), ('entry', 16), ('meta', 4)]
    """
    def one(plan, batch):
        c = plan.changelog

        def row(kind, op, gfid, entry=None, entry1=None):
            return {"ts": c.ts, "changelog": c.name, "batch": batch, "kind": kind, "op": op,
                    "gfid": gfid, "entry": entry, "entry1": entry1,
                    "gated": plan.entries_gated, "skipped": plan.skipped}

        if plan.skipped:
            yield row("skipped", None, None)
            return
        for op in plan.entry_ops:
            yield row("entry", op.op, op.gfid, _json_name(op.entry), _json_name(op.entry1))
        for g in plan.meta_gfids:
            yield row("meta", "META", g)
        for g in plan.data_gfids:
            yield row("data", "DATA", g)

    for item in plans:
        if hasattr(item, "plans"):
            for plan in item.plans:
                yield from one(plan, item.index)
        else:
            yield from one(item, None)


def summary_rows(summary: Summary, table: str = "fops", *, paths=None) -> list[dict[str, Any]]:
    """One of a summary's tables as rows.

    ``fops``: fop, count; ``timeline``: start, fop, count (long form) plus a
    ``changelogs`` row per bucket; ``gfids``: gfid, records, dm_records,
    data_changelogs, created, path; ``dirs``: gfid, records, path.
    ``paths`` maps a gfid to a path (e.g. a Resolver) for the last two.

    >>> from streamsync.analysis.summary import summarize_paths
    >>> summary_rows(summarize_paths("tests/data/gluster-10.3/raw/ascii-delpath-on"))[:2]
    [{'fop': 'CREATE', 'count': 2020}, {'fop': 'DATA', 'count': 2054}]
    """
    show = paths or (lambda g: None)
    if table == "fops":
        return [{"fop": k, "count": v} for k, v in sorted(summary.fops.items())]
    if table == "timeline":
        out = []
        for start in sorted(summary.buckets.keys() | summary.bucket_changelogs.keys()):
            out.append({"start": start, "fop": "changelogs",
                        "count": summary.bucket_changelogs.get(start, 0)})
            for fop, n in sorted(summary.buckets.get(start, {}).items()):
                out.append({"start": start, "fop": fop, "count": n})
        return out
    if table == "gfids":
        return [{"gfid": g, "records": n, "dm_records": summary.gfid_dm.get(g, 0),
                 "data_changelogs": summary.data_changelogs.get(g, 0),
                 "created": (summary.created[g][0] if g in summary.created else None),
                 "path": show(g)}
                for g, n in sorted(summary.gfid_records.items())]
    if table == "dirs":
        return [{"gfid": g, "records": n, "path": show(g)}
                for g, n in sorted(summary.dir_activity().items())]
    raise ValueError(f"unknown table {table!r} (fops, timeline, gfids, dirs)")


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"cannot export {type(obj).__name__}")


def to_jsonl(items: Iterable[Any]) -> bytes:
    """JSON lines of records, ops, changes (``to_dict()``), summaries or plain dicts.

    >>> to_jsonl([{"a": 1}, {"b": 2}])
    b'{"a":1}\\n{"b":2}\\n'
    """
    dumps = orjson.dumps
    out = []
    for it in items:
        if isinstance(it, Summary):
            it = summary_to_dict(it)
        elif hasattr(it, "to_dict"):
            it = it.to_dict()
        out.append(dumps(it, default=_default) + b"\n")
    return b"".join(out)


def write_jsonl(items: Iterable[Any], fh: IO[bytes], *, chunk: int = 4096) -> int:
    """Stream JSON lines to a binary file; returns the number of lines written.

    >>> import io
    >>> out = io.BytesIO()
    >>> write_jsonl([{"fop": "CREATE", "count": 2}, {"fop": "DATA", "count": 1}], out)
    2
    >>> out.getvalue()
    b'{"fop":"CREATE","count":2}\\n{"fop":"DATA","count":1}\\n'
    """
    n = 0
    buf: list[Any] = []
    for it in items:
        buf.append(it)
        if len(buf) >= chunk:
            fh.write(to_jsonl(buf))
            n += len(buf)
            buf = []
    if buf:
        fh.write(to_jsonl(buf))
        n += len(buf)
    return n


def summary_to_dict(s: Summary) -> dict[str, Any]:
    """A lossless JSON-safe dict of a summary (inverse: :func:`summary_from_dict`).

    >>> from streamsync.analysis.summary import summarize_paths
    >>> d = summary_to_dict(summarize_paths("tests/data/gluster-10.3/raw/ascii-delpath-on"))
    >>> d["kind"], d["changelogs"], d["bucket"]
    ('streamsync.summary', 34, 3600)
    """
    return {
        "kind": "streamsync.summary", "version": 1,
        "bucket": s.bucket, "data_stime": s.data_stime, "changelogs": s.changelogs,
        "records": s.records, "journal_bytes": s.journal_bytes, "first_ts": s.first_ts,
        "last_ts": s.last_ts, "types": s.types, "fops": s.fops,
        "buckets": {str(k): v for k, v in s.buckets.items()},
        "bucket_changelogs": {str(k): v for k, v in s.bucket_changelogs.items()},
        "dir_entries": s.dir_entries, "gfid_records": s.gfid_records,
        "data_changelogs": s.data_changelogs, "gfid_dm": s.gfid_dm,
        "link_delta": s.link_delta,
        "created": {g: [ts, seq, p, name_to_json(b)] for g, (ts, seq, p, b) in s.created.items()},
        "names": {g: [ts, seq, p, name_to_json(b)] for g, (ts, seq, p, b) in s.names.items()},
        "renames": {g: [[ts, seq, p, name_to_json(b), p1, name_to_json(b1)]
                        for ts, seq, p, b, p1, b1 in rs] for g, rs in s.renames.items()},
        "pending_changelogs": s.pending_changelogs, "pending_records": s.pending_records,
        "pending_bytes": s.pending_bytes,
    }


def summary_from_dict(d: dict[str, Any]) -> Summary:
    """Rebuild a summary from :func:`summary_to_dict` output.

    Anything else (another JSON document, a summary with a field missing or of
    the wrong shape) raises ``ValueError`` naming what is wrong.

    >>> summary_from_dict({"hello": "world"})
    Traceback (most recent call last):
    ...
    ValueError: not a streamsync summary document
    """
    if not isinstance(d, dict) or d.get("kind") != "streamsync.summary":
        raise ValueError("not a streamsync summary document")
    if d.get("version") != 1:
        raise ValueError(f"streamsync summary version {d.get('version')!r} is not 1")
    try:
        return _summary_from_dict(d)
    except KeyError as exc:
        raise ValueError(f"not a streamsync summary document: no field {exc}") from None
    except (TypeError, AttributeError, IndexError, ValueError) as exc:
        raise ValueError(f"not a streamsync summary document: {exc}") from None


def _summary_from_dict(d: dict[str, Any]) -> Summary:
    return Summary(
        bucket=d["bucket"], data_stime=d["data_stime"], changelogs=d["changelogs"],
        records=d["records"], journal_bytes=d["journal_bytes"], first_ts=d["first_ts"],
        last_ts=d["last_ts"], types=dict(d["types"]), fops=dict(d["fops"]),
        buckets={int(k): dict(v) for k, v in d["buckets"].items()},
        bucket_changelogs={int(k): v for k, v in d["bucket_changelogs"].items()},
        dir_entries=dict(d["dir_entries"]), gfid_records=dict(d["gfid_records"]),
        data_changelogs=dict(d["data_changelogs"]), gfid_dm=dict(d["gfid_dm"]),
        link_delta=dict(d["link_delta"]),
        created={g: (v[0], v[1], v[2], name_from_json(v[3])) for g, v in d["created"].items()},
        names={g: (v[0], v[1], v[2], name_from_json(v[3])) for g, v in d["names"].items()},
        renames={g: tuple((r[0], r[1], r[2], name_from_json(r[3]), r[4], name_from_json(r[5]))
                          for r in rs) for g, rs in d["renames"].items()},
        pending_changelogs=d["pending_changelogs"], pending_records=d["pending_records"],
        pending_bytes=d["pending_bytes"])


def summary_to_json(s: Summary) -> bytes:
    """:func:`summary_to_dict` through orjson.

    >>> from streamsync.analysis.summary import summarize_paths
    >>> summary_to_json(summarize_paths("tests/data/gluster-10.3/raw/ascii-delpath-on"))[:30]
    b'{"kind":"streamsync.summary","'
    """
    return orjson.dumps(summary_to_dict(s))


def summary_from_json(data: bytes | str) -> Summary:
    """Inverse of :func:`summary_to_json`.

    >>> from streamsync.analysis.summary import summarize_paths
    >>> s = summarize_paths("tests/data/gluster-10.3/raw/ascii-delpath-on")
    >>> summary_from_json(summary_to_json(s)) == s
    True
    """
    return summary_from_dict(orjson.loads(data))


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError("to_pandas() needs pandas: pip install 'streamsync[analysis]'") from None
    return pandas


def to_pandas(rows: Iterable[dict[str, Any]] | Summary, table: str = "fops", *, paths=None):
    """A ``pandas.DataFrame`` of rows (e.g. :func:`record_rows`), or of a summary's ``table``.

    Raises ``ImportError`` with an install hint when pandas is missing.

    >>> from streamsync.analysis.summary import summarize_paths
    >>> df = to_pandas(summarize_paths("tests/data/gluster-10.3/raw/ascii-delpath-on"))
    >>> df.sort_values("count", ascending=False).head(2).to_dict("records")
    [{'fop': 'DATA', 'count': 2054}, {'fop': 'CREATE', 'count': 2020}]
    """
    pd = _pandas()
    if isinstance(rows, Summary):
        rows = summary_rows(rows, table, paths=paths)
        return pd.DataFrame(rows)
    rows = list(rows)
    for cols in (RECORD_COLUMNS, OP_COLUMNS):
        if rows and set(rows[0]) == set(cols):
            return pd.DataFrame(rows, columns=list(cols))
    return pd.DataFrame(rows)
