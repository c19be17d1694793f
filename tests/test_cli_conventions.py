"""The command line follows the conventions a new user expects (issue 10, item 5).

Every check runs the real ``streamsync`` process (``python -m streamsync``) or
``./run.sh`` and reads what a user would see.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import streamsync
from streamsync.cli import COMMANDS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ss(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamsync", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO)


def test_version():
    p = _ss("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"streamsync {streamsync.__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_is_plain_text_with_exit_codes_and_examples(command):
    p = _ss(command, "--help")
    assert p.returncode == 0, p.stderr
    text = p.stdout
    for markup in ("``", ":mod:", ":class:", ":func:", ":meth:"):
        assert markup not in text, (command, markup)
    assert not [line for line in text.splitlines() if line.rstrip().endswith("::")], command
    assert re.search(r"exit (codes?|status)", text, re.I), command
    assert "example" in text.lower(), command
    assert "--debug" in text, command


_LOADED = "print(sorted(m for m in sys.modules if m.startswith('streamsync.cli.')))"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_imports_no_other_command(command):
    """A command line builds only its command's parser: its help is the one the full
    parser gives, and the only command modules imported are its own and what it
    imports itself (start-up time)."""
    from streamsync.cli import build_parser

    def py(code, *args):
        p = subprocess.run([sys.executable, "-c", "import sys\n" + code, *args],
                           capture_output=True, text=True, timeout=60, cwd=REPO)
        assert p.returncode == 0, p.stderr
        return p.stdout
    out = py("from streamsync.cli import main\ntry:\n    main(sys.argv[1:])\n"
             "except SystemExit:\n    pass\n" + _LOADED, "--debug", command, "--help")
    help_text, _, loaded = out.rpartition("\n[")
    alone = py(f"import streamsync.cli.{command}\n" + _LOADED)
    assert "[" + loaded == alone
    assert len(eval(alone)) < len(COMMANDS)
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    assert help_text + "\n" == sub.format_help()


def test_help_before_a_command_still_lists_every_command():
    whole = _ss("--help")
    assert whole.returncode == 0
    assert all(f"    {c}" in whole.stdout for c in COMMANDS)
    for argv in (("-h", "plan"), ("--debug", "--help", "analyze")):
        p = _ss(*argv)
        assert (p.returncode, p.stdout) == (0, whole.stdout), argv


def test_debug_after_the_command_shows_the_traceback():
    before = _ss("--debug", "status", "/nonexistent/state")
    after = _ss("status", "/nonexistent/state", "--debug")
    plain = _ss("status", "/nonexistent/state")
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().endswith("/nonexistent/state: no such state file or directory")
    for p in (before, after):
        assert p.returncode != 0 and "Traceback" in p.stderr and "StateError" in p.stderr


def test_run_sh_without_an_argument_prints_its_usage():
    p = subprocess.run(["bash", os.path.join(REPO, "run.sh")], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2
    assert "./run.sh demo" in p.stdout and "./run.sh test" in p.stdout
    for line in p.stdout.splitlines():  # usage, not a line of the script
        assert not line.startswith(("#", "set ", "cd ")), line


#: every option that takes a time, by command
TIME_OPTIONS = [("decode", "--since"), ("decode", "--until"), ("analyze", "--since"),
                ("analyze", "--until"), ("analyze", "--data-stime"), ("changes", "--since"),
                ("changes", "--until"), ("failures", "--since"), ("plan", "--data-stime"),
                ("plan", "--entry-stime")]


@pytest.mark.parametrize("command,option", TIME_OPTIONS)
def test_every_time_option_has_one_syntax_and_a_plain_error(command, option):
    p = _ss(command, option, "yesterday", "/nonexistent")
    assert p.returncode == 2
    last = p.stderr.strip().splitlines()[-1]
    assert f"{option}: not a" in last and "'yesterday'" in last, last
    assert "epoch seconds or ISO 8601, UTC unless it carries an offset" in last, last
    assert "parse_" not in last and "_arg" not in last, last  # no function name
    assert "ISO 8601" in " ".join(_ss(command, "--help").stdout.split()), command


def test_a_time_means_the_same_instant_in_every_spelling():
    """--since as epoch seconds, ISO 8601 with Z, naive (UTC) and with an offset
    select the same journals; one second later selects fewer."""
    src = os.path.join(REPO, "tests", "data", "gluster-10.3", "raw", "ascii-delpath-on")
    stamps = sorted(int(n.split(".")[1]) for n in os.listdir(src) if n.startswith("CHANGELOG."))
    ts = stamps[len(stamps) // 2]
    import datetime as dt
    utc = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    spellings = [str(ts), utc.strftime("%Y-%m-%dT%H:%M:%SZ"), utc.strftime("%Y-%m-%dT%H:%M:%S"),
                 utc.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))).isoformat()]
    outs = [_ss("decode", "--json", "--since", s, src) for s in spellings]
    assert all(p.returncode == 0 for p in outs), [p.stderr for p in outs]
    assert len({p.stdout for p in outs}) == 1 and outs[0].stdout
    later = _ss("decode", "--json", "--since", str(stamps[len(stamps) // 2 + 1]), src)
    assert later.returncode == 0 and len(later.stdout) < len(outs[0].stdout)


def test_the_demo_brick_readme_lists_only_files_that_are_there():
    readme = os.path.join(REPO, "examples", "demo-brick", "README.md")
    table = open(readme, encoding="utf-8").read().split("| file | what it is |")[1].split("\n\n")[0]
    named = re.findall(r"^\| `([^`]+)`", table, re.M)
    assert len(named) >= 5
    assert [n for n in named if not os.path.exists(os.path.join(REPO, "examples", "demo-brick", n))] == []


def test_the_demo_says_its_directory_is_temporary_and_a_closed_pipe_is_no_traceback():
    demo = os.path.join(REPO, "examples", "demo.py")
    p = subprocess.run(f"{sys.executable} {demo} --keep | head -1", shell=True, cwd=REPO,
                       capture_output=True, text=True, timeout=120,
                       executable="/bin/bash")
    assert "kept after the demo" in p.stdout and "Traceback" not in p.stderr, p.stderr
    work = re.search(r"extracted to (\S+)/brick", p.stdout)[1]
    assert os.path.isdir(work)  # --keep kept it
    import shutil
    shutil.rmtree(work)
    full = subprocess.run([sys.executable, demo], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert full.returncode == 0 and "removed at the end" in full.stdout
    assert "demo: OK" in full.stdout and " batch(es)" not in full.stdout
    gone = re.search(r"extracted to (\S+)/brick", full.stdout)[1]
    assert not os.path.exists(gone)
