"""Repair drift on the secondary (issue 12, item 5): ``streamsync verify --repair``
puts back what was deleted or changed behind replication's back, with the
primary's gfids, without touching the stimes; ``--dry-run`` changes nothing;
what it cannot put right without deleting is reported and left."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid

import pytest

from streamsync.cli import main
from streamsync.replicate import replicate
from streamsync.state import SqliteState
from streamsync.verify import scan_tree, verify

from test_worker_brick import Brick

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="trusted.gfid xattrs need root")


@pytest.fixture()
def drifted(tmp_path):
    """A replicated brick, then the replica changed behind replication's back."""
    T = int(time.time()) - 1000
    b = Brick(tmp_path / "brick")
    b.mkdir("d")
    b.mkdir("d/sub")
    for i in range(6):
        b.create(f"d/f{i}", b"content %d\n" % i)
    b.create("d/sub/deep", b"deep\n")
    b.link("d/f0", "d/f0-link")
    b.symlink("f1", "d/sl")
    b.create("keep", b"same\n")
    b.rollover(T)
    rep, state = str(tmp_path / "replica"), str(tmp_path / "state.sqlite")
    assert replicate(b.root, rep, state_path=state).open_failures == 0
    r = lambda *p: os.path.join(rep, *p)  # noqa: E731
    os.unlink(r("d", "f1"))                          # deleted
    with open(r("d", "f2"), "r+b") as fh:            # edited, same size
        fh.write(b"CONTENT")
    os.chmod(r("d", "f3"), 0o600)                    # mode changed
    os.unlink(r("d", "f0-link"))                     # one hard link gone
    shutil.rmtree(r("d", "sub"))                     # a whole subtree gone
    os.unlink(r("d", "sl"))                          # a symlink gone
    open(r("d", "extra"), "w").write("only here\n")  # something only on the secondary
    os.unlink(r("d", "f4"))                          # a name now holding a directory
    os.mkdir(r("d", "f4"))
    return b, rep, state


def _gfid(path: str) -> str:
    return str(uuid.UUID(bytes=os.getxattr(path, "trusted.gfid", follow_symlinks=False)))


def test_dry_run_lists_and_changes_nothing(drifted, capsys):
    b, rep, state = drifted
    before = scan_tree(rep)
    assert main(["verify", "--repair", "--dry-run", "--json", b.root, rep]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    acts = {(r["kind"], r["path"]) for r in rows[:-1]}
    assert {("create", "d/f1"), ("data", "d/f1"), ("data", "d/f2"), ("meta", "d/f3"),
            ("link", "d/f0-link"), ("create", "d/sub"), ("create", "d/sub/deep"),
            ("create", "d/sl"), ("extra", "d/extra"), ("conflict", "d/f4")} <= acts
    assert not any(r["done"] for r in rows[:-1]) and rows[-1]["dry_run"] is True
    assert scan_tree(rep) == before


def test_repair_puts_it_back_with_the_primarys_gfids_and_leaves_the_stimes(drifted, capsys):
    b, rep, state = drifted
    stimes = (SqliteState(state).data_stime(), SqliteState(state).entry_stime())
    assert main(["verify", "--repair", b.root, rep]) == 1  # the conflict is left
    out = capsys.readouterr().out
    assert "d/f4" in out and "conflict" in out and "1 difference left" in out
    diffs = [str(d) for d in verify(b.root, rep, gfids=True)]
    assert diffs == ["d/extra: only in replica", "d/f4: type differs: source='f' replica='d'"]
    for rel in ("d/f1", "d/sub", "d/sub/deep", "d/sl", "d/f0-link"):
        assert _gfid(os.path.join(rep, rel)) == b.gfid_of(rel), rel
    assert os.stat(os.path.join(rep, "d/f0-link")).st_ino == os.stat(os.path.join(rep, "d/f0")).st_ino
    assert (SqliteState(state).data_stime(), SqliteState(state).entry_stime()) == stimes
    # what was left is the user's call: remove the directory, and the next repair is whole
    os.rmdir(os.path.join(rep, "d/f4"))
    assert main(["verify", "--repair", b.root, rep]) == 0
    assert "equal after the repair" in capsys.readouterr().out
    assert [str(d) for d in verify(b.root, rep, gfids=True)] == ["d/extra: only in replica"]


def test_path_limits_the_repair_to_a_subtree(drifted, capsys):
    b, rep, state = drifted
    assert main(["verify", "--repair", "--path", "d/sub", b.root, rep]) == 0
    assert os.path.exists(os.path.join(rep, "d/sub/deep"))
    assert not os.path.exists(os.path.join(rep, "d/f1"))  # outside: untouched
    capsys.readouterr()
    assert main(["verify", "--repair", "--path", "../etc", b.root, rep]) == 2
    assert "relative path" in capsys.readouterr().err
    assert main(["verify", "--dry-run", b.root, rep]) == 2  # goes with --repair


def test_repair_needs_the_primarys_brick(drifted, capsys, tmp_path):
    b, rep, state = drifted
    plain = tmp_path / "plain"
    plain.mkdir()
    assert main(["verify", "--repair", str(plain), rep]) == 2
    assert "brick" in capsys.readouterr().err
