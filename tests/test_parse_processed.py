"""Processed-text parser: corpus round trips, every record shape, errors with file and line."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SCENARIOS, processed_journals
from streamsync.errors import ParseError
from streamsync.escaping import escape, escape_bytes, unescape, unescape_bytes
from streamsync.parse import parse_processed, render_processed
from streamsync.records import (DataRecord, EntryRecord, MetaRecord, Stat, record_from_dict,
                                records_to_jsonl)

ROOT = "00000000-0000-0000-0000-000000000001"
G = "5b1c2d3e-0000-4000-8000-00000000000a"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_corpus_processed_text_round_trips_byte_for_byte(scenario):
    files = processed_journals(scenario)
    assert files
    for f in files:
        data = f.read_bytes()
        assert render_processed(parse_processed(data, path=str(f))) == data, f.name


def test_every_record_shape():
    text = (f"E {G} CREATE 33188 0 0 {ROOT}/my%20notes.txt\n"
            f"E {G} MKNOD 4480 1 2 {ROOT}/fifo\n"
            f"E {G} MKDIR 16877 0 0 {ROOT}/d\n"
            f"E {G} LINK {ROOT}/hard\n"
            f"E {G} SYMLINK {ROOT}/sym\n"
            f"E {G} RENAME {ROOT}/a%0Ab {ROOT}/100%2520sure%25\n"
            f"E {G} UNLINK {ROOT}/x\n"
            f"E {G} RMDIR {ROOT}/d d\n"
            f"D {G}\n"
            f"M {G} SETATTR\n"
            f"M {G} SETATTR 1 2 33188 1.5 2.25\n").encode()
    recs = list(parse_processed(text))
    assert recs == [
        EntryRecord(G, "CREATE", ROOT, "my notes.txt", 33188, 0, 0),
        EntryRecord(G, "MKNOD", ROOT, "fifo", 4480, 1, 2),
        EntryRecord(G, "MKDIR", ROOT, "d", 16877, 0, 0),
        EntryRecord(G, "LINK", ROOT, "hard"),
        EntryRecord(G, "SYMLINK", ROOT, "sym"),
        EntryRecord(G, "RENAME", ROOT, "a\nb", pgfid1=ROOT, bname1="100%20sure%"),
        EntryRecord(G, "UNLINK", ROOT, "x"),
        EntryRecord(G, "RMDIR", ROOT, "d", path="d"),
        DataRecord(G),
        MetaRecord(G, "SETATTR"),
        MetaRecord(G, "SETATTR", Stat(1, 2, 33188, 1.5, 2.25)),
    ]
    assert render_processed(recs) == text


@pytest.mark.parametrize("line,reason", [
    ("X " + G, "unknown record type"),
    ("D " + G + " extra", "D record takes 1 field"),
    ("D not-a-gfid", "bad gfid"),
    (f"M {G} NOTAFOP", "unknown fop"),
    (f"E {G} CREATE 33188 0 {ROOT}/x", "takes 6 fields"),
    (f"E {G} CREATE abc 0 0 {ROOT}/x", "not an unsigned decimal"),
    (f"E {G} SETATTR {ROOT}/x", "not an entry fop"),
    (f"E {G} LINK {ROOT}/a/b", "invalid entry name"),
    (f"E {G} LINK {ROOT}/..", "invalid entry name"),
    (f"E {G} LINK nogfid/x", "not a <pgfid>/<name>"),
])
def test_malformed_lines_raise_with_file_and_line(line, reason):
    data = f"D {G}\n{line}\nD {G}\n".encode()
    with pytest.raises(ParseError) as ei:
        list(parse_processed(data, path="CHANGELOG.1700000000"))
    assert ei.value.line == 2 and ei.value.path == "CHANGELOG.1700000000"
    assert reason in str(ei.value)
    errors: list[ParseError] = []
    assert list(parse_processed(data, path="C", errors=errors)) == [DataRecord(G), DataRecord(G)]
    assert len(errors) == 1 and errors[0].line == 2


names = st.binary(min_size=1, max_size=60).filter(lambda b: b"\0" not in b and b"/" not in b)


@given(names)
def test_escaping_round_trips_and_uses_only_three_escapes(raw):
    name = os.fsdecode(raw)
    esc = escape(name)
    assert unescape(esc) == name
    assert " " not in esc and "\n" not in esc
    assert unescape_bytes(escape_bytes(raw)) == raw
    assert escape_bytes(raw) == os.fsencode(esc)


def test_escape_order_matches_glusterfs():
    assert escape("100%20sure%.txt") == "100%2520sure%25.txt"
    assert escape("a b\nc") == "a%20b%0Ac"
    assert unescape("%2520") == "%20"


@given(st.lists(names.map(os.fsdecode), min_size=1, max_size=3))
def test_records_to_dict_and_json_round_trip(parts):
    import orjson
    r = EntryRecord(G, "RENAME", ROOT, parts[0], pgfid1=ROOT, bname1=parts[-1])
    d = orjson.loads(orjson.dumps(r.to_dict()))
    assert record_from_dict(d) == r
    u = EntryRecord(G, "UNLINK", ROOT, parts[0], path="/".join(parts))
    assert record_from_dict(orjson.loads(records_to_jsonl([u]).splitlines()[0])) == u
    m = MetaRecord(G, "SETATTR", Stat(1, 2, 0o100644, 1.5, 2.0))
    assert record_from_dict(orjson.loads(orjson.dumps(m.to_dict()))) == m


@pytest.mark.parametrize("bad", ["nan", "inf", "-1.5", "1_0", "1e9", "+5", "0x10", ""])
def test_xsync_inline_times_are_plain_unsigned_seconds(bad):
    from streamsync.errors import ParseError
    from streamsync.parse import parse_processed
    g = "5b1c2d3e-0000-4000-8000-00000000000a"
    line = f"M {g} SETATTR 0 0 33188 {bad} 1700000000.5\n"
    with pytest.raises(ParseError, match="atime is not a time"):
        list(parse_processed(line, path="XSYNC-CHANGELOG.1"))
    ok = list(parse_processed(f"M {g} SETATTR 0 0 33188 1700000000 1700000000.5\n"))
    assert ok[0].stat.mtime == 1700000000.5


_JUNK = ["", " ", "  ", "\n", "\n\n", "x", "/", ".", "..", "%", "%20", "9", "99999999999",
         "4294967296", "\x00", "\r", "\t", "-", "a", "SETATTR", " SETATTR", " 1 2 3 4.5 6",
         "E ", "D ", "M ", "CREATE", "RENAME", "UNLINK", " p", "00000000-0000-0000-0000-000000000001",
         "/.", "/..", "é", "\udcff", "FOO"]


def _line_by_line(text: str):
    """The reference: every line through parse_line, errors collected per line."""
    from streamsync.parse import parse_line
    recs, errs = [], []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for n, line in enumerate(lines, 1):
        try:
            recs.append(parse_line(line))
        except ValueError as exc:
            errs.append((n, str(exc)))
    return recs, errs


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 10**6),
       cuts=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(_JUNK)),
                     min_size=0, max_size=4))
def test_the_fast_path_reads_exactly_as_the_line_parser(seed, cuts):
    """Valid and randomly damaged journals: the same records and the same errors
    (line and message) as parsing every line on its own, whether the text takes
    the whole-text fast path or not."""
    from streamsync.synth import synth_workload
    w = synth_workload(seed, ops=40, changelogs=1, names="hostile")
    text = render_processed(w.changelogs[0][1]).decode("utf-8", "surrogateescape")
    if seed % 3 == 0:  # xsync lines with an inline stat, and numbers at the limits
        text += ("M 00000000-0000-0000-0000-000000000001 SETATTR 0 0 16877 1.5 2\n"
                 "E 5b1c2d3e-0000-4000-8000-00000000000a MKDIR 4294967295 0 0 "
                 "00000000-0000-0000-0000-000000000001/d\n")
    for pos, junk in cuts:
        i = pos % (len(text) + 1)
        text = text[:i] + junk + (text[i:] if pos % 2 else text[i + len(junk):])
    want, want_errs = _line_by_line(text)
    errs: list = []
    got = list(parse_processed(text, errors=errs))
    assert got == want
    assert [(e.line, e.message) for e in errs] == want_errs
    assert all(type(a) is type(b) for a, b in zip(got, want))
