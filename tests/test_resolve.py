"""gfid -> path resolution against real final namespaces: the corpus' handle
listings (journals only) and the demo brick's FUSE manifest (brick handles,
gfid2path xattrs, journals)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from streamsync.analysis.resolve import JournalNamespace, Resolver
from streamsync.records import ROOT_GFID, EntryRecord
from streamsync.views import BrickView
from conftest import demo_manifest_paths, handle_paths

REPO = Path(__file__).parent.parent
DATA = REPO / "tests" / "data" / "gluster-10.3"
DEMO = REPO / "examples" / "demo-brick"
SCENARIOS = ["ascii-delpath-on", "ascii-delpath-off", "binary-delpath-on", "binary-delpath-off"]


@pytest.fixture(scope="module")
def demo_brick(tmp_path_factory):
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is needed to restore the brick's xattrs")
    brick = tmp_path_factory.mktemp("demo") / "brick"
    brick.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xzf",
                    str(DEMO / "demo.tar.gz"), "-C", str(brick)],
                   check=False, capture_output=True)
    return brick


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_journals_alone_give_the_final_namespace(scenario):
    """Replaying the raw journals (ascii and binary) reproduces every path, hard links included."""
    expected = handle_paths(scenario)
    r = Resolver.from_journals([DATA / "raw" / scenario])
    assert {g: set(r.paths(g)) for g in expected} == expected
    # hard links: hl_src has two names at the end (top/hl_src, mvdst/hl_link1_moved)
    multi = [ps for ps in expected.values() if len(ps) > 1]
    assert {"top/hl_src", "mvdst/hl_link1_moved"} in multi


def test_deleted_inodes_keep_their_last_path():
    r = Resolver.from_journals([DATA / "processed" / "ascii-delpath-on"])
    ns = r.namespace
    # rm top/tobeunlinked (P7); the capture-del-path field agrees with our replay
    gone = {g for g in ns.gone if ns.delete_paths.get(g) == "top/tobeunlinked"}
    assert len(gone) == 1
    g = gone.pop()
    assert r.paths(g) == ["top/tobeunlinked"]
    assert ns.current(g) == []
    # every captured delete path of a file equals the path our replay had for it
    mismatches = [(g, p, r.paths(g)) for g, p in ns.delete_paths.items()
                  if g in ns.gone and p not in r.paths(g) and g not in ns.dirs]
    assert mismatches == []


def test_rename_evicts_the_previous_holder():
    a, b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
    ns = JournalNamespace().feed([
        EntryRecord(a, "CREATE", ROOT_GFID, "x", 33188, 0, 0),
        EntryRecord(b, "CREATE", ROOT_GFID, "y", 33188, 0, 0),
        EntryRecord(b, "RENAME", ROOT_GFID, "y", pgfid1=ROOT_GFID, bname1="x")])
    assert ns.current(a) == [] and ns.gone[a] == [(ROOT_GFID, "x")]
    assert Resolver(namespace=ns).paths(b) == ["x"]


def test_unknown_parent_is_written_as_aux_gfid_path():
    p = "cccccccc-0000-4000-8000-000000000003"
    f = "dddddddd-0000-4000-8000-000000000004"
    ns = JournalNamespace().feed([EntryRecord(f, "CREATE", p, "n", 33188, 0, 0)])
    r = Resolver(namespace=ns)
    assert r.paths(f) == [f".gfid/{p}/n"]
    assert r.path("eeeeeeee-0000-4000-8000-000000000005") == ".gfid/eeeeeeee-0000-4000-8000-000000000005"
    assert r.path(ROOT_GFID) == "."


def test_brick_handles_and_gfid2path(demo_brick):
    """Brick only: directories from handle symlinks, files from trusted.gfid2path.*."""
    expected = demo_manifest_paths()
    r = Resolver(brick=demo_brick)
    got = {g: set(r.paths(g)) for g in expected}
    with open(DEMO / "demo.manifest.jsonl", encoding="utf-8") as fh:
        dirs = {d["gfid"] for d in map(json.loads, fh) if d["type"] == "d"}
    # directories never need xattrs
    assert {g: got[g] for g in dirs} == {g: expected[g] for g in dirs}
    assert len(dirs) == 35  # the README's count, the root included
    if os.geteuid() != 0:
        pytest.skip("trusted.gfid2path.* xattrs are only readable by root")
    assert got == expected


def test_brick_without_xattrs_falls_back_to_journals(demo_brick):
    expected = demo_manifest_paths()
    ns = JournalNamespace()
    from streamsync.analysis._input import iter_journals, read_records
    for c in iter_journals([demo_brick]):
        ns.feed(read_records(c))
    r = Resolver(brick=demo_brick, namespace=ns, use_xattrs=False)
    assert {g: set(r.paths(g)) for g in expected} == expected
    # journals alone agree as well
    r2 = Resolver(namespace=ns)
    assert {g: set(r2.paths(g)) for g in expected} == expected


def test_view_dir_entry_is_used(demo_brick):
    expected = demo_manifest_paths()
    r = Resolver(view=BrickView(demo_brick))
    dirs = [g for g in expected if r.names(g) and len(expected[g]) == 1
            and (demo_brick / next(iter(expected[g]))).is_dir()
            and not (demo_brick / next(iter(expected[g]))).is_symlink()]
    assert len(dirs) == 34  # every directory but the root
    for g in dirs:
        assert set(r.paths(g)) == expected[g]
