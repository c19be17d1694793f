"""A safety limit on deletes (issue 12, item 6): ``-o max-deletes=N`` or ``P%``
refuses a batch that would delete more on the secondary, before anything of it
is applied, names the batch, and ``--allow-deletes`` lets exactly that batch
through on the next run; later batches are checked again."""

from __future__ import annotations

import os
import time

import pytest

from streamsync.cli import main
from streamsync.errors import ConfigError, DeleteLimitExceeded
from streamsync.options import Options
from streamsync.replicate import replicate
from streamsync.state import SqliteState
from streamsync.verify import verify

from test_worker_brick import Brick

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="trusted.gfid xattrs need root")


@pytest.fixture()
def synced(tmp_path):
    """A brick of 20 files in d/, replicated; the next journal deletes 8 of them."""
    T = int(time.time()) - 1000
    b = Brick(tmp_path / "brick")
    b.mkdir("d")
    for i in range(20):
        b.create(f"d/f{i}", b"x")
    b.rollover(T)
    rep, state = str(tmp_path / "replica"), str(tmp_path / "state.sqlite")
    assert replicate(b.root, rep, state_path=state).open_failures == 0
    for i in range(8):
        b.unlink(f"d/f{i}")
    b.rollover(T + 15)
    return b, rep, state, T


def _names(rep: str) -> list[str]:
    return sorted(os.listdir(os.path.join(rep, "d")))


def test_a_batch_over_the_limit_is_refused_whole_and_named(synced, capsys):
    b, rep, state, T = synced
    before = SqliteState(state).data_stime()
    rc = main(["replicate", "-q", "--state", state, "-o", "max-deletes=5", b.root, rep])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert (f"batch CHANGELOG.{T + 15} would delete 8 entries, more than max-deletes=5 "
            f"allows on the secondary: nothing of it was applied") in err[0]
    assert "--allow-deletes" in err[0]
    assert len(_names(rep)) == 20  # nothing of the batch was applied
    assert SqliteState(state).data_stime() == before
    # the worker says why it stopped, and where
    assert main(["status", "--json", state]) == 1  # a Faulty worker
    row = capsys.readouterr().out
    assert "DeleteLimitExceeded" in row and f"CHANGELOG.{T + 15}" in row
    # asked again without --allow-deletes: refused again
    assert main(["replicate", "-q", "--state", state, "-o", "max-deletes=5", b.root, rep]) == 2
    assert len(_names(rep)) == 20


def test_allow_deletes_lets_that_batch_through_and_checks_the_next(synced, capsys):
    b, rep, state, T = synced
    opt = ["-o", "max-deletes=5"]
    assert main(["replicate", "-q", "--state", state, *opt, b.root, rep]) == 2
    assert main(["replicate", "-q", "--state", state, *opt, "--allow-deletes", b.root, rep]) == 0
    assert _names(rep) == sorted(f"f{i}" for i in range(8, 20)) and verify(b.root, rep) == []
    for i in range(8, 16):  # another 8: a new batch, checked again
        b.unlink(f"d/f{i}")
    b.rollover(T + 30)
    capsys.readouterr()
    assert main(["replicate", "-q", "--state", state, *opt, "--allow-deletes", b.root, rep]) == 2
    assert f"CHANGELOG.{T + 30}" in capsys.readouterr().err
    assert len(_names(rep)) == 12


def test_a_percentage_of_the_source_and_a_batch_under_the_limit(synced):
    b, rep, state, T = synced
    # 8 deletes of 22 objects before them (root, d, 20 files) = 36%
    with pytest.raises(DeleteLimitExceeded, match=r"8 entries \(36\.4% of the source's 22 objects\)"):
        replicate(b.root, rep, state_path=state, options=Options.from_pairs(["max-deletes=30%"]))
    s = replicate(b.root, rep, state_path=state, options=Options.from_pairs(["max-deletes=40%"]))
    assert s.open_failures == 0 and len(_names(rep)) == 12


def test_the_limit_is_off_by_default_and_its_syntax_is_checked(synced):
    b, rep, state, T = synced
    assert replicate(b.root, rep, state_path=state).open_failures == 0
    assert len(_names(rep)) == 12
    for bad in ("many", "5.5", "-3", "120%"):
        with pytest.raises(ConfigError, match="max-deletes"):
            replicate(b.root, rep, state_path=state,
                      options=Options.from_pairs([f"max-deletes={bad}"]))
