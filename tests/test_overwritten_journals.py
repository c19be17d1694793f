"""A journal the brick wrote twice (HTIME lists ``CHANGELOG.<ts>`` twice).

Seen on GlusterFS 10.3 at ``changelog.rollover-time 1``: two rollovers within
one second with changes get the same name and the later file replaces the
earlier, so those changes are in no journal. A replay cannot bring them over:
the default mode must not call the journals exact, and a worker already past
its first run must say so, naming the journal and the remedy."""

from __future__ import annotations

import logging

from streamsync.cli import main
from streamsync.crawl.coverage import journal_coverage
from streamsync.discover import HtimeWatch, overwritten_journals

from test_worker_brick import Brick

T = 1795000000


def _brick_with_a_lost_journal(tmp_path):
    b = Brick(tmp_path / "brick")
    b.create("kept", b"journaled")
    b.rollover(T + 15)
    b.create("lost", b"its CREATE is overwritten")
    b.rollover(T + 30)
    b.create("other", b"written in the same second")
    b.rollover(T + 30)  # same name: replaces the journal holding 'lost'
    return b


def test_the_overwritten_journal_is_found_incrementally(tmp_path):
    b = _brick_with_a_lost_journal(tmp_path)
    assert overwritten_journals(b.root) == [T + 30]
    assert overwritten_journals(b.root, since=T + 30) == []
    watch = HtimeWatch(b.root)
    assert watch.overwritten() == [T + 30]
    b.create("later", b"x")
    b.rollover(T + 45)
    b.create("later2", b"y")
    b.rollover(T + 45)
    assert watch.overwritten() == [T + 30, T + 45]
    assert watch.overwritten(since=T + 30) == [T + 45]


def test_a_hole_of_data_only_is_not_called_exact_either(tmp_path):
    b = Brick(tmp_path / "brick")
    b.create("f", b"v1")
    b.rollover(T + 15)
    b.write("f", b"v2: in the journal that is replaced")
    b.rollover(T + 30)
    b.create("g", b"same second")
    b.rollover(T + 30)
    cov = journal_coverage(b.root)  # every gfid is created by a journal still there
    assert not cov.covered and f"CHANGELOG.{T + 30}" in cov.reason
    assert "written twice" in cov.reason


def test_journals_with_a_hole_are_not_called_exact(tmp_path, capsys):
    b = _brick_with_a_lost_journal(tmp_path)
    cov = journal_coverage(b.root)
    assert not cov.covered
    # ('lost' is created by no journal left, so the gfid count says it first)
    assert "created by none" in cov.reason or "written twice" in cov.reason
    rc = main(["replicate", b.root, str(tmp_path / "replica")])
    err = capsys.readouterr().err
    assert rc == 0 and "mode xsync" in err
    assert (tmp_path / "replica" / "lost").read_bytes() == b"its CREATE is overwritten"


def test_a_worker_past_its_first_run_warns_naming_the_journal(tmp_path, capsys, caplog):
    b = Brick(tmp_path / "brick")
    b.create("a", b"1")
    b.rollover(T + 15)
    replica = str(tmp_path / "replica")
    assert main(["replicate", "-q", b.root, replica]) == 0
    b.unlink("a")  # the first journal of the second: overwritten below
    b.rollover(T + 30)
    b.create("c", b"3")
    b.rollover(T + 30)
    caplog.set_level(logging.WARNING, logger="streamsync")
    assert main(["replicate", b.root, replica]) == 0
    [msg] = [r.getMessage() for r in caplog.records if "written twice" in r.getMessage()]
    assert f"CHANGELOG.{T + 30}" in msg and "--mode xsync" in msg
