"""The tar data engine: tar --sparse piped into tar --overwrite -x, in place
through the replica's hard links, exit status 2 retriable."""

from __future__ import annotations

import os
import shutil

import pytest

from streamsync.errors import SyncError
from streamsync.ops import EntryOp
from streamsync.records import ROOT_GFID
from streamsync.sinks.engine import DataSyncer
from streamsync.sinks.replica import ReplicaSink, handle_relpath
from streamsync.sinks.tar import TarEngine

R = ROOT_GFID
pytestmark = pytest.mark.skipif(shutil.which("tar") is None, reason="tar is not installed")


def G(n: int) -> str:
    return f"5b1c2d3e-0000-4000-8000-{n:012x}"


def make_pair(tmp_path, files):
    src, rep = ReplicaSink(tmp_path / "src"), ReplicaSink(tmp_path / "rep")
    ops = [EntryOp("CREATE", G(i), R, n, mode=0o100644, uid=0, gid=0)
           for i, n in enumerate(files, 1)]
    assert src.apply_entries(ops) == [] and rep.apply_entries(ops) == []
    for n, data in files.items():
        (tmp_path / "src" / n).write_bytes(data)
    src.close(), rep.close()
    return str(tmp_path / "src"), str(tmp_path / "rep"), [G(i) for i in range(1, len(files) + 1)]


def test_commands():
    eng = TarEngine("/b", "/r")
    assert eng.create_command() == ["tar", "--sparse", "--numeric-owner", "--record-size=128K",
                                    "-cf", "-", "--files-from", "-"]
    assert eng.extract_command()[-2:] == ["-C", "/r"]
    remote = TarEngine("/b", "host:/srv/r").extract_command()
    # over ssh the receiver is streamsync's confined one, not a plain tar -x
    assert remote == ["ssh", "-p", "22", "host", "streamsync serve --receive-tar /srv/r"]
    odd = TarEngine("/b", "host:/srv/my r", remote_command="/opt/ss/bin/streamsync -q")
    assert odd.extract_command()[-1] == "/opt/ss/bin/streamsync -q serve --receive-tar '/srv/my r'"


def test_transfer_in_place_keeps_hard_links_and_sparse_data(tmp_path):
    sparse = b"\0" * (1 << 20) + b"tail"
    src, rep, gfids = make_pair(tmp_path, {"f": b"hello", "sparse": sparse})
    ino = os.lstat(os.path.join(rep, "f")).st_ino
    res = TarEngine(src, rep).transfer(gfids)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "rep" / "f").read_bytes() == b"hello"
    assert (tmp_path / "rep" / "sparse").read_bytes() == sparse
    st = os.lstat(os.path.join(rep, "f"))
    assert st.st_ino == ino and st.st_nlink == 2


def test_vanished_file_is_status_2_then_done_without_it(tmp_path):
    src, rep, gfids = make_pair(tmp_path, {"f": b"a", "g": b"b"})
    os.unlink(os.path.join(src, "g"))
    os.unlink(os.path.join(src, handle_relpath(gfids[1])))
    eng = TarEngine(src, rep)
    res = eng.transfer(gfids)
    assert res.returncode == 2 and eng.is_partial(2)
    assert (tmp_path / "rep" / "f").read_bytes() == b"a"
    assert eng.transfer(gfids[:1]).returncode == 0


def test_fatal_status_raises_with_stderr(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "tar"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'tar: Cannot open: Permission denied' >&2\n"
                    "exit 7\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with DataSyncer(TarEngine(str(tmp_path), str(tmp_path)), jobs=1) as s:
        s.submit([G(1)])
        with pytest.raises(SyncError, match="Permission denied"):
            s.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another owner needs root")
def test_set_id_bits_survive_an_in_place_extract_onto_the_same_mode(tmp_path):
    # GNU tar skips chmod when the mode already matches but still chowns, and chown
    # clears S_ISUID/S_ISGID: without the engine's fix-up the file came out 0755
    src, rep, gfids = make_pair(tmp_path, {"suid": b"x", "sgid": b"y"})
    for root in (src, rep):  # chown first: a chown clears the set-id bits
        for n in ("suid", "sgid"):
            os.chown(os.path.join(root, n), 1000, 1000)
        os.chmod(os.path.join(root, "suid"), 0o4755)
        os.chmod(os.path.join(root, "sgid"), 0o2755)
    res = TarEngine(src, rep).transfer(gfids)
    assert res.returncode == 0, res.stderr
    assert oct(os.lstat(os.path.join(rep, "suid")).st_mode & 0o7777) == oct(0o4755)
    assert oct(os.lstat(os.path.join(rep, "sgid")).st_mode & 0o7777) == oct(0o2755)
