"""decode_journal_some: one gfid shard of a raw journal, the other records walked past.

Differential: on random hostile journals (ascii and binary, v1.1 and v1.2), whole or
damaged, it must give exactly what decoding the whole journal and keeping the shard
gives, and raise exactly the error decode_journal raises."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsync.analysis.shard import prefixes
from streamsync.decode import SomeRecords, decode_journal, decode_journal_some
from streamsync.encode import encode_journal
from streamsync.errors import JournalError
from streamsync.synth import synth_workload

_DAMAGE = [b"", b"\x00", b"\x00\x00", b"/", b"0", b"4294967296", b"D", b"E", b"M", b"\xff",
           b"x", b"23", b"8", b"5", b"A"]


def _expected(records, select) -> SomeRecords:
    """Decoded whole, then cut: the shard's records; every entry record's parents
    (sorted: their order is not part of the result) and renames."""
    picked, parents, renames = [], [], []
    for i, r in enumerate(records):
        if r.gfid[:2] in select:
            picked.append((i, r))
        if r.TYPE == "E":
            parents.append(r.pgfid)
            if r.fop == "RENAME":
                parents.append(r.pgfid1)
                renames.append((i, r.gfid, r.pgfid1, r.bname1))
    return SomeRecords(picked, sorted(parents), renames)


def _some(*args, **kw) -> SomeRecords:
    got = decode_journal_some(*args, **kw)
    return got._replace(parents=sorted(got.parents))


def _journal(seed: int, version: str, encoding: int) -> bytes:
    recs = synth_workload(seed, ops=60, changelogs=1, names="hostile").changelogs[0][1]
    return encode_journal([r for r in recs if not (r.TYPE == "M" and r.stat)],
                          version=version, encoding=encoding)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), version=st.sampled_from(["v1.1", "v1.2"]),
       encoding=st.sampled_from([1, 2]), shards=st.sampled_from([1, 2, 3, 4, 16, 32, 256]),
       shard=st.integers(0, 255))
def test_a_shard_of_a_journal_is_the_shard_of_the_whole(seed, version, encoding, shards, shard):
    raw = _journal(seed, version, encoding)
    select = prefixes(shard % shards, shards)
    want = _expected(decode_journal(raw), select)
    assert _some(raw, select) == want
    assert _some(raw, select, check=False) == want


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), version=st.sampled_from(["v1.1", "v1.2"]),
       shards=st.sampled_from([2, 3, 16]),
       cuts=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(_DAMAGE)),
                     min_size=1, max_size=3))
def test_a_damaged_journal_fails_as_decoded_whole(seed, version, shards, cuts):
    """Checked, the shard raises decode_journal's error word for word or agrees with
    it; unchecked (another shard checks), it never raises anything but that error."""
    raw = _journal(seed, version, 2)
    start = raw.index(b"\n") + 1
    for pos, junk in cuts:
        i = start + pos % (len(raw) - start + 1)
        raw = raw[:i] + junk + (raw[i:] if pos % 2 else raw[i + len(junk):])
    try:
        whole = decode_journal(raw, path="C.1")
    except JournalError as exc:
        whole = exc
    for k in range(shards):
        select = prefixes(k, shards)
        try:
            got = _some(raw, select, path="C.1")
        except JournalError as exc:
            assert isinstance(whole, JournalError) and str(exc) == str(whole)
        else:
            assert got == _expected(whole, select)
        try:
            decode_journal_some(raw, select, path="C.1", check=False)
        except JournalError as exc:
            assert isinstance(whole, JournalError) and str(exc) == str(whole)


def test_selects_of_any_shape():
    """Prefixes that no shard count makes (the one-digit shortcut must not apply)."""
    raw = _journal(7, "v1.2", 2)
    records = decode_journal(raw)
    for select in (frozenset(), frozenset({"00"}), frozenset({"00", "10", "20"}),
                   frozenset(a + b for a in "0123456789abcdef" for b in "0123")):
        assert _some(raw, select) == _expected(records, select)


def test_a_bad_header_is_the_same_error():
    with pytest.raises(JournalError, match="not a GlusterFS changelog"):
        decode_journal_some(b"nonsense", frozenset({"00"}), path="C.1")
