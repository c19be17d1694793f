"""``streamsync analyze``: JSON contract against independent oracles (the corpus
lines, the demo brick README's record totals), text report, --dask equality."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from streamsync.times import parse_time as parse_ts
from streamsync.cli import main

REPO = Path(__file__).parent.parent
DATA = REPO / "tests" / "data" / "gluster-10.3"
DEMO = REPO / "examples" / "demo-brick"


def _line_oracle(scenario):
    fops = Counter()
    files = sorted((DATA / "processed" / scenario).glob("CHANGELOG.*"))
    for f in files:
        for line in f.read_bytes().splitlines():
            parts = line.split(b" ")
            fops["DATA" if parts[0] == b"D" else parts[2].decode()] += 1
    return files, fops


def _analyze_json(capsys, *args):
    assert main(["analyze", "--json", *map(str, args)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1  # ONE JSON object
    return json.loads(lines[0]), captured.err


@pytest.mark.parametrize("kind", ["raw", "processed"])
def test_json_contract(capsys, kind):
    files, fops = _line_oracle("ascii-delpath-on")
    doc, err = _analyze_json(capsys, DATA / kind / "ascii-delpath-on")
    assert err == ""  # no progress bar when stderr is not a terminal
    assert doc["changelogs"] == len(files)
    assert doc["records"] == sum(fops.values())
    assert doc["first_ts"] == int(files[0].name.split(".")[1])
    assert doc["last_ts"] == int(files[-1].name.split(".")[1])
    assert doc["fops"] == dict(fops)
    assert doc["hot_files"][0]["path"] == "top/slow_growing"


def test_brick_path_matches_readme_totals(capsys, tmp_path):
    brick = tmp_path / "brick"
    brick.mkdir()
    subprocess.run(["tar", "-xzf", str(DEMO / "demo.tar.gz"), "-C", str(brick)], check=True,
                   capture_output=True)
    doc, _ = _analyze_json(capsys, brick, "--bucket", "5", "--top", "3")
    # demo-brick/README.md: "Record totals: D 313; E CREATE 316, MKDIR 37, MKNOD 2, SYMLINK 8,
    # LINK 4, RENAME 10, UNLINK 28, RMDIR 3; M SETATTR 24, SETXATTR 7." and 11 journals
    assert doc["fops"] == {"DATA": 313, "CREATE": 316, "MKDIR": 37, "MKNOD": 2, "SYMLINK": 8,
                           "LINK": 4, "RENAME": 10, "UNLINK": 28, "RMDIR": 3, "SETATTR": 24,
                           "SETXATTR": 7}
    assert doc["changelogs"] == 11
    assert (doc["first_ts"], doc["last_ts"]) == (1795470689, 1795470714)
    assert len(doc["hot_dirs"]) == 3
    assert all(b["start"] % 5 == 0 for b in doc["timeline"])
    assert sum(b["changelogs"] for b in doc["timeline"]) == 11
    # paths come from the brick's handles: no raw gfids among the hot directories
    assert not any(d["path"].startswith(".gfid/") for d in doc["hot_dirs"])
    # bytes to transfer against the FUSE manifest's sizes (an independent listing)
    from streamsync.analysis import summarize_paths
    s = summarize_paths([brick])
    sizes = {}
    with open(DEMO / "demo.manifest.jsonl", encoding="utf-8") as fh:
        for d in map(json.loads, fh):
            sizes[d["gfid"]] = d.get("size", 0)
    written = set(s.data_changelogs)
    assert doc["transfer"]["files"] == len(written & set(sizes))
    assert doc["transfer"]["gone"] == len(written - set(sizes))
    assert doc["transfer"]["bytes"] == sum(sizes[g] for g in written & set(sizes))
    assert doc["transfer"]["bytes_per_changelog"] == sum(
        sizes[g] * s.data_changelogs[g] for g in written & set(sizes))
    assert doc["transfer"]["bytes"] >= 4_195_304  # data/blob.bin


def test_dask_prints_the_same_result(capsys, tmp_path):
    src = DATA / "raw" / "ascii-delpath-off"
    plain, _ = _analyze_json(capsys, src, "--bucket", "15m")
    # the default: one process per core, one shard each
    dasked, _ = _analyze_json(capsys, src, "--bucket", "15m", "--dask")
    assert dasked == plain
    # a distributed cluster started for the run
    local, _ = _analyze_json(capsys, src, "--bucket", "15m", "--dask", "--scheduler", "local")
    assert local == plain
    sync, _ = _analyze_json(capsys, src, "--bucket", "15m", "--dask", "--scheduler", "sync",
                            "--shards", "3")
    assert sync == plain
    # with --save, the whole summary is computed (bag partitions), then reported
    saved = tmp_path / "s.json"
    bag, _ = _analyze_json(capsys, src, "--bucket", "15m", "--dask", "--scheduler", "threads",
                           "--partitions", "4", "--save", saved)
    assert bag == plain and saved.stat().st_size > 0


@pytest.mark.parametrize("args, says", [
    (["--shards", "2"], "--shards: only with --dask"),
    (["--scheduler", "sync", "--partitions", "2"], "--scheduler, --partitions: only with --dask"),
    (["--dask", "--partitions", "2"], "--partitions: only with --save or --merge"),
    (["--dask", "--shards", "2", "--save", "{tmp}/s.json"], "--shards: not with --save"),
    (["--dask", "--shards", "0"], "not a positive whole number: '0'"),
])
def test_dask_options_in_the_wrong_place(capsys, tmp_path, args, says):
    src = DATA / "raw" / "ascii-delpath-off"
    code = None
    try:
        code = main(["analyze", str(src), *[a.format(tmp=tmp_path) for a in args]])
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert says in err.strip().splitlines()[-1]  # the last line says what is wrong


def test_text_report_and_lag(capsys):
    src = DATA / "processed" / "ascii-delpath-on"
    assert main(["analyze", str(src), "--data-stime", "1795467060", "--bucket", "30s"]) == 0
    out = capsys.readouterr().out
    assert "records    4472" in out
    assert "top/slow_growing" in out
    assert "lag behind data stime" in out
    doc, _ = _analyze_json(capsys, src, "--data-stime", "1795467060")
    names = sorted(p.name for p in src.iterdir())
    pending = [n for n in names if int(n.split(".")[1]) >= 1795467060]
    assert doc["lag"]["changelogs"] == len(pending)
    assert doc["lag"]["seconds"] == int(names[-1].split(".")[1]) - 1795467060


def test_bad_input_is_a_one_line_error(capsys, tmp_path):
    bad = tmp_path / "CHANGELOG.1700000000"
    bad.write_bytes(b"E not-a-gfid CREATE\n")
    assert main(["analyze", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and ":1:" in err
    assert main(["analyze", str(tmp_path / "missing")]) == 2


def test_parse_ts():
    assert parse_ts("2026-11-23T21:51:29Z") == 1795470689
    assert parse_ts("2026-11-23T22:51:29+01:00") == 1795470689


def test_save_and_merge_partial_runs(capsys, tmp_path):
    """Two halves analysed separately (e.g. on two machines), merged by the CLI == the whole."""
    src = DATA / "processed" / "ascii-delpath-on"
    files = sorted(src.glob("CHANGELOG.*"))
    half = tmp_path / "part1.json"
    whole, _ = _analyze_json(capsys, src, "--bucket", "10s")
    part, _ = _analyze_json(capsys, *files[:15], "--bucket", "10s", "--save", half)
    assert part["changelogs"] == 15
    merged, _ = _analyze_json(capsys, *files[15:], "--bucket", "10s", "--merge", half)
    assert merged == whole
    only, _ = _analyze_json(capsys, "--merge", half, "--bucket", "10s")
    assert only == part
    # a different bucket width cannot be merged: one-line error, exit 2
    assert main(["analyze", str(files[0]), "--merge", str(half), "--bucket", "1h"]) == 2
    assert "bucket" in capsys.readouterr().err
    assert main(["analyze", "--merge", str(files[0])]) == 2


def test_gsyncd_archive_tar_is_a_source(capsys, tmp_path):
    import tarfile
    src = DATA / "processed" / "ascii-delpath-off"
    archive = tmp_path / "archive_202611.tar"
    with tarfile.open(archive, "w") as tar:
        for f in sorted(src.glob("CHANGELOG.*")):
            tar.add(f, arcname=f.name)
    from_dir, _ = _analyze_json(capsys, src)
    from_tar, _ = _analyze_json(capsys, archive)
    assert from_tar == from_dir


@pytest.mark.parametrize("threads", [1, 2])
def test_dask_process_pool_forked_or_spawned(capsys, monkeypatch, threads):
    """The default pool is forked when the command runs no other thread, else Dask's
    own spawned pool; both print the single-process report."""
    import threading

    import dask
    src = DATA / "raw" / "binary-delpath-on"
    plain, _ = _analyze_json(capsys, src)
    seen = []
    real_set = dask.config.set

    def spy(*a, **kw):
        seen.append(kw.get("pool") or (a[0].get("pool") if a else None))
        return real_set(*a, **kw)
    monkeypatch.setattr(threading, "active_count", lambda: threads)
    monkeypatch.setattr(dask.config, "set", spy)
    dasked, _ = _analyze_json(capsys, src, "--dask")
    assert dasked == plain
    forked = [p for p in seen if p is not None]
    assert (len(forked) == 1) == (threads == 1)
    if forked:
        assert forked[0]._mp_context.get_start_method() == "fork"
