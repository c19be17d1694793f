"""The rsync data engine: spec 5.2 command line, NUL names, in-place writes into
the replica's handles, exit codes 23/24/other, vanished files, parallel jobs,
and both Debian rsync behaviours (3.2.7 and the 3.5.0 security build)."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from streamsync.errors import SyncError
from streamsync.ops import EntryOp
from streamsync.options import Options
from streamsync.records import ROOT_GFID
from streamsync.sinks.engine import DataSyncer, TransferResult
from streamsync.sinks.replica import ReplicaSink, handle_relpath
from streamsync.sinks.rsync import RsyncEngine, rsync_version

R = ROOT_GFID
HAVE_RSYNC = shutil.which("rsync") is not None
needs_rsync = pytest.mark.skipif(not HAVE_RSYNC, reason="rsync is not installed")


def G(n: int) -> str:
    return f"5b1c2d3e-0000-4000-8000-{n:012x}"


def make_pair(tmp_path, files: dict[str, bytes]):
    """A source brick and a replica with the same entries; data only in the source."""
    src = ReplicaSink(tmp_path / "src")
    rep = ReplicaSink(tmp_path / "rep")
    ops = [EntryOp("CREATE", G(i), R, name, mode=0o100644, uid=0, gid=0)
           for i, name in enumerate(files, 1)]
    assert src.apply_entries(ops) == [] and rep.apply_entries(ops) == []
    for name, data in files.items():
        with open(tmp_path / "src" / name, "wb") as fh:
            fh.write(data)
    src.close()
    rep.close()
    return str(tmp_path / "src"), str(tmp_path / "rep"), [G(i) for i in range(1, len(files) + 1)]


def fake_rsync(tmp_path, codes: list[int], *, sleep: float = 0.0, stderr: str = "boom"):
    """A stand-in rsync: records argv and stdin, exits with the next code."""
    state = tmp_path / "fake-state"
    state.mkdir(exist_ok=True)
    (state / "codes").write_text("\n".join(map(str, codes)) + "\n")
    script = tmp_path / "fake-rsync"
    script.write_text(f"""#!/bin/sh
