"""``streamsync plan``: JSON lines, summary, options, errors, and the documented
differences from the seed (docs/differences.md)."""

import os

import orjson
import pytest

from seed_model import model_run
from streamsync.cli import main
from streamsync.records import ROOT_GFID, name_from_json
from streamsync.synth import synth_workload
from streamsync.views import BrickView, MemoryView

R = ROOT_GFID
F = "11111111-1111-4111-8111-111111111111"
L = "33333333-3333-4333-8333-333333333333"
X = "44444444-4444-4444-8444-444444444444"


def run_plan(capsysbinary, *argv):
    rc = main(["plan", *argv])
    out = capsysbinary.readouterr()
    return rc, out.out, out.err


def rows(text):
    out = []
    for line in text.splitlines():
        row = orjson.loads(line)
        for op in row["entry_ops"]:
            for k in ("entry", "entry1", "link"):
                if isinstance(op.get(k), dict):
                    op[k] = name_from_json(op[k])
        out.append(row)
    return out


def test_plan_json_lines_match_the_seed_model(tmp_path, capsysbinary):
    w = synth_workload(11, ops=400, changelogs=8, names="hostile")
    cdir, spath = w.write(tmp_path)
    tss = [ts for ts, _ in w.changelogs]
    rc, out, err = run_plan(capsysbinary, "--changelogs", cdir, "--source-state", spath,
                            "--data-stime", str(tss[2]), "--entry-stime", str(tss[4]),
                            "-o", "changelog-batch-size=1500", "-o", "ignore-deletes=true")
    assert rc == 0, err
    got = rows(out)
    inputs = []
    for ts, _ in w.changelogs:
        with open(os.path.join(cdir, f"CHANGELOG.{ts}"), "rb") as fh:
            inputs.append((f"CHANGELOG.{ts}", ts, fh.read()))
    want = model_run(inputs, w.state, {"changelog-batch-size": 1500, "ignore-deletes": True},
                     data_stime=(tss[2], 0), entry_stime=(tss[4], 0))
    assert got == want
    assert [r["skipped"] for r in got][:3] == [True, True, False]
    assert got[0]["batch"] is None and got[2]["batch"] == 0
    assert list(got[3]) == ["changelog", "ts", "batch", "skipped", "entries_gated", "entry_ops",
                            "meta_ops", "data", "stats"]


def test_plan_summary_table(tmp_path, capsysbinary):
    w = synth_workload(3, ops=100, changelogs=3)
    cdir, spath = w.write(tmp_path)
    rc, out, _ = run_plan(capsysbinary, "--changelogs", cdir, "--source-state", spath,
                          "--summary")
    text = out.decode()
    assert rc == 0 and "3 changelogs" in text and text.count("CHANGELOG.") == 3


def test_plan_leaves_the_collector_as_it_found_it(tmp_path, capsysbinary):
    """main() also runs inside other programs: the collector is paused while it
    plans, not switched off for the rest of the caller's life."""
    import gc
    w = synth_workload(4, ops=50, changelogs=2)
    cdir, spath = w.write(tmp_path)
    assert gc.isenabled()
    assert run_plan(capsysbinary, "--changelogs", cdir, "--source-state", spath)[0] == 0
    assert gc.isenabled()


def test_plan_errors_are_one_line_with_exit_2(tmp_path, capsysbinary):
    w = synth_workload(3, ops=20, changelogs=2)
    cdir, spath = w.write(tmp_path)
    rc, _, err = run_plan(capsysbinary, "--changelogs", cdir, "--source-state", spath,
                          "-o", "no-such=1")
    assert rc == 2 and b"unknown option" in err
    (tmp_path / "changelogs" / "CHANGELOG.1800000000").write_text(f"E {F} FROB {R}/x\n")
    rc, _, err = run_plan(capsysbinary, "--changelogs", cdir, "--source-state", spath)
    assert rc == 2 and b"CHANGELOG.1800000000:1:" in err and b"Traceback" not in err
    rc, _, err = run_plan(capsysbinary, "--changelogs", cdir, "--brick", str(tmp_path))
    assert rc == 2 and b"not a brick directory" in err
    rc, _, err = run_plan(capsysbinary, "--changelogs", cdir, "--mount", str(tmp_path))
    assert rc == 2 and b"aux-gfid" in err
    rc, _, err = run_plan(capsysbinary, "--changelogs", str(tmp_path / "nope"),
                          "--source-state", spath)
    assert rc == 2 and b"no such file" in err


def test_plan_on_a_brick_directory(tmp_path, capsysbinary):
    """--brick: the source view is a brick's handle tree."""
    brick = tmp_path / "brick"
    (brick / ".glusterfs" / "00" / "00").mkdir(parents=True)
    os.symlink("../../..", brick / ".glusterfs" / "00" / "00" / R)
    (brick / "a b").write_text("x")
    (brick / ".glusterfs" / "11" / "11").mkdir(parents=True)
    os.link(brick / "a b", brick / ".glusterfs" / "11" / "11" / F)
    cdir = tmp_path / "cl"
    cdir.mkdir()
    (cdir / "CHANGELOG.1700000001").write_text(
        f"E {F} CREATE 33188 0 0 {R}/a%20b\nD {F}\nM {F} SETATTR\nE {F} LINK {R}/a%20b\n"
        f"M {X} SETATTR\n")
    rc, out, err = run_plan(capsysbinary, "--changelogs", str(cdir), "--brick", str(brick))
    assert rc == 0, err
    (row,) = rows(out)
    assert [op["op"] for op in row["entry_ops"]] == ["CREATE", "LINK"]
    st = os.lstat(brick / "a b")
    assert row["meta_ops"] == [{"op": "META", "go": f".gfid/{F}",
                                "stat": {"uid": st.st_uid, "gid": st.st_gid, "mode": st.st_mode,
                                         "atime": st.st_atime, "mtime": st.st_mtime}}]
    assert row["data"] == [f".gfid/{F}"]


