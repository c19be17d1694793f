"""Records -> raw journal -> records, for both encodings and both versions (hypothesis)."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from streamsync.decode import decode_journal, journal_to_processed
from streamsync.encode import encode_journal
from streamsync.parse import parse_processed, render_processed
from streamsync.records import DataRecord, EntryRecord, MetaRecord

gfids = st.uuids().map(str)
uint = st.integers(0, 2**32 - 1)
names = (st.binary(min_size=1, max_size=40)
         .filter(lambda b: b"\0" not in b and b"/" not in b and b not in (b".", b".."))
         .map(os.fsdecode))
paths = st.lists(names, min_size=1, max_size=4).map("/".join)
meta_fops = st.sampled_from(["SETATTR", "FSETATTR", "SETXATTR", "FSETXATTR", "REMOVEXATTR",
                             "FREMOVEXATTR", "XATTROP", "FXATTROP"])

record = st.one_of(
    gfids.map(DataRecord),
    st.builds(lambda g, f: MetaRecord(g, f), gfids, meta_fops),
    st.builds(lambda *a: EntryRecord(*a), gfids, st.sampled_from(["CREATE", "MKNOD", "MKDIR"]), gfids, names,
              uint, uint, uint),
    st.builds(lambda *a: EntryRecord(*a), gfids, st.sampled_from(["LINK", "SYMLINK"]), gfids, names),
    st.builds(lambda g, p, n, p1, n1: EntryRecord(g, "RENAME", p, n, pgfid1=p1, bname1=n1),
              gfids, gfids, names, gfids, names),
    st.builds(lambda g, f, p, n, dp: EntryRecord(g, f, p, n, path=dp), gfids,
              st.sampled_from(["UNLINK", "RMDIR"]), gfids, names, st.none() | paths),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(record, max_size=30), st.sampled_from([1, 2]))
def test_v12_roundtrip(records, encoding):
    raw = encode_journal(records, encoding=encoding, version="v1.2")
    assert decode_journal(raw) == records


@settings(max_examples=150, deadline=None)
@given(st.lists(record, max_size=30), st.sampled_from([1, 2]))
def test_v11_roundtrip_drops_only_delete_paths(records, encoding):
    raw = encode_journal(records, encoding=encoding, version="v1.1")
    expected = [r._replace(path=None) if isinstance(r, EntryRecord) else r for r in records]
    assert decode_journal(raw) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(record, max_size=30))
def test_processed_text_parses_back_to_the_same_records(records):
    text = journal_to_processed(encode_journal(records))
    assert text == render_processed(records)
    assert list(parse_processed(text)) == records
