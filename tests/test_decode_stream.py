"""Journals of any size decode in bounded memory (issue 9, item 15).

The decoder works through a journal's body a chunk at a time; a record cut by a
chunk boundary carries over. These tests shrink the chunk so that every real
journal crosses many boundaries and check that records and errors (the record
number and the byte offset) are exactly those of one pass over the whole body;
then they run ``streamsync decode`` on a large journal and bound its peak memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamsync.decode as decode_mod
from conftest import raw_journals
from streamsync.decode import decode_journal, iter_journal
from streamsync.errors import JournalError

SCENARIOS = ("ascii-delpath-on", "ascii-delpath-off", "binary-delpath-on", "binary-delpath-off")
REAL = [p for s in SCENARIOS for p in raw_journals(s)]
ROOT = "00000000-0000-0000-0000-000000000001"
HDR = b"GlusterFS Changelog | version: v1.2 | encoding : 2\n"


def _decode(data: bytes, chunk: int, batch: int = 7):
    saved = decode_mod._CHUNK, decode_mod._BATCH, decode_mod._KNOWN_MAX
    decode_mod._CHUNK, decode_mod._BATCH, decode_mod._KNOWN_MAX = chunk, batch, 3
    try:
        try:
            return decode_journal(data, path="J"), list(iter_journal(data, path="J"))
        except JournalError as exc:
            with pytest.raises(JournalError) as again:
                next(iter_journal(data, path="J"))
            assert str(again.value) == str(exc)
            return str(exc), None
    finally:
        decode_mod._CHUNK, decode_mod._BATCH, decode_mod._KNOWN_MAX = saved


def _whole(data: bytes):
    return _decode(data, chunk=1 << 40, batch=1 << 40)


@pytest.mark.parametrize("chunk", [1, 37, 64, 101, 4096])
def test_real_journals_decode_the_same_across_chunk_boundaries(chunk):
    assert len(REAL) > 40
    for path in REAL:
        data = path.read_bytes()
        whole, _ = _whole(data)
        assert whole, path
        listed, streamed = _decode(data, chunk)
        assert listed == whole, path
        assert streamed == whole, path


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupt_journals_fail_alike_whatever_the_chunk(data):
    """A flipped, cut or inserted byte: the same error (record number, offset) or
    the same records, chunked or not."""
    base = data.draw(st.sampled_from([p for p in REAL if p.stat().st_size < 4000]))
    raw = bytearray(base.read_bytes())
    at = data.draw(st.integers(len(HDR), len(raw) - 1))
    how = data.draw(st.sampled_from(["flip", "cut", "insert", "nul"]))
    if how == "flip":
        raw[at] ^= data.draw(st.integers(1, 255))
    elif how == "cut":
        del raw[at:]
    elif how == "insert":
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        raw[at] = 0
    raw = bytes(raw)
    expected = _whole(raw)
    chunk = data.draw(st.integers(1, 300))
    assert _decode(raw, chunk) == expected


def test_a_field_longer_than_a_chunk():
    name = "n" * 5000
    data = HDR + b"E" + str(uuid.UUID(int=7)).encode() + b"\x0023\x0033188\x000\x000\x00" \
        + f"{ROOT}/{name}".encode() + b"\x00"
    whole, _ = _whole(data)
    assert whole[0].bname == name
    assert _decode(data, chunk=64) == (whole, whole)


def _big_ascii_journal(path, triples: int) -> int:
    """CREATE + DATA + SETATTR for ``triples`` files, written directly (fast)."""
    parts = [HDR]
    root = ROOT.encode()
    for i in range(triples):
        g = str(uuid.UUID(int=(i * 2654435761) % (1 << 128) + 2)).encode()
        parts.append(b"E%s\x0023\x0033188\x000\x000\x00%s/file_%d\x00D%s\x00M%s\x0038\x00"
                     % (g, root, i, g, g))
    data = b"".join(parts)
    path.write_bytes(data)
    return len(data)


_PEAK = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def _peak_rss(*argv: str) -> int:
    cmd = [sys.executable, "-c", _PEAK, sys.executable, "-m", "streamsync", *argv]
    return int(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize("json", [False, True], ids=["text", "json"])
def test_decode_of_a_large_journal_stays_near_the_journal_size(tmp_path, json):
    small = tmp_path / "small" / "CHANGELOG.1795467001"
    small.parent.mkdir()
    _big_ascii_journal(small, 10)
    big = tmp_path / "big" / "CHANGELOG.1795467002"
    big.parent.mkdir()
    size = _big_ascii_journal(big, 160_000)
    assert size > decode_mod._CHUNK * 40 and size > 24 << 20
    flag = ["--json"] if json else []
    baseline = _peak_rss("decode", *flag, str(small))
    peak = _peak_rss("decode", *flag, str(big))
    # the journal's bytes, plus a bounded working set (a whole-file decode needed
    # about 40x the journal for JSON, 10x for text)
    assert peak - baseline < size + (40 << 20), (peak, baseline, size)


def test_large_decode_output_equals_the_in_memory_path(tmp_path, monkeypatch, capsysbinary):
    from streamsync.cli import decode as cli_decode
    from streamsync.cli import main
    j = tmp_path / "CHANGELOG.1795467003"
    _big_ascii_journal(j, 2000)
    outputs = []
    for limit in (1 << 40, 0):  # in memory, then validate-and-stream
        monkeypatch.setattr(cli_decode, "_IN_MEMORY", limit)
        for flag in ([], ["--json"]):
            assert main(["decode", *flag, str(j)]) == 0
            outputs.append(capsysbinary.readouterr().out)
    assert outputs[0] == outputs[2] and outputs[1] == outputs[3]
    assert outputs[0].count(b"\n") == 6000


def test_a_corrupt_large_journal_writes_nothing(tmp_path, monkeypatch, capsysbinary):
    from streamsync.cli import decode as cli_decode
    from streamsync.cli import main
    j = tmp_path / "CHANGELOG.1795467004"
    _big_ascii_journal(j, 2000)
    with open(j, "ab") as fh:
        fh.write(b"Xgarbage\x00")
    monkeypatch.setattr(cli_decode, "_IN_MEMORY", 0)
    assert main(["decode", "--json", str(j)]) == 2
    cap = capsysbinary.readouterr()
    assert cap.out == b""
    assert b"record 6001" in cap.err and os.fsencode(j) in cap.err
