"""Second real GlusterFS 10.3 dataset (``tests/data/gluster-10.3-b``): hostile names,
renames over existing files and directories, symlink replacement, deep trees.

The expected outputs are libgfchangelog's own processed files and the brick's final
handles listing (both written by GlusterFS, see the dataset README); nothing here is
produced by streamsync.
"""

from __future__ import annotations

import collections
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from streamsync.decode import decode_file, journal_to_processed, read_header
from streamsync.discover import discover
from streamsync.ops import EntryOp
from streamsync.options import Options
from streamsync.pipeline import plan_changelogs
from streamsync.records import ROOT_GFID, EntryRecord, Stat
from streamsync.sinks.conflicts import resolve_conflicts
from streamsync.sinks.replica import ReplicaSink
from streamsync.views import MemoryView
from conftest import replayed_namespace

DATA = Path(__file__).parent / "data" / "gluster-10.3-b"
ASCII = ("ascii-delpath-on", "ascii-delpath-off")
BINARY = ("binary-delpath-on",)
SCENARIOS = ASCII + BINARY
CREATING = ("CREATE", "MKDIR", "MKNOD", "SYMLINK", "LINK")


def _stamp(p: Path) -> int:
    return int(p.name.split(".")[1])


def raws(scenario: str) -> list[Path]:
    return sorted((DATA / "raw" / scenario).glob("CHANGELOG.*"), key=_stamp)


def processed(scenario: str) -> dict[str, Path]:
    return {p.name: p for p in (DATA / "processed" / scenario).glob("CHANGELOG.*")}


def handles(scenario: str) -> set[tuple[str, str, str]]:
    """``(gfid, type, path)`` of every name on the brick at the end (not the root)."""
    table = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
    rows = set()
    text = (DATA / "handles" / f"{scenario}.tsv").read_bytes().decode("utf-8", "surrogateescape")
    for line in text.split("\n"):
        if not line:
            continue
        gfid, kind, path = line.split("\t")
        path = re.sub(r"\\[\\tnr]", lambda m: table[m.group(0)], path)
        if path != ".":
            rows.add((gfid, kind, path))
    return rows


def source_view(scenario: str) -> MemoryView:
    return MemoryView.from_json(DATA / "source-state" / f"{scenario}.json")


# --------------------------------------------------------------- decoding


@pytest.mark.parametrize("scenario", ASCII)
def test_ascii_journals_decode_byte_identical_to_libgfchangelog(scenario):
    journals = raws(scenario)
    procs = processed(scenario)
    assert len(journals) == len(procs) >= 9
    for raw in journals:
        data = raw.read_bytes()
        assert read_header(data).encoding == 2
        assert journal_to_processed(data, path=str(raw)) == procs[raw.name].read_bytes(), raw.name


def test_decode_cli_on_the_journal_directory_prints_libgfchangelogs_output():
    scenario = "ascii-delpath-on"
    out = subprocess.run([sys.executable, "-m", "streamsync", "decode", str(DATA / "raw" / scenario)],
                         capture_output=True, check=True, timeout=60).stdout
    expected = b"".join(p.read_bytes() for p in
                        sorted(processed(scenario).values(), key=_stamp))
    assert out == expected


def _normalise(name: str | None) -> str | None:
    # `ln -sfn` makes its temporary symlink under a random 'CuXXXXXX' name
    return "<ln-tmp>" if name is not None and re.fullmatch(r"Cu[A-Za-z0-9]{6}", name) else name


def _entries(scenario: str) -> collections.Counter:
    out: collections.Counter = collections.Counter()
    for raw in raws(scenario):
        for r in decode_file(raw):
            if isinstance(r, EntryRecord):
                out[(r.fop, _normalise(r.bname), _normalise(r.bname1), r.path is not None,
                     r.mode, r.uid, r.gid)] += 1
    return out


def test_binary_journals_decode_and_match_the_ascii_run_of_the_same_workload():
    journals = raws("binary-delpath-on")
    procs = processed("binary-delpath-on")
    assert procs, "the D-only journal libgfchangelog could parse must be in the dataset"
    types: collections.Counter = collections.Counter()
    for raw in journals:
        data = raw.read_bytes()
        assert read_header(data).encoding == 1
        types.update(r.TYPE for r in decode_file(raw))
        if raw.name in procs:
            assert journal_to_processed(data, path=str(raw)) == procs[raw.name].read_bytes()
    assert types["E"] > 250 and types["M"] >= 10
    assert _entries("binary-delpath-on") == _entries("ascii-delpath-on")


