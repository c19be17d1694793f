"""A mistyped path is told, not answered with an empty success (issue 9, items 12
and 13): directories without journals, a ``--brick`` that is not one, garbage
state and status files, and the analysis options that used to end in a
traceback. Every case is exit 2 with one line naming what was wrong."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from streamsync.cli import main

from conftest import tmpfs
from test_replicate import brick, demo_master, journals  # noqa: F401  (fixtures)

ANALYSIS = ("decode", "analyze", "changes", "whatif")


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = [x for x in captured.err.splitlines() if x.strip()]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def _not_a_journal_place(tmp_path) -> str:
    d = tmp_path / "etc-like"
    d.mkdir()
    (d / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (d / "conf.d").mkdir()
    return str(d)


def _run(cmd: str, path: str) -> int:
    if cmd == "plan":
        return main(["plan", "--changelogs", path, "--source-state", os.devnull])
    return main([cmd, path])


@pytest.mark.parametrize("cmd", ANALYSIS)
def test_a_directory_without_journals_is_refused(cmd, tmp_path, capsys):
    d = _not_a_journal_place(tmp_path)
    assert _run(cmd, d) == 2
    line = _one_error_line(capsys)
    assert d in line and "no journals" in line


def test_plan_refuses_a_directory_without_journals(brick, tmp_path, capsys):
    d = _not_a_journal_place(tmp_path)
    assert main(["plan", "--changelogs", d, "--brick", brick]) == 2
    line = _one_error_line(capsys)
    assert d in line and "no journals" in line


@pytest.mark.parametrize("cmd", ANALYSIS)
def test_the_parent_of_the_journal_directory_is_refused(cmd, brick, capsys):
    parent = os.path.join(brick, ".glusterfs")
    assert _run(cmd, parent) == 2
    assert parent in _one_error_line(capsys)


@pytest.mark.parametrize("cmd", ("decode", "analyze", "changes"))
def test_a_brick_with_no_journal_yet_is_an_empty_success(cmd, brick, capsys):
    cl_dir = os.path.join(brick, ".glusterfs", "changelogs")
    for j in journals(brick):
        os.unlink(j)
    assert os.path.isdir(os.path.join(cl_dir, "htime"))
    assert _run(cmd, brick) == 0
    assert _run(cmd, cl_dir) == 0
    assert "error" not in capsys.readouterr().err


def test_journal_directories_still_work(brick, capsys):
    js = journals(brick)
    flat = os.path.dirname(js[0])
    assert main(["decode", flat]) == 0
    assert capsys.readouterr().out.count("\n") > 10


@pytest.mark.parametrize("cmd", ("analyze", "changes", "whatif"))
@pytest.mark.parametrize("bad", ("missing", "not-a-brick"))
def test_a_wrong_brick_option_is_refused(cmd, bad, brick, tmp_path, capsys):
    if bad == "missing":
        given = str(tmp_path / "no-such-brick")
    else:
        given = _not_a_journal_place(tmp_path)
    assert main([cmd, "--brick", given, brick]) == 2
    line = _one_error_line(capsys)
    assert given in line and "--brick" in line


# ------------------------------------------------------------------ status files
def test_status_on_a_garbage_sqlite_file_is_exit_2(tmp_path, capsys):
    p = tmp_path / "worker.sqlite"
    p.write_bytes(os.urandom(4096))
    assert main(["status", str(p)]) == 2
    assert str(p) in _one_error_line(capsys)


@pytest.mark.parametrize("content", [b"\x00\xffgarbage", b"[1, 2]", b'{"last_synced": "soon"}',
                                     b'{"entry": -4}', b'{"worker_status": 7}',
                                     b'{"last_synced": 1e400}'])
def test_status_on_a_garbage_status_file_is_exit_2(tmp_path, capsys, content):
    p = tmp_path / "brick_%2Fb.status"
    p.write_bytes(content)
    assert main(["status", str(p)]) == 2
    assert str(p) in _one_error_line(capsys)


def test_status_on_a_gsyncd_status_file_still_reads(tmp_path, capsys):
    p = tmp_path / "brick_%2Fbricks%2Fb1.status"
    p.write_text(orjson.dumps({
        "slave_node": "sec1", "worker_status": "Active", "crawl_status": "Changelog Crawl",
        "last_synced": 1795467032, "last_synced_entry": 1795467032, "entry": 0, "data": 3,
        "meta": 0, "failures": 0, "checkpoint_completed": "No", "checkpoint_time": 0,
        "checkpoint_completion_time": 0}).decode())
    assert main(["status", "--json", str(p)]) == 0
    [row] = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["source"] == "/bricks/b1" and row["data"] == 3 and row["slave_node"] == "sec1"


def test_a_status_time_beyond_any_stime_is_refused(tmp_path, capsys):
    p = tmp_path / "brick_%2Fb.status"
    p.write_text('{"worker_status": "Active", "last_synced": 9007199254740000}')
    assert main(["status", "--utc", str(p)]) == 2
    line = _one_error_line(capsys)
    assert str(p) in line and "last_synced" in line


# ------------------------------------------------------------------ analyze
def test_analyze_save_into_a_missing_directory(brick, tmp_path, capsys):
    target = str(tmp_path / "missing" / "a.json")
    assert main(["analyze", "--save", target, brick]) == 2
    line = _one_error_line(capsys)
    assert target in line


def test_analyze_save_into_a_read_only_directory(brick, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:  # root writes through modes: make the directory immutable
        if subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode:
            pytest.skip("the filesystem under tmp_path has no immutable flag")
    else:
        ro.chmod(0o555)
    try:
        assert main(["analyze", "--save", str(ro / "a.json"), brick]) == 2
        assert str(ro) in _one_error_line(capsys)
    finally:
        subprocess.run(["chattr", "-i", str(ro)], capture_output=True)
        ro.chmod(0o755)


def test_analyze_save_nothing_written_before_the_analysis_fails(brick, tmp_path, capsys):
    target = tmp_path / "a.json"
    assert main(["analyze", "--save", str(target), "--brick", str(tmp_path / "nope"),
                 brick]) == 2
    assert not target.exists()
    _one_error_line(capsys)


@pytest.mark.parametrize("doc", [b'{"hello": "world"}', b"[]", b"not json", b'{"version": 1}'])
def test_analyze_merge_of_something_that_is_not_a_summary(brick, tmp_path, capsys, doc):
    other = tmp_path / "other.json"
    other.write_bytes(doc)
    assert main(["analyze", "--merge", str(other), brick]) == 2
    line = _one_error_line(capsys)
    assert str(other) in line and "summary" in line


def test_analyze_merge_of_a_missing_file(brick, tmp_path, capsys):
    assert main(["analyze", "--merge", str(tmp_path / "gone.json"), brick]) == 2
    assert "gone.json" in _one_error_line(capsys)


def test_analyze_dask_with_an_unknown_scheduler(brick, capsys):
    pytest.importorskip("dask")
    assert main(["analyze", "--dask", "--scheduler", "bogus", brick]) == 2
    line = _one_error_line(capsys)
    assert "bogus" in line and "scheduler" in line


def test_analyze_dask_with_an_unreachable_scheduler(brick, capsys):
    pytest.importorskip("distributed")
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["analyze", "--dask", "--scheduler", f"tcp://127.0.0.1:{port}",
                 "--scheduler-timeout", "2", brick]) == 2
    line = _one_error_line(capsys)
    assert f"127.0.0.1:{port}" in line


def test_analyze_dask_without_dask_installed(brick, capsys, monkeypatch):
    # what a user without streamsync[dask] sees: the import fails
    for name in list(sys.modules):
        if name == "dask" or name.startswith("dask.") or name == "streamsync.analysis.dask":
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dask", None)
    assert main(["analyze", "--dask", brick]) == 2
    line = _one_error_line(capsys)
    assert "streamsync[dask]" in line



# ------------------------------------------------------------------ replica place
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount)")
@pytest.mark.parametrize("existing", [False, True], ids=["new-replica", "existing-replica"])
def test_a_read_only_replica_place_is_one_line_exit_2(brick, tmp_path, capsys, existing):
    place = tmp_path / "ro"
    with tmpfs(place):
        replica = place / "replica"
        if existing:
            replica.mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(place)], check=True)
        assert main(["replicate", "-q", "--state", str(tmp_path / "s.sqlite"), brick,
                     str(replica)]) == 2
        line = _one_error_line(capsys)
        assert str(place) in line and "Read-only file system" in line
        # nothing stays open on it: a plain (not lazy) unmount succeeds
        subprocess.run(["umount", str(place)], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(place)], check=True)
