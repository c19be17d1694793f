"""Journal discovery: flat, dated, XSYNC, archives, bricks, HTIME history; always in stamp order."""

from __future__ import annotations

import os
import shutil
import tarfile

import pytest

from conftest import CORPUS, processed_journals, raw_journals
from streamsync.discover import (HISTORY_OK, HISTORY_PARTIAL, HISTORY_UNAVAILABLE, discover,
                                 history, read_changelog, read_htime)
from streamsync.errors import JournalError, SourceError
from streamsync.parse import parse_processed

RAW = CORPUS / "raw" / "ascii-delpath-on"


def _dated_brick(tmp_path, scenario="ascii-delpath-on"):
    """A brick-like tree: .glusterfs/changelogs/YYYY/MM/DD/CHANGELOG.<ts> + htime + active CHANGELOG."""
    import time
    cdir = tmp_path / "brick" / ".glusterfs" / "changelogs"
    for raw in raw_journals(scenario):
        ts = int(raw.name.split(".")[1])
        day = cdir / time.strftime("%Y/%m/%d", time.gmtime(ts))
        day.mkdir(parents=True, exist_ok=True)
        shutil.copy(raw, day / raw.name)
    (cdir / "CHANGELOG").write_bytes(b"GlusterFS Changelog | version: v1.2 | encoding : 2\n")
    shutil.copytree(CORPUS / "raw" / scenario / "htime", cdir / "htime")
    (cdir / "csnap").mkdir()
    return tmp_path / "brick"


def test_flat_directory_in_stamp_order():
    found = list(discover([RAW]))
    names = [p.name for p in raw_journals("ascii-delpath-on")]
    assert [c.name for c in found] == names
    assert all(c.size == os.path.getsize(c.path) and c.kind == "live" for c in found)


def test_dated_brick_layout_ignores_active_journal_htime_and_csnap(tmp_path):
    brick = _dated_brick(tmp_path)
    found = list(discover(brick))
    assert [c.name for c in found] == [p.name for p in raw_journals("ascii-delpath-on")]
    assert all("/20" in c.path for c in found)


def test_stamp_order_across_inputs_and_since_until(tmp_path):
    a = raw_journals("ascii-delpath-on")
    found = list(discover([a[5], a[1], a[3]]))
    assert [c.ts for c in found] == sorted(c.ts for c in found)
    ts = [c.ts for c in discover(RAW)]
    sub = [c.ts for c in discover(RAW, since=ts[3], until=ts[6])]
    assert sub == ts[3:7]


def test_xsync_and_archive_members(tmp_path):
    procs = processed_journals("ascii-delpath-on")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(procs[0], work / "XSYNC-CHANGELOG.1795460000")
    with tarfile.open(work / "archive_202611.tar", "w") as tar:
        for p in procs[1:4]:
            tar.add(p, arcname=p.name)
    found = list(discover(work))
    assert [c.kind for c in found] == ["xsync", "live", "live", "live"]
    assert [c.member for c in found[1:]] == [p.name for p in procs[1:4]]
    for c, p in zip(found[1:], procs[1:4]):
        assert list(read_changelog(c)) == list(parse_processed(p.read_bytes()))
        assert c.size == p.stat().st_size
    # the archive given directly as a path
    assert [c.member for c in discover(work / "archive_202611.tar")] == [p.name for p in procs[1:4]]


def test_read_changelog_detects_raw_and_processed():
    raw = next(discover(raw_journals("ascii-delpath-on")[2]))
    proc = next(discover(processed_journals("ascii-delpath-on")[2]))
    assert list(read_changelog(raw)) == list(read_changelog(proc))


def test_missing_path_and_bad_names_are_source_errors(tmp_path):
    with pytest.raises(SourceError):
        list(discover(tmp_path / "nope"))
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    with pytest.raises(SourceError, match="not a journal name"):
        list(discover(bad))


def test_htime_index_of_the_corpus():
    (htime,) = (RAW / "htime").iterdir()
    entries = read_htime(htime)
    assert len(entries) == 85
    assert [e.ts for e in entries] == sorted(e.ts for e in entries)
    nonempty = [e.ts for e in entries if not e.empty]
    assert nonempty == [int(p.name.split(".")[1]) for p in raw_journals("ascii-delpath-on")]


def test_history_range_skips_empty_rollovers_and_detects_partial():
    entries = read_htime(next((RAW / "htime").iterdir()))
    files = raw_journals("ascii-delpath-on")
    ts = [int(p.name.split(".")[1]) for p in files]
    last = entries[-1].ts
    h = history(RAW, ts[2], ts[8])
    assert h.status == HISTORY_OK
    assert [c.ts for c in h.changelogs] == ts[2:9]
    assert all(c.kind == "history" for c in h.changelogs)
    assert h.actual_end == ts[8]
    whole = history(RAW, entries[0].ts, last + 100)
    assert whole.status == HISTORY_PARTIAL
    assert [c.ts for c in whole.changelogs] == ts
    assert history(RAW, entries[0].ts - 50, last).status == HISTORY_UNAVAILABLE


def test_history_on_a_dated_brick(tmp_path):
    brick = _dated_brick(tmp_path)
    ts = [c.ts for c in discover(brick)]
    h = history(brick, ts[0], ts[-1])
    assert [c.ts for c in h.changelogs] == ts


def test_history_reports_listed_but_missing_journal(tmp_path):
    brick = _dated_brick(tmp_path)
    victim = next(discover(brick))
    os.unlink(victim.path)
    with pytest.raises(SourceError, match="listed but not found"):
        history(brick, victim.ts, victim.ts + 30)


def test_corrupt_htime_entry(tmp_path):
    bad = tmp_path / "HTIME.1"
    bad.write_bytes(b"/b/.glusterfs/changelogs/CHANGELOG.1700000000\0/b/garbage\0")
    with pytest.raises(JournalError):
        read_htime(bad)
