"""What-if replay: counts against the plans and an independent batching oracle,
the time model's arithmetic, real sizes from the demo brick, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from streamsync.analysis._input import iter_journals
from streamsync.analysis.whatif import CostModel, JournalView, compare, replay
from streamsync.cli import main
from streamsync.options import Options
from streamsync.pipeline import plan_changelogs
from streamsync.views import BrickView

REPO = Path(__file__).parent.parent
DATA = REPO / "tests" / "data" / "gluster-10.3"
DEMO = REPO / "examples" / "demo-brick"
SRC = DATA / "processed" / "ascii-delpath-on"
ZERO = CostModel(**{f: 0 for f in CostModel._fields if f not in ("lookup_concurrency",
                                                                  "default_file_size")})


def _greedy_batches(sizes: list[int], limit: int) -> int:
    """gsyncd's batching (spec 3.2), written out: a file that would overflow starts a batch."""
    batches, cur = 0, None
    for s in sizes:
        if cur is None or cur + s > limit:
            batches += 1
            cur = s
        else:
            cur += s
    return batches


@pytest.fixture(scope="module")
def journals():
    return list(iter_journals([SRC]))


@pytest.fixture(scope="module")
def demo_brick(tmp_path_factory):
    brick = tmp_path_factory.mktemp("whatif") / "brick"
    brick.mkdir()
    subprocess.run(["tar", "-xzf", str(DEMO / "demo.tar.gz"), "-C", str(brick)], check=True,
                   capture_output=True)
    return brick


@pytest.mark.parametrize("limit", [1, 4096, 65536, 727040])
def test_batches_follow_changelog_batch_size(journals, limit):
    sizes = [os.path.getsize(c.path) for c in journals]
    r = replay(journals, view=None, options=Options(changelog_batch_size=limit))
    assert r.batches == _greedy_batches(sizes, limit)
    assert r.changelogs == len(journals)


def test_counts_equal_the_plans(journals):
    view = JournalView(journals)
    opts = Options()
    plans = list(plan_changelogs(journals, view=view, options=opts, data_stime=None,
                                 entry_stime=None))
    r = replay(journals, view=view, options=opts)
    assert r.entry_ops == sum(len(p.entry_ops) for p in plans)
    assert r.entry_calls == sum(1 for p in plans if p.entry_ops)
    # one batch: every data gfid is sent exactly once
    assert r.batches == 1
    assert r.files_sent == len(set().union(*(p.data_gfids for p in plans)))
    # meta ops only for gfids still on the source
    assert r.meta_ops == sum(1 for p in plans for g in p.meta_gfids if view.lstat(g) is not None)
    assert r.bytes_sent == r.files_sent * CostModel().default_file_size


def test_time_model_arithmetic(journals):
    opts = Options(sync_jobs=1)
    only_bytes = replay(journals, view=None, options=opts, model=ZERO._replace(rsync_per_byte=1.0))
    assert only_bytes.seconds == pytest.approx(only_bytes.bytes_sent)
    only_rpc = replay(journals, view=None, options=opts, model=ZERO._replace(rpc_latency=1.0))
    assert only_rpc.seconds == pytest.approx(only_rpc.entry_calls + only_rpc.meta_calls)
    per_transfer = replay(journals, view=None, options=opts,
                          model=ZERO._replace(rsync_startup=1.0))
    assert per_transfer.seconds == pytest.approx(per_transfer.transfers)
    # three workers can only shorten the data phase, never change what is sent
    many = replay(journals, view=None, options=opts.replace(sync_jobs=3),
                  model=ZERO._replace(rsync_startup=1.0))
    assert many.transfers == per_transfer.transfers
    assert many.seconds <= per_transfer.seconds


def test_compare_grid_and_tar(journals):
    rs = compare(journals, view=None, grid={"sync-jobs": [1, 3], "sync-method": ["rsync", "tarssh"]})
    assert [tuple(r.settings.values()) for r in rs] == [(1, "rsync"), (1, "tarssh"),
                                                       (3, "rsync"), (3, "tarssh")]
    by = {tuple(r.settings.values()): r for r in rs}
    # SETXATTR records are data only for rsync (with xattr sync): tar sends fewer files
    assert by[(1, "tarssh")].files_sent < by[(1, "rsync")].files_sent
    assert by[(3, "rsync")].seconds < by[(1, "rsync")].seconds


def test_real_sizes_from_the_demo_brick(demo_brick):
    view = BrickView(demo_brick)
    r = replay([demo_brick], view=view, options=Options())
    # data/blob.bin ends at 4,195,304 bytes (demo README); every transfer is priced
    # with the handle's size on the brick
    assert r.bytes_sent >= 4_195_304
    plans = list(plan_changelogs(list(iter_journals([demo_brick])), view=view, options=Options(),
                                 data_stime=None, entry_stime=None))
    sent = set().union(*(p.data_gfids for p in plans))
    expected = 0
    for g in sent:
        path = view.data_path(g)
        expected += os.stat(path).st_size if path else CostModel().default_file_size
    assert r.bytes_sent == expected


def test_cli_table_and_json(capsys, demo_brick):
    assert main(["whatif", str(demo_brick), "--sync-jobs", "1,4", "--sync-method", "rsync,tarssh"]) == 0
    out = capsys.readouterr().out
    assert "fastest:" in out and out.count("rsync") >= 2
    assert main(["whatif", "--json", str(SRC), "--batch-size", "4096,727040",
                 "--cost", "rpc_latency=0.01"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["settings"]["changelog-batch-size"] for d in docs] == [4096, 727040]
    assert docs[0]["batches"] > docs[1]["batches"] == 1
    assert main(["whatif", str(SRC), "--cost", "warp_speed=9"]) == 2
    assert "warp_speed" in capsys.readouterr().err
