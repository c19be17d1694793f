"""The raw journal decoder against the real GlusterFS 10.3 corpus (libgfchangelog's output)."""

from __future__ import annotations

import collections

import pytest

from conftest import (ASCII_SCENARIOS, BINARY_SCENARIOS, SCENARIOS, handles,
                      processed_journals, raw_journals, replayed_namespace)
from streamsync.decode import decode_file, journal_to_processed, read_header
from streamsync.records import EntryRecord


@pytest.mark.parametrize("scenario", ASCII_SCENARIOS)
def test_ascii_journals_render_byte_identical_to_libgfchangelog(scenario):
    raws = raw_journals(scenario)
    procs = {p.name: p for p in processed_journals(scenario)}
    assert len(raws) == len(procs) > 20
    for raw in raws:
        data = raw.read_bytes()
        assert read_header(data).encoding == 2
        assert journal_to_processed(data, path=str(raw)) == procs[raw.name].read_bytes(), raw.name


@pytest.mark.parametrize("scenario", BINARY_SCENARIOS)
def test_binary_journals_decode_completely_and_d_only_files_match(scenario):
    raws = raw_journals(scenario)
    procs = {p.name: p for p in processed_journals(scenario)}
    total = 0
    for raw in raws:
        data = raw.read_bytes()
        assert read_header(data).encoding == 1
        records = decode_file(raw)
        total += len(records)
        if raw.name in procs:  # the only files libgfchangelog could handle
            assert journal_to_processed(data) == procs[raw.name].read_bytes(), raw.name
    assert total > 4000
    assert procs, "corpus must hold the D-only processed files"


def _entry_multiset(scenario):
    out = collections.Counter()
    for raw in raw_journals(scenario):
        for r in decode_file(raw):
            if isinstance(r, EntryRecord):
                out[(r.fop, r.bname, r.bname1, r.path is not None)] += 1
    return out


@pytest.mark.parametrize("delpath", ["on", "off"])
def test_binary_entries_match_ascii_entries_of_the_same_workload(delpath):
    binary = _entry_multiset(f"binary-delpath-{delpath}")
    ascii_ = _entry_multiset(f"ascii-delpath-{delpath}")
    assert binary == ascii_
    assert sum(binary.values()) > 2000


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_replayed_journals_give_the_final_brick_namespace(scenario):
    final = {(gfid, path) for gfid, _, path in handles(scenario)[1:]}
    assert replayed_namespace(raw_journals(scenario)) == final
    assert len(final) > 1900


@pytest.mark.parametrize("scenario,captured", [("ascii-delpath-on", True),
                                               ("ascii-delpath-off", False),
                                               ("binary-delpath-on", True),
                                               ("binary-delpath-off", False)])
def test_delete_path_slot_follows_capture_del_path(scenario, captured):
    deletes = [r for raw in raw_journals(scenario) for r in decode_file(raw)
               if isinstance(r, EntryRecord) and r.fop in ("UNLINK", "RMDIR")]
    assert deletes
    if captured:
        assert all(r.path for r in deletes)
        assert all(r.path.endswith(r.bname) for r in deletes)
    else:
        assert all(r.path is None for r in deletes)


def test_hostile_names_survive_decoding():
    names = {r.bname for raw in raw_journals("ascii-delpath-on") for r in decode_file(raw)
             if isinstance(r, EntryRecord)}
    assert any(" " in n for n in names)
    assert any("\n" in n for n in names)
    assert any("%" in n for n in names)
    assert any(not n.isascii() for n in names)
