"""glusterfind-style listing against the corpus workload (workload.sh) and the
final namespaces (handles/*.tsv), for ascii and binary raw journals."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from streamsync.analysis._input import iter_journals, read_records
from streamsync.analysis.changes import changes_from_paths, list_changes
from streamsync.analysis.resolve import Resolver
from streamsync.cli import main
from conftest import SCENARIOS, demo_manifest_paths, handle_paths

DATA = Path(__file__).parent / "data" / "gluster-10.3"
DEMO = Path(__file__).parent.parent / "examples" / "demo-brick"


def phases(scenario: str) -> dict[str, float]:
    out = {}
    for line in (DATA / "meta" / scenario / "phases.log").read_text().splitlines():
        ts, name = line.split()[:2]
        out.setdefault(name, float(ts))
    return out


DEEP = "deep/l01/l02"
# P6 (rename) and P7 (unlink-rmdir) of workload.sh, as the state before P6 names them
P6_P7 = {
    "RENAME top/f1 top/f1_renamed",
    "RENAME mvsrc/m1 mvdst/m1_moved",
    "RENAME mvsrc/m2 top/overwrite_target",
    "DELETE top/overwrite_target",          # replaced by the rename above: no UNLINK journaled
    "RENAME top/a/b/c top/c_moved",
    "DELETE empty2",                        # mv empty2 empty2_renamed; rmdir empty2_renamed
    "RENAME répertoire_ü_日本 dir with space/répertoire_ü_日本",
    "RENAME top/hl_link1 mvdst/hl_link1_moved",
    "RENAME top/new\nline top/new\nline renamed",
    "RENAME top/100%20sure%.txt mvdst/100%25 sure.txt",
    "DELETE top/tobeunlinked",
    "DELETE dir with space/hl link 2",
    "DELETE top/sym_abs",
    "DELETE top/fifo1",
    "DELETE empty1/x",
    "DELETE empty1",
    "DELETE top/chardev",
} | {"DELETE " + DEEP + "".join(f"/l{i:02d}" for i in range(3, k + 1)) for k in range(3, 17)} \
  | {"DELETE " + DEEP + "".join(f"/l{i:02d}" for i in range(3, 17)) + "/leaf"}


def _rows(scenario, **kw):
    return changes_from_paths([str(DATA / "raw" / scenario)], **kw)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_whole_history_is_the_final_namespace(scenario):
    rows = _rows(scenario)
    expected = {p for ps in handle_paths(scenario).values() for p in ps} - {"."}
    new = [r.path for r in rows if r.kind == "NEW"]
    assert len(new) == len(set(new))
    assert set(new) == expected
    # the only pre-existing inode is the root (SETXATTR logged at mount)
    assert [r.line() for r in rows if r.kind != "NEW"] == ["MODIFY ."]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_renames_and_deletes_of_p6_p7(scenario):
    ph = phases(scenario)
    rows = _rows(scenario, since=math.floor(ph["P6"]), until=math.floor(ph["P8"]) - 1)
    lines = [r.line(encode=False) for r in rows]
    assert len(lines) == len(set(lines))
    assert set(lines) == P6_P7
    # the replaced target is deleted before the rename takes its name
    assert lines.index("DELETE top/overwrite_target") < lines.index(
        "RENAME mvsrc/m2 top/overwrite_target")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_mixed_phase_p9(scenario):
    ph = phases(scenario)
    rows = _rows(scenario, since=math.floor(ph["P9"]))
    kinds = Counter(r.kind for r in rows)
    # cp -a -> NEW top/f2_copy; slow_growing appended 6 times -> one NEW;
    # tmp_short and open_unlinked are created and gone inside the window -> nothing
    assert sorted(r.path for r in rows if r.kind == "NEW") == ["top/f2_copy", "top/slow_growing"]
    # 50 moves from bulk/d00 to bulk/d01
    renames = [r for r in rows if r.kind == "RENAME"]
    assert len(renames) == 50
    assert all(r.path.startswith("bulk/d00/f") and r.newpath == "bulk/d01/moved_" + r.path[9:]
               for r in renames)
    # rm -rf bulk/d02: the directory and its 100 files
    deletes = {r.path for r in rows if r.kind == "DELETE"}
    assert deletes == {"bulk/d02"} | {f"bulk/d02/f{i}" for i in range(2, 2000, 20)}
    # chmod -R g+w bulk/d03 (dir + 100 files), setfattr on 30 of d04, append to 30 of d05
    modified = [r.path for r in rows if r.kind == "MODIFY"]
    assert len(modified) == len(set(modified)) == kinds["MODIFY"] == 161
    assert sum(p == "bulk/d03" or p.startswith("bulk/d03/") for p in modified) == 101
    assert sum(p.startswith("bulk/d04/") for p in modified) == 30
    assert sum(p.startswith("bulk/d05/") for p in modified) == 30


def test_only_namespace_and_json_cli(capsys):
    ph = phases("ascii-delpath-on")
    src = str(DATA / "processed" / "ascii-delpath-on")
    since = str(math.floor(ph["P9"]))
    assert main(["changes", src, "--since", since, "--only-namespace-changes"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("MODIFY") for line in out)
    assert len(out) == 2 + 50 + 101
    assert main(["changes", "--json", src, "--since", since]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert Counter(d["type"] for d in docs) == {"MODIFY": 161, "DELETE": 101, "RENAME": 50, "NEW": 2}
    assert all(len(d["gfid"]) == 36 for d in docs)


def test_cli_escapes_like_glusterfind(capsys):
    ph = phases("ascii-delpath-off")
    src = str(DATA / "raw" / "ascii-delpath-off")
    assert main(["changes", src, "--since", str(math.floor(ph["P6"])),
                 "--until", str(math.floor(ph["P7"]) - 1)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "RENAME top/100%2520sure%25.txt mvdst/100%2525%20sure.txt" in out
    assert "RENAME top/new%0Aline top/new%0Aline%20renamed" in out


def test_brick_resolves_names_older_than_the_journals(tmp_path):
    """Only the last journals, plus the brick for older names == full replay."""
    import subprocess
    brick = tmp_path / "brick"
    brick.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-xzf", str(DEMO / "demo.tar.gz"),
                    "-C", str(brick)], check=False, capture_output=True)
    journals = list(iter_journals([brick]))
    since = journals[-1].ts  # P8: new directory, appends, chmod, touch, setfattr
    full = list_changes(((c, read_records(c)) for c in journals), since=since)
    window_only = list_changes(((c, read_records(c)) for c in journals if c.ts >= since),
                               resolver=Resolver(brick=brick))
    assert [r.line() for r in window_only] == [r.line() for r in full]
    assert not any(".gfid/" in r.line() for r in full)
    # every NEW/MODIFY path exists in the final FUSE manifest
    manifest = {p for ps in demo_manifest_paths().values() for p in ps}
    assert {r.path for r in full if r.kind in ("NEW", "MODIFY")} <= manifest
    assert Counter(r.kind for r in full)["NEW"] == 12  # 10 files + 2 directories
