"""BrickView and the pipeline on the bundled real GlusterFS 10.3 brick snapshot,
checked against the namespace the FUSE mount showed (demo.manifest.jsonl)."""

import hashlib
import os
import stat
import subprocess

import orjson
import pytest

from streamsync.discover import discover
from streamsync.options import Options
from streamsync.pipeline import plan_changelogs
from streamsync.records import ROOT_GFID, Stat
from streamsync.views import BrickView, MemoryView

DEMO = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "demo-brick")
TYPES = {"d": stat.S_ISDIR, "f": stat.S_ISREG, "l": stat.S_ISLNK, "p": stat.S_ISFIFO}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    brick = tmp_path_factory.mktemp("demo") / "brick"
    brick.mkdir()
    # GNU tar, as the snapshot was made: Python's tarfile turns a hard link to a
    # dangling symlink into a copy, which is not the brick any more
    subprocess.run(["tar", "-xzf", os.path.join(DEMO, "demo.tar.gz"), "-C", str(brick)],
                   check=True)
    with open(os.path.join(DEMO, "demo.manifest.jsonl"), "rb") as fh:
        manifest = [orjson.loads(line) for line in fh]
    return str(brick), manifest


def test_brick_view_answers_like_the_mount_showed(demo):
    brick, manifest = demo
    view = BrickView(brick, use_xattrs=False)   # handles only, as documented
    gfid_of = {m["path"]: m["gfid"] for m in manifest}
    names = [(gfid_of[os.path.dirname(m["path"]) or "."], os.path.basename(m["path"]))
             for m in manifest if m["path"] != "."]
    snap = view.prefetch([m["gfid"] for m in manifest], names)
    checked = 0
    for m in manifest:
        g = m["gfid"]
        st = snap.lstat(g)
        assert st is not None and TYPES[m["type"]](st.mode), m["path"]
        assert (st.mode & 0o7777, st.uid, st.gid) == (int(m["mode"], 8), m["uid"], m["gid"])
        if m["type"] == "l":
            assert snap.readlink(g) == m["target"]
        else:
            assert snap.readlink(g) is None
        if m["path"] == ".":
            assert g == ROOT_GFID and view.dir_entry(g) is None
            continue
        parent = gfid_of[os.path.dirname(m["path"]) or "."]
        base = os.path.basename(m["path"])
        assert snap.entry_gfid(parent, base) == g, m["path"]
        if m["type"] == "d":
            assert view.dir_entry(g) == (parent, base)
            assert view.data_path(g) is None
        else:
            assert view.dir_entry(g) is None
        if m["type"] == "f":
            with open(view.data_path(g), "rb") as fh:
                assert hashlib.sha256(fh.read()).hexdigest() == m["sha256"]
        checked += 1
    assert checked == len(manifest) - 1 == 335


def _manifest_view(manifest):
    """An independent MemoryView of the namespace from the manifest (times left out)."""
    modes = {"d": 0o040000, "f": 0o100000, "l": 0o120000, "p": 0o010000}
    gfid_of = {m["path"]: m["gfid"] for m in manifest}
    inodes, links, entries = {}, {}, {}
    for m in manifest:
        inodes[m["gfid"]] = Stat(m["uid"], m["gid"], modes[m["type"]] | int(m["mode"], 8), 0, 0)
        if m["type"] == "l":
            links[m["gfid"]] = m["target"]
        if m["path"] != ".":
            entries[(gfid_of[os.path.dirname(m["path"]) or "."],
                     os.path.basename(m["path"]))] = m["gfid"]
    return MemoryView(inodes, entries, links)


def _shape(plans):
    out = []
    for p in plans:
        ops = [(o.op, o.gfid, o.entry, o.entry1, o.link, o.mode, o.uid, o.gid,
                None if o.stat is None else (o.stat.uid, o.stat.gid, o.stat.mode))
               for o in p.entry_ops]
        out.append((p.changelog.name, p.changelog.size, ops, p.meta_gfids, p.data_gfids,
                    p.stats))
    return out


def test_plans_over_the_brick_equal_plans_over_the_manifest(demo):
    """The demo brick's raw journals planned against the brick itself and against the
    mount's manifest: the same ops, metadata, data and counters (times aside)."""
    brick, manifest = demo
    cls = list(discover(brick))
    assert len(cls) == 11
    opts = Options(changelog_batch_size=4096)
    on_brick = list(plan_changelogs(cls, view=BrickView(brick), options=opts,
                                    data_stime=None, entry_stime=None))
    on_manifest = list(plan_changelogs(cls, view=_manifest_view(manifest), options=opts,
                                       data_stime=None, entry_stime=None))
    assert _shape(on_brick) == _shape(on_manifest)
    assert sum(len(p.entry_ops) for p in on_brick) > 100
    assert any(o.link for p in on_brick for o in p.entry_ops)