if [ "$1" = "--version" ]; then echo "rsync  version 3.2.7  protocol version 32"; exit 0; fi
n=$(ls {state} | grep -c '^call')
echo "$@" > {state}/call$n.argv
cat > {state}/call$n.stdin
sleep {sleep}
code=$(sed -n "$((n + 1))p" {state}/codes)
[ -z "$code" ] && code=$(tail -n 1 {state}/codes)
[ "$code" != 0 ] && echo "{stderr}" >&2
exit $code
""")
    script.chmod(0o755)
    return str(script), state


# ------------------------------------------------------------- command line
def test_command_line_follows_spec_order():
    o = Options.from_pairs(["rsync-options=--bwlimit=100 --checksum"])
    argv = RsyncEngine("/b", "/r", o, version="3.2.7").command()
    assert argv == ["rsync", "-aR0", "--inplace", "--files-from=-", "--super", "--stats",
                    "--numeric-ids", "--no-implied-dirs", "--existing", "--xattrs", "--acls",
                    "--filter=-x trusted.gfid", "--filter=-x user.streamsync.gfid",
                    "--filter=-x trusted.gfid2path.*", "--filter=-x trusted.glusterfs.*",
                    "--filter=-x trusted.afr.*", "--filter=-x trusted.ec.*",
                    "--filter=-x trusted.pgfid.*",
                    "--bwlimit=100", "--checksum", "--ignore-missing-args",
                    "--out-format=streamsync-sent:%n", "--ignore-times", ".", "/r/"]


def test_optional_flags_follow_options_and_version():
    o = Options.from_pairs(["rsync-opt-existing=false", "sync-xattrs=false", "sync-acls=false"])
    argv = RsyncEngine("/b", "/r", o, version="3.5.0").command()
    assert "--existing" not in argv and "--xattrs" not in argv and "--acls" not in argv
    assert not any(a.startswith("--filter") for a in argv)
    assert "--ignore-missing-args" in argv
    old = RsyncEngine("/b", "/r", Options(), version="3.0.9").command()
    assert "--ignore-missing-args" not in old


def test_remote_destination_gets_ssh_command():
    o = Options.from_pairs(["ssh-port=2222", "ssh-options=-i key"])
    argv = RsyncEngine("/b", "backup@host:/srv/r", o, version="3.2.7").command()
    i = argv.index("-e")
    assert argv[i + 1] == "ssh -i key -p 2222"
    assert argv[-1] == "backup@host:/srv/r/"


def test_names_are_handles_nul_terminated():
    eng = RsyncEngine("/b", "/r", version="3.2.7")
    assert eng.names([G(1), G(2)]) == (handle_relpath(G(1)) + "\0" + handle_relpath(G(2))
                                       + "\0").encode()


# --------------------------------------------------------------- real rsync
@needs_rsync
def test_transfer_writes_in_place_through_the_hard_links(tmp_path):
    src, rep, gfids = make_pair(tmp_path, {"a b.txt": b"hello\n", "big": os.urandom(300000)})
    visible = os.path.join(rep, "a b.txt")
    ino = os.lstat(visible).st_ino
    res = RsyncEngine(src, rep, Options()).transfer(gfids)
    assert res.returncode == 0, res.stderr
    assert open(visible, "rb").read() == b"hello\n"
    assert os.lstat(visible).st_ino == ino and os.lstat(visible).st_nlink == 2
    assert open(os.path.join(rep, "big"), "rb").read() == open(os.path.join(src, "big"), "rb").read()


@needs_rsync
def test_only_existing_replica_handles_are_written(tmp_path):
    """With --existing nothing new appears in the replica's .glusterfs (no implied
    directories, no orphan handles): what rsync 3.5.0 refuses is never needed."""
    src, rep, gfids = make_pair(tmp_path, {"f": b"x"})
    extra = ReplicaSink(tmp_path / "src")
    extra.apply_entries([EntryOp("CREATE", "abcdef00-0000-4000-8000-000000000001", R, "only-src",
                                 mode=0o100644, uid=0, gid=0)])
    extra.close()
    before = sorted(os.listdir(os.path.join(rep, ".glusterfs")))
    res = RsyncEngine(src, rep, Options()).transfer(gfids + ["abcdef00-0000-4000-8000-000000000001"])
    assert res.returncode == 0
    assert sorted(os.listdir(os.path.join(rep, ".glusterfs"))) == before


@needs_rsync
def test_vanished_source_file_is_not_an_error_with_ignore_missing_args(tmp_path):
    src, rep, gfids = make_pair(tmp_path, {"f": b"x", "g": b"y"})
    os.unlink(os.path.join(src, "g"))
    os.unlink(os.path.join(src, handle_relpath(gfids[1])))
    assert RsyncEngine(src, rep, Options()).transfer(gfids).returncode == 0
    old = Options.from_pairs(["rsync-opt-ignore-missing-args=false"])
    assert RsyncEngine(src, rep, old).transfer(gfids).returncode in (23, 24)


def _alt_rsyncs() -> list[str]:
    alts = [p for p in os.environ.get("STREAMSYNC_RSYNC_ALT", "").split(os.pathsep) if p]
    return [p for p in alts if os.access(p, os.X_OK)]


@pytest.mark.parametrize("binary", ["rsync", *_alt_rsyncs()])
def test_each_rsync_build_fills_existing_handles(tmp_path, binary):
    """The installed rsync and any other build named in $STREAMSYNC_RSYNC_ALT
    (e.g. Debian's 3.2.7 next to the 3.5.0 security build) give the same replica."""
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed")
    src, rep, gfids = make_pair(tmp_path, {"x": b"1" * 5000, "y": b""})
    o = Options.from_pairs([f"rsync-command={binary}"])
    res = RsyncEngine(src, rep, o).transfer(gfids)
    assert res.returncode == 0, res.stderr
    assert open(os.path.join(rep, "x"), "rb").read() == b"1" * 5000


# ---------------------------------------------------------- exit codes, jobs
@pytest.mark.parametrize("code", [23, 24])
def test_partial_codes_are_retriable(tmp_path, code):
    script, state = fake_rsync(tmp_path, [code])
    eng = RsyncEngine(str(tmp_path), str(tmp_path / "r"),
                      Options.from_pairs([f"rsync-command={script}"]))
    with DataSyncer(eng, jobs=1) as s:
        s.submit([G(1), G(2)])
        [r] = s.wait()
    assert r.result.returncode == code and not r.ok
    assert (state / "call0.stdin").read_bytes() == eng.names([G(1), G(2)])


def test_other_codes_are_fatal_with_stderr(tmp_path):
    script, _ = fake_rsync(tmp_path, [12], stderr="rsync: connection unexpectedly closed")
    eng = RsyncEngine(str(tmp_path), str(tmp_path / "r"),
                      Options.from_pairs([f"rsync-command={script}"]))
    with DataSyncer(eng, jobs=1) as s:
        s.submit([G(1)])
        with pytest.raises(SyncError, match="status 12: rsync: connection unexpectedly closed"):
            s.wait()


def test_sync_jobs_run_in_parallel_and_dedupe():
    # the first three transfers meet at a barrier: only three jobs running at once get
    # past it (one at a time, the first would wait out the timeout and break it)
    together = threading.Barrier(3, timeout=60)
    lock = threading.Lock()

    class Slow:
        name = "slow"

        def __init__(self):
            self.sent = []

        def is_partial(self, code):
            return False

        def transfer(self, gfids):
            with lock:
                self.sent.extend(gfids)
                first = len(self.sent) <= 6
            if first:
                together.wait()
            return TransferResult(0, "", len(gfids))

    eng = Slow()
    with DataSyncer(eng, jobs=3, min_chunk=2) as s:
        s.submit([G(i) for i in range(6)])
        s.submit([G(i) for i in range(4)])  # already queued in this batch
        s.wait()
        assert not together.broken and together.n_waiting == 0
        assert sorted(eng.sent) == sorted(G(i) for i in range(6))
        s.new_batch()
        s.submit([G(1)])
        s.wait()
        assert eng.sent.count(G(1)) == 2  # a new batch sends it again


@needs_rsync
@pytest.mark.skipif(os.geteuid() != 0, reason="trusted.* xattrs need root")
def test_replica_gfid_tag_survives_a_source_without_xattrs(tmp_path):
    src, rep, gfids = make_pair(tmp_path, {"f": b"data"})
    for p in (os.path.join(src, "f"),):
        os.removexattr(p, "trusted.gfid", follow_symlinks=False)
    os.setxattr(os.path.join(src, "f"), "user.note", b"kept")
    assert RsyncEngine(src, rep, Options()).transfer(gfids).returncode == 0
    f = os.path.join(rep, "f")
    import uuid
    assert str(uuid.UUID(bytes=os.getxattr(f, "trusted.gfid"))) == gfids[0]
    assert os.getxattr(f, "user.note") == b"kept" and open(f, "rb").read() == b"data"


@needs_rsync
@pytest.mark.skipif(os.geteuid() != 0, reason="trusted.* xattrs need root")
def test_glusterfs_own_xattrs_stay_on_the_primary(tmp_path):
    """gfid2path, mdata and AFR's changelog xattrs are GlusterFS's own on each brick:
    rsync neither copies the primary's nor removes the secondary's; a user's travels."""
    src, rep, gfids = make_pair(tmp_path, {"f": b"bytes"})
    s = os.path.join(src, "f")
    for k, v in (("trusted.gfid2path.0a1b", b"parent/f"), ("trusted.glusterfs.mdata", b"\1" * 40),
                 ("trusted.afr.vol-client-0", b"\0" * 12), ("user.keep", b"mine")):
        os.setxattr(s, k, v)
    r = os.path.join(rep, "f")
    os.setxattr(r, "trusted.glusterfs.mdata", b"secondary's own")
    res = RsyncEngine(src, rep, Options(), version=rsync_version()).transfer(gfids)
    assert res.returncode == 0 and not res.missed
    assert open(r, "rb").read() == b"bytes"
    names = set(os.listxattr(r))
    assert "user.keep" in names and os.getxattr(r, "user.keep") == b"mine"
    assert "trusted.gfid2path.0a1b" not in names and "trusted.afr.vol-client-0" not in names
    assert os.getxattr(r, "trusted.glusterfs.mdata") == b"secondary's own"
