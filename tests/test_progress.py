"""Progress that tells how long (issue 10, item 4): on a terminal, replicate (replay
and the worker's xsync crawl), verify and analyze draw journals or names, files and
bytes done of total with rate and ETA (tqdm), updated during a batch; on a pipe or
with -q nothing is drawn.

The terminal is a real pseudo-terminal (120 columns) the command runs on.
"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from streamsync.progress import Progress, progress_for
from streamsync.replicate import replicate
from streamsync.snapshot import extract_brick_snapshot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(REPO, "examples", "demo-brick", "demo.tar.gz")
CORPUS = os.path.join(REPO, "tests", "data", "gluster-10.3", "raw", "ascii-delpath-on")


def _on_a_terminal(*args: str) -> tuple[int, str]:
    """Run ``streamsync ARGS`` with stdin/stdout/stderr on a fresh 120x40 pty."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once
        os.chdir(REPO)
        os.execv(sys.executable, [sys.executable, "-m", "streamsync", *args])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def _on_a_pipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamsync", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


BAR = re.compile(r"(\d+)/(\d+) \[[0-9:]+<[0-9:]+, +[0-9.?]+ ?\w*/s")  # done/total [elapsed<ETA, rate]


def _final(text: str, desc: str) -> str:
    """The last drawing of the bar whose description is ``desc``."""
    lines = [seg for seg in re.split(r"[\r\n]", text) if seg.startswith(desc)]
    assert lines, f"no {desc!r} bar in {text[-800:]!r}"
    return lines[-1]


@pytest.fixture()
def brick(tmp_path):
    return extract_brick_snapshot(DEMO, str(tmp_path / "brick"))


def test_replicate_draws_journals_and_data_bars_done_of_total(brick, tmp_path):
    rc, text = _on_a_terminal("replicate", brick, str(tmp_path / "replica"))
    assert rc == 0, text
    journals = _final(text, "replicate journals")
    m = BAR.search(journals)
    assert m and m[1] == m[2] == "11", journals  # 11 of 11 journals, an ETA and a rate
    data = _final(text, "data")
    files = re.search(r"(\d+)/(\d+) files", data)
    assert "100%" in data and files and files[1] == files[2] and int(files[1]) > 200, data
    assert re.search(r"\d(\.\d+)?M/\d(\.\d+)?M", data), data  # bytes, scaled
    assert "replicated 11 changelogs in 1 batch" in text


def test_the_xsync_crawl_draws_the_same_bars(brick, tmp_path):
    rc, text = _on_a_terminal("replicate", "--mode", "xsync", brick, str(tmp_path / "replica"))
    assert rc == 0, text
    assert BAR.search(_final(text, "replicate journals"))
    assert "100%" in _final(text, "data")


def test_verify_and_analyze_draw_bars(brick, tmp_path):
    assert replicate(brick, str(tmp_path / "replica")).open_failures == 0
    rc, text = _on_a_terminal("verify", brick, str(tmp_path / "replica"))
    assert rc == 0 and "equal: 336 names" in text, text
    names = _final(text, "verify names")
    m = BAR.search(names)
    assert m and m[1] == m[2] == "336", names  # the replica walk, of the source's count
    assert "100%" in _final(text, "hashed")
    rc, text = _on_a_terminal("analyze", CORPUS)
    assert rc == 0, text
    m = BAR.search(_final(text, "analyze journals"))
    assert m and m[1] == m[2] == "34"
    assert "100%" in _final(text, "read")


@pytest.mark.parametrize("scheduler", [None, "sync"])
def test_analyze_on_dask_draws_the_journals_every_shard_has_read(scheduler):
    pytest.importorskip("dask")
    args = ["analyze", "--dask", "--json", CORPUS] + (["--scheduler", scheduler] if scheduler else [])
    rc, text = _on_a_terminal(*args)
    assert rc == 0, text
    m = BAR.search(_final(text, "analyze journals"))
    assert m and m[1] == m[2] == "34", text[-800:]
    assert "100%" in _final(text, "read")
    # the report itself is the one the pipe gets
    p = _on_a_pipe(*args)
    assert p.returncode == 0 and p.stderr == "" and p.stdout.strip() in text, p.stderr


def test_analyze_on_dask_draws_the_journals_summarised_for_save(tmp_path):
    pytest.importorskip("dask")
    rc, text = _on_a_terminal("analyze", "--dask", "--partitions", "5", "--save",
                              str(tmp_path / "s.json"), CORPUS)
    assert rc == 0, text
    m = BAR.search(_final(text, "analyze journals"))
    assert m and m[1] == m[2] == "34", text[-800:]
    assert (tmp_path / "s.json").stat().st_size > 0


@pytest.mark.parametrize("quiet", [True, False])
def test_nothing_is_drawn_on_a_pipe_or_with_q(brick, tmp_path, quiet):
    if quiet:  # a terminal, but -q
        rc, text = _on_a_terminal("replicate", "-q", brick, str(tmp_path / "replica"))
        assert rc == 0 and "journals" not in text and "\r" not in text.replace("\r\n", ""), text
        rc, text = _on_a_terminal("verify", "-q", brick, str(tmp_path / "replica"))
        assert rc == 0 and "names:" not in text and "hashed" not in text, text
        return
    p = _on_a_pipe("replicate", brick, str(tmp_path / "replica"))
    assert p.returncode == 0 and "journals/s" not in p.stderr and "\r" not in p.stderr
    p = _on_a_pipe("verify", brick, str(tmp_path / "replica"))
    assert p.returncode == 0 and "\r" not in p.stderr and p.stderr == ""


class Events(Progress):
    def __init__(self):
        self.log: list[tuple] = []

    def journals(self, total):
        self.log.append(("journals", total))

    def journal_done(self, n=1):
        self.log.append(("journal_done", n))

    def queued(self, files, nbytes):
        self.log.append(("queued", files, nbytes))

    def sent(self, files, nbytes):
        self.log.append(("sent", files, nbytes))


def test_files_are_reported_as_they_land_during_the_batch(brick, tmp_path):
    """One batch of 11 journals: data is reported file by file before the batch ends,
    and what was sent adds up to what was queued (less what never landed)."""
    ev = Events()
    s = replicate(brick, str(tmp_path / "replica"), display=ev)
    assert s.batches == 1
    kinds = [e[0] for e in ev.log]
    assert kinds[0] == "journals" and ev.log[0][1] == 11 and kinds[-1] == "journal_done"
    sent = [e for e in ev.log if e[0] == "sent"]
    assert len(sent) > 50  # not once per batch, nor once per transfer job
    queued = [e for e in ev.log if e[0] == "queued"]
    assert sum(e[1] for e in queued) == sum(e[1] for e in sent) > 200
    assert sum(e[2] for e in queued) == sum(e[2] for e in sent) > 4_000_000


def test_progress_for_only_on_a_terminal():
    assert progress_for(io.StringIO()) is None

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert progress_for(Tty()) is not None and progress_for(Tty(), quiet=True) is None