def test_hostile_names_are_in_the_journals():
    names = {r.bname1 or r.bname for raw in raws("ascii-delpath-on") for r in decode_file(raw)
             if isinstance(r, EntryRecord)}
    raw_names = {n.encode("utf-8", "surrogateescape") for n in names}
    assert any(b"\xff\xfe" in n for n in raw_names)       # invalid UTF-8
    assert any(b"\r" in n for n in raw_names)
    assert any(b"\n" in n for n in raw_names)
    assert any(b"\t" in n for n in raw_names)
    assert any(b"\\" in n for n in raw_names)
    assert any(len(n) == 255 for n in raw_names)
    assert any("名前" in n for n in names)


# -------------------------------------------------------- namespace replay


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_journal_replay_gives_the_final_brick_namespace(scenario):
    final = {(gfid, path) for gfid, _, path in handles(scenario)}
    assert replayed_namespace(raws(scenario)) == final
    assert len(final) > 150


# ------------------------------------------------------------------ planning


def _plans(scenario: str, where: str, **opts):
    options = Options.from_pairs([f"{k.replace('_', '-')}={v}" for k, v in opts.items()])
    return list(plan_changelogs(discover([DATA / where / scenario]), view=source_view(scenario),
                                options=options, data_stime=None, entry_stime=None))


def _gfid_of(scenario: str, path: str) -> str:
    [gfid] = [g for g, _, p in handles(scenario) if p == path]
    return gfid


@pytest.mark.parametrize("scenario", ASCII)
def test_plan_raw_and_processed_journals_alike(scenario):
    from_raw = _plans(scenario, "raw")
    from_processed = _plans(scenario, "processed")
    assert len(from_raw) == len(from_processed) == len(raws(scenario))
    for a, b in zip(from_raw, from_processed):
        assert (a.entry_ops, a.meta_gfids, a.data_gfids, a.skipped) == \
            (b.entry_ops, b.meta_gfids, b.data_gfids, b.skipped)


def test_plan_of_the_real_workload():
    scenario = "ascii-delpath-on"
    plans = _plans(scenario, "processed")
    ops = [op for p in plans for op in p.entry_ops]
    fops = collections.Counter(op.op for op in ops)
    records = collections.Counter(r.fop for raw in raws(scenario) for r in decode_file(raw)
                                  if isinstance(r, EntryRecord))
    # every MKDIR/CREATE/MKNOD/RENAME/UNLINK/RMDIR is sent (the seed sends them even when
    # the gfid is gone); SYMLINK/LINK only while their name still holds the gfid
    for fop in ("MKDIR", "CREATE", "RENAME", "UNLINK", "RMDIR"):
        assert fops[fop] == records[fop], fop
    assert fops["MKNOD"] == records["MKNOD"] == 2            # the two fifos
    assert 0 < fops["SYMLINK"] < records["SYMLINK"]
    data = {g for p in plans for g in p.data_gfids}
    meta = {g for p in plans for g in p.meta_gfids}
    assert _gfid_of(scenario, "big.bin") in data
    assert _gfid_of(scenario, "sparse.img") in data
    assert _gfid_of(scenario, "keep/s002") in meta              # chmod 4755
    # the RENAME of a file over an existing one carries the source's stat
    over = [op for op in ops if op.op == "RENAME" and op.bname1 == "over_dst"]
    assert len(over) == 1 and over[0].gfid == _gfid_of(scenario, "keep/over_dst")
    assert stat.S_ISREG(over[0].stat.mode)
    # ignore-deletes drops every UNLINK/RMDIR
    kept = [op for p in _plans(scenario, "processed", ignore_deletes="true") for op in p.entry_ops]
    assert not [op for op in kept if op.op in ("UNLINK", "RMDIR")]
    assert len(kept) == len(ops) - fops["UNLINK"] - fops["RMDIR"]


