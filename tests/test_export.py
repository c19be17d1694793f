"""Exports: JSON lines, lossless summary documents, pandas rows (with and without pandas)."""

from __future__ import annotations

import io
import os
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from streamsync.analysis._input import iter_journals, read_records
from streamsync.analysis.changes import changes_from_paths
from streamsync.analysis.export import (RECORD_COLUMNS, record_rows, summary_from_json,
                                        summary_rows, summary_to_json, to_jsonl, to_pandas,
                                        write_jsonl)
from streamsync.analysis.summary import merge, summarize, summarize_changelog, summarize_paths
from streamsync.records import ROOT_GFID, Changelog, EntryRecord, record_from_dict

DATA = Path(__file__).parent / "data" / "gluster-10.3"
SRC = DATA / "processed" / "ascii-delpath-on"


def _pairs():
    return [(c, list(read_records(c))) for c in iter_journals([SRC])]


def test_records_jsonl_roundtrip():
    pairs = _pairs()
    records = [r for _, rs in pairs for r in rs]
    data = to_jsonl(records)
    assert data.count(b"\n") == len(records) == 4472
    assert [record_from_dict(orjson.loads(line)) for line in data.splitlines()] == records


def test_write_jsonl_streams_in_chunks():
    rows = changes_from_paths([str(SRC)])
    buf = io.BytesIO()
    assert write_jsonl(rows, buf, chunk=100) == len(rows)
    docs = [orjson.loads(line) for line in buf.getvalue().splitlines()]
    assert Counter(d["type"] for d in docs) == Counter(r.kind for r in rows)


def test_summary_document_is_lossless_and_mergeable():
    pairs = _pairs()
    a, b = summarize(pairs[:17], bucket=60), summarize(pairs[17:], bucket=60)
    a2, b2 = summary_from_json(summary_to_json(a)), summary_from_json(summary_to_json(b))
    assert (a2, b2) == (a, b)
    assert merge(a2, b2) == summarize(pairs, bucket=60)
    # a name that is not UTF-8 survives
    odd = os.fsdecode(b"caf\xe9")
    g = "aaaaaaaa-0000-4000-8000-000000000001"
    s = summarize_changelog(Changelog("CHANGELOG.9", 9, 1),
                            [EntryRecord(g, "CREATE", ROOT_GFID, odd, 33188, 0, 0),
                             EntryRecord(g, "RENAME", ROOT_GFID, odd, pgfid1=ROOT_GFID,
                                         bname1=odd + "2")])
    assert summary_from_json(summary_to_json(s)) == s
    assert summary_from_json(to_jsonl([s]).strip()) == s
    with pytest.raises(ValueError):
        summary_from_json(b'{"kind": "other"}')


def test_record_rows_and_pandas():
    pd = pytest.importorskip("pandas")
    df = to_pandas(record_rows(_pairs()))
    assert list(df.columns) == list(RECORD_COLUMNS)
    assert len(df) == 4472
    counts = df.groupby("fop").size().to_dict()
    assert counts == summarize_paths([str(SRC)]).fops
    # renames carry both names; delete paths are captured in this scenario
    assert df[df.fop == "RENAME"].bname1.notna().all()
    assert df[df.fop == "UNLINK"].path.notna().all()
    s = summarize_paths([str(SRC)], bucket=10)
    tl = to_pandas(s, "timeline")
    assert tl[tl.fop != "changelogs"]["count"].sum() == 4472
    assert tl[tl.fop == "changelogs"]["count"].sum() == 34
    g = to_pandas(s, "gfids")
    assert g["records"].sum() == 4472
    assert isinstance(df, pd.DataFrame)


def test_summary_rows_without_pandas():
    s = summarize_paths([str(SRC)])
    assert sum(r["count"] for r in summary_rows(s, "fops")) == 4472
    assert sum(r["records"] for r in summary_rows(s, "dirs")) >= s.types["E"]
    with pytest.raises(ValueError):
        summary_rows(s, "nope")


def test_clear_error_when_pandas_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(ImportError, match=r"streamsync\[analysis\]"):
        to_pandas([{"a": 1}])
    # the rest of the analysis does not need pandas
    assert summarize_paths([str(SRC)]).records == 4472


def test_plan_rows_and_ops_jsonl():
    from streamsync.analysis.export import OP_COLUMNS, plan_rows
    from streamsync.analysis.whatif import JournalView
    from streamsync.ops import entry_op_from_gsyncd
    from streamsync.options import Options
    from streamsync.pipeline import batch_plans, plan_changelogs
    journals = list(iter_journals([SRC]))
    view = JournalView(journals)
    plans = list(plan_changelogs(journals, view=view, options=Options(), data_stime=None,
                                 entry_stime=None))
    rows = list(plan_rows(plans))
    assert all(tuple(r) == OP_COLUMNS for r in rows)
    kinds = Counter(r["kind"] for r in rows)
    assert kinds["entry"] == sum(len(p.entry_ops) for p in plans)
    assert kinds["meta"] == sum(len(p.meta_gfids) for p in plans)
    assert kinds["data"] == sum(len(p.data_gfids) for p in plans)
    # entry op names by fop agree with the journal's entry records minus gated/ignored ones
    assert Counter(r["op"] for r in rows if r["kind"] == "entry")["MKDIR"] == 49
    batches = list(batch_plans(plans, batch_size=4096))
    brows = list(plan_rows(batches))
    assert len(brows) == len(rows)
    assert {r["batch"] for r in brows} == {b.index for b in batches}
    # ops as JSON lines round-trip through the gsyncd entry dict
    ops = [op for p in plans for op in p.entry_ops]
    back = [entry_op_from_gsyncd(orjson.loads(line)) for line in to_jsonl(ops).splitlines()]
    assert back == ops