# ------------------------------------------------- documented differences from the seed
def _state(tmp_path, view):
    p = tmp_path / "state.json"
    p.write_bytes(orjson.dumps(view.to_json()))
    return str(p)


def test_difference_rename_of_symlink_whose_new_name_holds_a_regular_file(tmp_path,
                                                                         capsysbinary):
    """Seed: readlink through the new name -> EINVAL -> the worker dies.
    streamsync: the renamed symlink's own target."""
    from streamsync.records import Stat
    view = MemoryView({L: Stat(0, 0, 0o120777, 1.0, 1.0), F: Stat(0, 0, 0o100644, 1.0, 1.0)},
                      {(R, "new"): F, (R, "other"): L}, {L: "the/target"})
    cdir = tmp_path / "cl"
    cdir.mkdir()
    (cdir / "CHANGELOG.1700000001").write_text(f"E {L} RENAME {R}/old {R}/new\n")
    rc, out, _ = run_plan(capsysbinary, "--changelogs", str(cdir),
                          "--source-state", _state(tmp_path, view))
    (row,) = rows(out)
    assert rc == 0 and row["entry_ops"][0]["link"] == "the/target"


@pytest.mark.parametrize("name", ["tab at end\t", "cr\rinside", "vt\x0b", "nbsp\u00a0",
                                  "ls\u2028", os.fsdecode(b"latin1-\xe9t\xe9")])
def test_difference_names_the_seeds_line_reading_corrupts_are_kept(tmp_path, capsysbinary,
                                                                   name):
    """Seed: text-mode readlines (splits at CR), str.strip (eats trailing whitespace),
    strict UTF-8 (dies on other bytes). streamsync: bytes, split on LF only."""
    from streamsync.escaping import escape
    from streamsync.records import Stat
    view = MemoryView({F: Stat(0, 0, 0o100644, 1.0, 1.0)}, {(R, name): F}, {})
    cdir = tmp_path / "cl"
    cdir.mkdir()
    line = f"E {F} CREATE 33188 0 0 {R}/{escape(name)}\nE {F} LINK {R}/{escape(name)}\n"
    (cdir / "CHANGELOG.1700000001").write_bytes(line.encode("utf-8", "surrogateescape"))
    rc, out, _ = run_plan(capsysbinary, "--changelogs", str(cdir),
                          "--source-state", _state(tmp_path, view))
    (row,) = rows(out)
    assert [op["entry"] for op in row["entry_ops"]] == [f".gfid/{R}/{name}"] * 2


def test_difference_counters_count_each_entry_once(tmp_path, capsysbinary):
    """Seed: the status 'entry' counter is raised twice per changelog and 'meta' by the
    entry count. streamsync plans carry each count once (stats per fop, len(entry_ops),
    len(meta_ops)) for the dispatcher's status."""
    w = synth_workload(5, ops=200, changelogs=1, names="plain")
    cdir, spath = w.write(tmp_path)
    rc, out, _ = run_plan(capsysbinary, "--changelogs", cdir, "--source-state", spath)
    (row,) = rows(out)
    recs = w.changelogs[0][1]
    for fop in ("CREATE", "MKDIR", "UNLINK", "RENAME", "SYMLINK"):
        assert row["stats"][fop] == sum(1 for r in recs if r.TYPE == "E" and r.fop == fop)
    assert row["stats"]["SETATTR"] == sum(1 for r in recs if r.TYPE == "M" and
                                          r.fop == "SETATTR")


def test_difference_directory_rename_fix_reads_the_brick_handle(tmp_path):
    """Seed: the directory-rename conflict fix reads gconf.local_path, which does not
    exist (AttributeError). streamsync: BrickView.dir_entry reads the handle under the
    brick the view was opened on."""
    brick = tmp_path / "b"
    (brick / ".glusterfs" / "00" / "00").mkdir(parents=True)
    os.symlink("../../..", brick / ".glusterfs" / "00" / "00" / R)
    (brick / "renamed dir").mkdir()
    (brick / ".glusterfs" / "22" / "22").mkdir(parents=True)
    d = "22222222-2222-4222-8222-222222222222"
    os.symlink(f"../../00/00/{R}/renamed dir", brick / ".glusterfs" / "22" / "22" / d)
    assert BrickView(brick).dir_entry(d) == (R, "renamed dir")


def test_plan_reads_raw_brick_journals_like_their_processed_form(tmp_path, capsysbinary):
    """--changelogs on raw journals (detected) prints exactly what the processed
    journals give: same ops, same batches (sizes of the processed rendering)."""
    import sys
    sys.path.insert(0, os.path.dirname(__file__))
    from test_pipeline import DATA, corpus_view
    state = _state(tmp_path, corpus_view("ascii-delpath-off"))
    out = []
    for kind in ("raw", "processed"):
        rc, text, err = run_plan(capsysbinary, "--changelogs",
                                 os.path.join(DATA, kind, "ascii-delpath-off"),
                                 "--source-state", state, "-o", "changelog-batch-size=4000")
        assert rc == 0, err
        out.append(rows(text))
    assert out[0] == out[1] and len({r["batch"] for r in out[0]}) > 3