# -------------------------------------- entry replication with conflict fixes


def _replica_namespace(sink: ReplicaSink, root: str) -> set[tuple[str, str]]:
    out = set()

    def walk(dirpath: str, gfid: str, rel: str) -> None:
        for entry in os.scandir(dirpath):
            if not rel and entry.name == ".glusterfs":
                continue
            child = sink.entry_gfid(gfid, entry.name)
            assert child is not None, (rel, entry.name)
            path = f"{rel}/{entry.name}" if rel else entry.name
            out.add((child, path))
            if entry.is_dir(follow_symlinks=False):
                walk(entry.path, child, path)

    walk(root, ROOT_GFID, "")
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_planned_entry_ops_replicate_to_the_final_namespace(scenario, tmp_path):
    """Entry ops of every journal, in order, through the replica sink with gfid-conflict
    resolution (as the dispatcher applies them): the replica's names and gfids end up
    exactly as on the brick, including creates renamed over in the same journal."""
    view = source_view(scenario)
    root = tmp_path / "replica"
    sink = ReplicaSink(root)
    try:
        for plan in _plans(scenario, "processed" if scenario in ASCII else "raw"):
            failures = sink.apply_entries(plan.entry_ops)
            if failures:
                _, failures = resolve_conflicts(sink, plan.entry_ops, failures, view=view)
            assert failures == [], (plan.changelog.path, failures[:3])
        final = {(gfid, path) for gfid, _, path in handles(scenario)}
        assert _replica_namespace(sink, str(root)) == final
    finally:
        sink.close()


def G(n: int) -> str:
    return f"5b1c2d3e-0000-4000-8000-{n:012x}"


FILE = Stat(0, 0, 0o100644, 0.0, 0.0)
DIR = Stat(0, 0, 0o40755, 0.0, 0.0)


def test_create_then_rename_over_it_in_one_journal_converges(tmp_path):
    """Regression: ``echo > f; echo > f.tmp; mv f.tmp f`` (and the same with an empty
    directory) in one journal. The retry after the conflict fix used to re-create
    the deleted target from its own CREATE/MKDIR, so the rename failed forever and
    the replica kept the old file and the temporary name."""
    R = ROOT_GFID
    ops = [EntryOp("CREATE", G(1), R, "f", mode=0o100644, uid=0, gid=0),
           EntryOp("CREATE", G(2), R, "f.tmp", mode=0o100644, uid=0, gid=0),
           EntryOp("RENAME", G(2), R, "f.tmp", pgfid1=R, bname1="f", stat=FILE),
           EntryOp("MKDIR", G(3), R, "d", mode=0o40755, uid=0, gid=0),
           EntryOp("MKDIR", G(4), R, "d.new", mode=0o40755, uid=0, gid=0),
           EntryOp("CREATE", G(5), G(4), "inner", mode=0o100644, uid=0, gid=0),
           EntryOp("RENAME", G(4), R, "d.new", pgfid1=R, bname1="d", stat=DIR)]
    view = MemoryView({G(2): FILE, G(4): DIR, G(5): FILE},
                      {(R, "f"): G(2), (R, "d"): G(4), (G(4), "inner"): G(5)})
    sink = ReplicaSink(tmp_path / "replica")
    try:
        failures = sink.apply_entries(ops)
        assert failures  # the sink reports the occupied new names (EEXIST, dst)
        left, failures = resolve_conflicts(sink, ops, failures, view=view)
        assert failures == []
        assert sink.entry_gfid(R, "f") == G(2) and sink.entry_gfid(R, "f.tmp") is None
        assert sink.entry_gfid(R, "d") == G(4) and sink.entry_gfid(R, "d.new") is None
        assert sink.entry_gfid(G(4), "inner") == G(5)
        assert sink.lstat(G(1)) is None and sink.lstat(G(3)) is None
        assert not [op for op in left if op.gfid in (G(1), G(3))]
        again = sink.apply_entries(left)  # replay (a crash before the stime moved) converges
        assert resolve_conflicts(sink, left, again, view=view)[1] == []
        assert sink.entry_gfid(R, "f") == G(2) and sink.entry_gfid(R, "d") == G(4)
    finally:
        sink.close()
