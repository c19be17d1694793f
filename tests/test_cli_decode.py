"""``streamsync decode`` end to end (as a subprocess, as a user runs it)."""

from __future__ import annotations

import subprocess
import sys

import orjson

from conftest import CORPUS, processed_journals, raw_journals


def run(*args):
    return subprocess.run([sys.executable, "-m", "streamsync", *args], capture_output=True)


def test_decode_directory_reproduces_libgfchangelog_byte_for_byte():
    res = run("decode", str(CORPUS / "raw" / "ascii-delpath-off"))
    assert res.returncode == 0, res.stderr
    expected = b"".join(p.read_bytes() for p in processed_journals("ascii-delpath-off"))
    assert res.stdout == expected


def test_decode_json_one_object_per_record():
    f = raw_journals("binary-delpath-on")[3]
    res = run("decode", "--json", str(f))
    assert res.returncode == 0
    rows = [orjson.loads(l) for l in res.stdout.splitlines()]
    assert rows and all(r["changelog"] == f.name and r["ts"] == int(f.name[10:]) for r in rows)
    assert {r["type"] for r in rows} <= {"E", "D", "M"}


def test_bad_journal_one_line_error_exit_2(tmp_path):
    good = raw_journals("ascii-delpath-on")[4]
    bad = tmp_path / good.name
    bad.write_bytes(good.read_bytes()[:-7])
    res = run("decode", str(bad))
    assert res.returncode == 2
    err = res.stderr.decode().strip()
    assert len(err.splitlines()) == 1
    assert str(bad) in err and "byte" in err and "Traceback" not in err
    res = run("--debug", "decode", str(bad))
    assert b"Traceback" in res.stderr


def test_keep_going_skips_and_reports(tmp_path):
    raws = raw_journals("ascii-delpath-on")[:3]
    for r in raws:
        (tmp_path / r.name).write_bytes(r.read_bytes())
    (tmp_path / raws[1].name).write_bytes(b"garbage")
    res = run("decode", "--keep-going", str(tmp_path))
    assert res.returncode == 2
    assert b"skipped" in res.stderr and raws[1].name.encode() in res.stderr
    procs = processed_journals("ascii-delpath-on")
    assert res.stdout == procs[0].read_bytes() + procs[2].read_bytes()


def test_help_explains_itself():
    top = run("--help")
    assert top.returncode == 0 and b"decode" in top.stdout
    sub = run("decode", "--help")
    assert sub.returncode == 0
    for word in (b"--json", b"libgfchangelog", b"byte offset", b"PATH"):
        assert word in sub.stdout
