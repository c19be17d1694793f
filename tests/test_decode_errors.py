"""Hostile and broken raw journals: only typed errors, with the file and the byte offset."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import raw_journals
from streamsync.decode import decode_journal
from streamsync.encode import encode_journal
from streamsync.errors import JournalError, UnsupportedJournal
from streamsync.records import DataRecord, EntryRecord, MetaRecord

ROOT = "00000000-0000-0000-0000-000000000001"
G = "5b1c2d3e-0000-4000-8000-00000000000a"
HDR = b"GlusterFS Changelog | version: v1.2 | encoding : 2\n"
SMALL = [r for r in raw_journals("ascii-delpath-on") if 200 < r.stat().st_size < 3000]
SMALL_BIN = [r for r in raw_journals("binary-delpath-on") if 200 < r.stat().st_size < 3000]


def test_error_names_file_and_offset():
    data = HDR + b"D" + G.encode() + b"\0" + b"Dnot-a-gfid\0"
    with pytest.raises(JournalError) as ei:
        decode_journal(data, path="/b/CHANGELOG.1700000000")
    assert ei.value.path == "/b/CHANGELOG.1700000000"
    assert ei.value.offset == len(HDR) + 38
    assert "CHANGELOG.1700000000: byte 89" in str(ei.value)


@pytest.mark.parametrize("header,exc", [
    (b"", JournalError),
    (b"hello world\n", JournalError),
    (b"GlusterFS Changelog | version: v1.2 | encoding : 2", JournalError),  # no newline
    (b"GlusterFS Changelog | version: v2.0 | encoding : 2\n", UnsupportedJournal),
    (b"GlusterFS Changelog | version: v1.3 | encoding : 2\n", UnsupportedJournal),
    (b"GlusterFS Changelog | version: v1.2 | encoding : 3\n", UnsupportedJournal),
])
def test_bad_headers(header, exc):
    with pytest.raises(exc):
        decode_journal(header + b"D" + G.encode() + b"\0")


def test_unknown_fop_number_is_an_error():
    with pytest.raises(JournalError, match="unknown fop number"):
        decode_journal(HDR + b"M" + G.encode() + b"\x00999\x00")


def test_e_record_with_a_non_entry_fop_fails_the_whole_file():
    data = HDR + b"D" + G.encode() + b"\0" + b"E" + G.encode() + b"\x0038\x00" + ROOT.encode() + b"/x\0"
    with pytest.raises(JournalError, match="non-entry fop SETATTR"):
        decode_journal(data)


def test_names_with_dot_dot_or_slash_are_rejected():
    for bad in (b"..", b".", b"a/b", b""):
        data = HDR + b"E" + G.encode() + b"\x009\x00" + ROOT.encode() + b"/" + bad + b"\0"
        with pytest.raises(JournalError):
            decode_journal(data)


def test_empty_body_and_v11_deletes():
    assert decode_journal(HDR) == []
    v11 = b"GlusterFS Changelog | version: v1.1 | encoding : 2\n"
    recs = decode_journal(v11 + b"E" + G.encode() + b"\x005\x00" + ROOT.encode() + b"/f\x00"
                          + b"D" + G.encode() + b"\0")
    assert recs == [EntryRecord(G, "UNLINK", ROOT, "f"), DataRecord(G)]


def test_uncaptured_delete_slot_must_be_terminated():
    good = HDR + b"E" + G.encode() + b"\x005\x00" + ROOT.encode() + b"/f\x00\x00\x00"
    assert decode_journal(good) == [EntryRecord(G, "UNLINK", ROOT, "f")]
    with pytest.raises(JournalError):
        decode_journal(good[:-1])
    with pytest.raises(JournalError):
        decode_journal(good[:-1] + b"X\0")


@pytest.mark.parametrize("journal", SMALL[:3] + SMALL_BIN[:3], ids=lambda p: p.parent.name + "/" + p.name)
def test_every_truncation_of_a_real_journal_is_a_journal_error_or_a_record_prefix(journal):
    data = journal.read_bytes()
    full = decode_journal(data)
    for cut in range(len(data)):
        try:
            recs = decode_journal(data[:cut], path=journal.name)
        except JournalError as exc:
            assert exc.path == journal.name
            assert 0 <= exc.offset <= cut
        else:
            # a cut exactly at a record boundary is itself a valid, shorter journal
            assert recs == full[:len(recs)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_flipped_bytes_give_typed_errors_only(data):
    journal = data.draw(st.sampled_from(SMALL + SMALL_BIN))
    raw = bytearray(journal.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    try:
        recs = decode_journal(bytes(raw))
    except JournalError:
        return
    for r in recs:
        assert isinstance(r, (EntryRecord, DataRecord, MetaRecord))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([1, 2]), st.sampled_from(["1.1", "1.2"]))
def test_random_bodies_give_typed_errors_only(body, enc, ver):
    hdr = f"GlusterFS Changelog | version: v{ver} | encoding : {enc}\n".encode()
    try:
        decode_journal(hdr + body)
    except JournalError:
        pass


def test_binary_gfids_may_contain_nul_and_newline():
    gfid = str(uuid.UUID(bytes=b"\x00\n" * 8))
    recs = [EntryRecord(gfid, "CREATE", ROOT, "a\nb", 33188, 0, 10), DataRecord(gfid),
            MetaRecord(gfid, "SETATTR"), EntryRecord(gfid, "UNLINK", ROOT, "a\nb")]
    raw = encode_journal(recs, encoding=1)
    assert decode_journal(raw) == recs


_DAMAGE = [b"", b"\x00", b"\x00\x00", b"/", b".", b"..", b"\x00.\x00", b"0", b"00", b"7",
           b"4294967296", b"4294967295", b"99999999999", b"D", b"E", b"M", b"\n", b"\xff",
           b"\xc3\xa9", b"x", b"23", b"8", b"5", b"38", b"-", b"A"]


def _checked(raw: bytes):
    """The records the checked (chunked) decoder gives, or None when it refuses."""
    from itertools import chain

    from streamsync.decode import _record_lists
    try:
        return list(chain.from_iterable(_record_lists(raw, "<t>")))
    except JournalError:
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), version=st.sampled_from(["v1.1", "v1.2"]),
       cuts=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(_DAMAGE)), max_size=4))
def test_the_whole_body_fast_path_decodes_exactly_as_the_checked_decoder(seed, version, cuts):
    """Valid and randomly damaged ascii journals: whenever the fast path accepts
    a body, the checked decoder gives the very same records; a body it refuses
    goes to the checked decoder, which names the error."""
    from streamsync.decode import _ascii_fast, read_header
    from streamsync.encode import encode_journal
    from streamsync.synth import synth_workload
    recs = synth_workload(seed, ops=40, changelogs=1, names="hostile").changelogs[0][1]
    raw = encode_journal([r for r in recs if not (r.TYPE == "M" and r.stat)], version=version)
    header = read_header(raw)
    if not cuts:
        assert _ascii_fast(raw, header) is not None  # the fast path is taken
    for pos, junk in cuts:
        i = header.body_offset + pos % (len(raw) - header.body_offset + 1)
        raw = raw[:i] + junk + (raw[i:] if pos % 2 else raw[i + len(junk):])
    fast = _ascii_fast(raw, header)
    checked = _checked(raw)
    if fast is not None:
        assert checked is not None and fast == checked
        assert [type(r) for r in fast] == [type(r) for r in checked]
    try:
        got = decode_journal(raw)
    except JournalError:
        assert checked is None
    else:
        assert got == checked
