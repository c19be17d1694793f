"""MountView against a real GlusterFS aux-gfid mount, with the brick as oracle.

A one-brick volume with changelogs on is mounted twice: normally (the workload
runs there) and with ``-o aux-gfid-mount`` (what :class:`MountView` reads).
Every gfid of the brick (found by walking it and reading ``trusted.gfid``, an
oracle independent of both views) must get the same answers from
``MountView(aux)`` as from ``BrickView(brick)``; gfids and names gone from the
volume must answer ``None``; and ``streamsync plan`` over the brick's own
journals must print the same plan through ``--mount`` as through ``--brick``
(meta-op times aside: the mount reports GlusterFS's mdata times).

``dir_entry``: the mount alone answers it from the virtual xattr
``glusterfs.ancestry.path`` (before that, ``MountView`` answered ``None`` for
every directory unless given ``brick_dir``); with ``brick_dir`` it reads the
brick's handles. Both must match the brick.

Marker ``gluster``; skipped only when GlusterFS cannot run (see
``gluster_lab.py``). Run alone with::

    .venv/bin/python -m pytest -m gluster tests/test_mountview_gluster.py
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid

import pytest

from gluster_lab import glusterd_running, run, start_volume, unmount, wait_journaled
from streamsync.records import ROOT_GFID
from streamsync.views import BrickView, MountView

pytestmark = pytest.mark.gluster

UTF8 = "caf\u00e9 \u65e5\u672c"
LATIN1 = os.fsdecode(b"latin1-\xe9\xff")  # not UTF-8: survives as surrogate escapes


@pytest.fixture(scope="module")
def glusterd(tmp_path_factory):
    yield from glusterd_running(tmp_path_factory)


#: the last entry of the workload: once a published journal holds it, every
# change before it has been journaled too
END_MARK = "zz end of workload"


def _workload(mnt: str, brick: str) -> list[str]:
    """Run on the normal mount; returns the gfids it deleted (read before deleting)."""
    j = lambda *p: os.path.join(mnt, *p)  # noqa: E731
    gone = []

    def gfid_of(path: str) -> str:
        raw = os.getxattr(path, "glusterfs.gfid.string", follow_symlinks=False)
        return raw.rstrip(b"\0").decode()

    os.makedirs(j("d1", "sub", "deep"))
    os.mkdir(j("with space"))
    os.mkdir(j(UTF8))
    os.mkdir(j("with space", "dir\nnl " + LATIN1))
    for i in range(8):
        with open(j("d1", f"f{i}"), "wb") as fh:
            fh.write(os.urandom(100 * i + 7))
    with open(j("with space", "new\nline %20.txt"), "w") as fh:
        fh.write("odd name\n")
    with open(j(UTF8, UTF8 + ".txt"), "w") as fh:
        fh.write("utf-8\n")
    with open(j(LATIN1), "wb") as fh:
        fh.write(b"latin-1 name\n")
    os.link(j("d1", "f1"), j("with space", "hard link"))
    os.link(j("d1", "f2"), j(UTF8, "hl"))
    os.symlink("../d1/f3", j(UTF8, "rel link"))
    os.symlink("/nonexistent/dangling", j("dangling"))
    os.symlink("d1", j("dirlink"))
    os.chmod(j("d1", "f4"), 0o4750)
    os.chown(j("d1", "f5"), 1000, 1001)
    os.chmod(j("d1", "sub"), 0o2775)
    os.chown(j("d1", "sub", "deep"), 1234, 5678)
    os.mkfifo(j("d1", "fifo"))
    wait_journaled(brick, "MKNOD", "fifo")  # a rollover between creations and renames/unlinks
    os.rename(j("d1", "f6"), j("with space", "f6 moved"))
    os.rename(j("d1", "sub", "deep"), j(UTF8, "deep moved"))
    gone.append(gfid_of(j("d1", "f0")))
    os.unlink(j("d1", "f0"))
    gone.append(gfid_of(j("d1", "f7")))
    os.rename(j("d1", "f1"), j("d1", "f7"))  # onto an existing file: f7's inode goes
    os.mkdir(j("gone dir"))
    open(j("gone dir", "x"), "w").close()
    gone += [gfid_of(j("gone dir")), gfid_of(j("gone dir", "x"))]
    os.unlink(j("gone dir", "x"))
    os.rmdir(j("gone dir"))
    os.symlink("t", j("gone link"))
    gone.append(gfid_of(j("gone link")))
    os.unlink(j("gone link"))
    with open(j("d1", "f3"), "ab") as fh:
        fh.write(b"appended\n")
    os.truncate(j("d1", "f2"), 3)
    open(j(END_MARK), "w").close()
    return gone


@pytest.fixture(scope="module")
def lab(glusterd, tmp_path_factory):
    host = glusterd
    base = tmp_path_factory.mktemp("mountview")
    vol = f"ssmv{os.getpid()}"
    brick, mnt, aux = base / "brick", base / "mnt", base / "aux"
    mnt.mkdir()
    aux.mkdir()
    mounted = []
    created = False
    try:
        run("gluster", "--mode=script", "volume", "create", vol, f"{host}:{brick}", "force")
        created = True
        for k, v in (("changelog.changelog", "on"), ("changelog.rollover-time", "1")):
            run("gluster", "volume", "set", vol, k, v)
        start_volume(vol)
        run("mount", "-t", "glusterfs", f"{host}:/{vol}", str(mnt))
        mounted.append(mnt)
        run("mount", "-t", "glusterfs", "-o", "aux-gfid-mount", f"{host}:/{vol}", str(aux))
        mounted.append(aux)
        gone = _workload(str(mnt), str(brick))
        wait_journaled(str(brick), "CREATE", END_MARK)  # the last journal rolled over
        yield str(brick), str(aux), gone
    finally:
        for m in reversed(mounted):
            unmount(m)
        if created:
            run("gluster", "--mode=script", "volume", "stop", vol, "force", check=False)
            run("gluster", "--mode=script", "volume", "delete", vol, check=False)


def _brick_namespace(brick: str):
    """Oracle from ``trusted.gfid``: {gfid: path} and [(pgfid, name, gfid)] for every name."""
    gfids = {ROOT_GFID: ""}
    names = []

    def gfid_of(path: str) -> str:
        return str(uuid.UUID(bytes=os.getxattr(path, "trusted.gfid", follow_symlinks=False)))

    assert gfid_of(brick) == ROOT_GFID
    for dirpath, dirnames, filenames in os.walk(brick):
        if dirpath == brick:
            dirnames.remove(".glusterfs")
        pgfid = gfid_of(dirpath)
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            g = gfid_of(path)
            gfids.setdefault(g, os.path.relpath(path, brick))
            names.append((pgfid, name, g))
    return gfids, names


def _stat_key(st):
    return None if st is None else (stat.S_IFMT(st.mode), st.mode, st.uid, st.gid)


def test_every_brick_gfid_answers_the_same_through_the_aux_mount(lab):
    brick, aux, _ = lab
    gfids, names = _brick_namespace(brick)
    bv, mv = BrickView(brick), MountView(aux)
    mvb = MountView(aux, brick_dir=brick)
    kinds = {stat.S_IFMT(os.lstat(os.path.join(brick, p)).st_mode) for p in gfids.values()}
    assert {stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK, stat.S_IFIFO} <= kinds
    assert len(gfids) == 21  # 7 directories, 6 files + the end mark, 3 odd names, 3 symlinks, a fifo
    for g, rel in gfids.items():
        where = f"{g} ({rel!r})"
        b_st, m_st = bv.lstat(g), mv.lstat(g)
        assert b_st is not None, where
        assert _stat_key(m_st) == _stat_key(b_st), where
        assert mv.readlink(g) == bv.readlink(g), where
        if stat.S_ISLNK(b_st.mode):
            assert mv.readlink(g) == os.readlink(os.path.join(brick, rel)), where
        assert mv.dir_entry(g) == bv.dir_entry(g), where
        if stat.S_ISDIR(b_st.mode) and g != ROOT_GFID:
            assert (mv.dir_entry(g)[0], mv.dir_entry(g)[1], g) in names, where
        assert mvb.dir_entry(g) == bv.dir_entry(g), where
        b_dp, m_dp = bv.data_path(g), mv.data_path(g)
        if stat.S_ISREG(b_st.mode):
            assert m_dp == os.path.join(aux, ".gfid", g), where
            with open(b_dp, "rb") as fb, open(m_dp, "rb") as fm:
                assert fm.read() == fb.read(), where
    for pgfid, name, g in names:
        assert mv.entry_gfid(pgfid, name) == g, (pgfid, name)
        assert bv.entry_gfid(pgfid, name) == g, (pgfid, name)
    # the concurrent snapshot answers as the direct calls do
    snap = mv.prefetch(list(gfids), [(p, n) for p, n, _ in names])
    for g in gfids:
        assert _stat_key(snap.lstat(g)) == _stat_key(mv.lstat(g)), g
        assert snap.readlink(g) == mv.readlink(g), g
    for pgfid, name, g in names:
        assert snap.entry_gfid(pgfid, name) == g, (pgfid, name)


def test_gone_gfids_and_names_answer_none(lab):
    brick, aux, gone = lab
    gfids, names = _brick_namespace(brick)
    assert len(gone) == 5 and not set(gone) & set(gfids)
    mv, mvb = MountView(aux), MountView(aux, brick_dir=brick)
    for g in gone + [str(uuid.uuid4()), "not-a-gfid", "../../etc"]:
        assert mv.lstat(g) is None, g
        assert mv.readlink(g) is None, g
        assert mv.data_path(g) is None, g
        assert mv.dir_entry(g) is None and mvb.dir_entry(g) is None, g
        assert mv.entry_gfid(ROOT_GFID, g) is None, g
    by_path = {p: g for g, p in gfids.items()}
    d1 = by_path["d1"]
    for pgfid, name in [(d1, "f0"), (d1, "f1"), (d1, "f6"), (ROOT_GFID, "gone dir"),
                        (ROOT_GFID, "gone link"), (d1, "."), (d1, ".."), (d1, "a/b"),
                        (ROOT_GFID, ""), (gone[2], "x"), (str(uuid.uuid4()), "f2")]:
        assert mv.entry_gfid(pgfid, name) is None, (pgfid, name)
    # not a directory: a name under a regular file
    assert mv.entry_gfid(by_path[os.path.join("d1", "f2")], "x") is None
    # a symlink is answered as itself, not followed
    assert mv.readlink(by_path["dirlink"]) == "d1"
    assert stat.S_ISLNK(mv.lstat(by_path["dirlink"]).mode)


def _plan(*args: str) -> list[dict]:
    p = subprocess.run([sys.executable, "-m", "streamsync", "plan", *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    for row in rows:  # the source's times: GlusterFS mdata on the mount, the brick's own
        for op in row["meta_ops"] + row["entry_ops"]:
            if "stat" in op:
                del op["stat"]["atime"], op["stat"]["mtime"]
    return rows


def test_plan_through_the_mount_equals_plan_through_the_brick(lab):
    brick, aux, _ = lab
    journals = os.path.join(brick, ".glusterfs", "changelogs")
    via_mount = _plan("--mount", aux, "--changelogs", journals)
    via_brick = _plan("--brick", brick, "--changelogs", journals)
    assert len(via_mount) == len(via_brick)
    for m_row, b_row in zip(via_mount, via_brick):
        diff = {k: (m_row[k], b_row[k]) for k in b_row if m_row.get(k) != b_row[k]}
        if "entry_ops" in diff:
            diff["entry_ops"] = [(m, b) for m, b in zip(*diff["entry_ops"]) if m != b]
        assert not diff, (b_row["changelog"], diff)
    # the plan really exercised the views: symlink targets, metadata, data
    ops = [op for row in via_brick for op in row["entry_ops"]]
    seen = {(str(row["changelog"]), op["op"], str(op.get("entry"))) for row in via_brick
            for op in row["entry_ops"]}
    assert {"MKDIR", "CREATE", "SYMLINK", "LINK", "RENAME", "UNLINK", "RMDIR", "MKNOD"} <= \
        {op["op"] for op in ops}, (sorted(os.listdir(journals)), sorted(seen))
    assert {op.get("link") for op in ops if op["op"] == "SYMLINK"} >= \
        {"../d1/f3", "/nonexistent/dangling", "d1"}
    assert sum(len(row["meta_ops"]) for row in via_brick) >= 3
    assert sum(len(row["data"]) for row in via_brick) >= 5
