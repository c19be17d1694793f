"""The in-process lane for small files lands what rsync -a would, and hands off the rest.

Each case builds a brick-layout source handle and an existing destination file,
runs :class:`SmallFileLane` over a recording engine (which stands for rsync and
records what it was handed), and checks the destination with ``os.lstat`` and
its bytes, and which gfids went where. The last test runs the real rsync and
the lane on the same sources and compares the two results field by field.
"""

from __future__ import annotations

import os
import stat

import pytest

from streamsync.options import Options
from streamsync.sinks.recording import RecordingEngine
from streamsync.sinks.replica import handle_relpath
from streamsync.sinks.rsync import RsyncEngine
from streamsync.sinks.smallfiles import SmallFileLane, lane_for


def _g(n: int) -> str:
    return f"5b1c2d3e-0000-4000-8000-{n:012x}"


@pytest.fixture
def dirs(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    return str(src), str(dst)


def _source(src: str, g: str, data: bytes, mode: int = 0o644, mtime: int = 1_600_000_000):
    path = os.path.join(src, handle_relpath(g))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)
    os.utime(path, (mtime, mtime))
    return path


def _lane(src, dst, limit=4096, xattrs=True):
    inner = RecordingEngine()
    return SmallFileLane(inner, src, lambda g: os.path.join(dst, g), limit=limit,
                         xattrs=xattrs), inner


def _handed(inner: RecordingEngine) -> list[str]:
    return [g for call in inner.transfers for g in call]


def test_bytes_length_mode_owner_and_times_are_the_sources(dirs):
    src, dst = dirs
    g = _g(1)
    path = _source(src, g, b"new", mtime=1_500_000_123)
    os.chown(path, 1000, 1001)
    os.chmod(path, 0o4750)  # after the chown, which clears set-id bits
    with open(os.path.join(dst, g), "wb") as fh:
        fh.write(b"a much longer old content")
    lane, inner = _lane(src, dst)
    res = lane.transfer([g])
    assert (res.returncode, res.missed, res.num_files) == (0, (), 1)
    assert _handed(inner) == []
    st = os.lstat(os.path.join(dst, g))
    assert open(os.path.join(dst, g), "rb").read() == b"new"
    assert stat.S_IMODE(st.st_mode) == 0o4750  # set-uid kept although chown came first
    assert (st.st_uid, st.st_gid, int(st.st_mtime)) == (1000, 1001, 1_500_000_123)


def test_missing_destination_is_missed_not_created(dirs):
    src, dst = dirs
    _source(src, _g(2), b"x")
    lane, inner = _lane(src, dst)
    res = lane.transfer([_g(2)])
    assert res.missed == (_g(2),) and not os.path.exists(os.path.join(dst, _g(2)))
    assert res.returncode == 0


def test_vanished_source_is_missed(dirs):
    src, dst = dirs
    open(os.path.join(dst, _g(3)), "w").close()
    lane, _ = _lane(src, dst)
    assert lane.transfer([_g(3)]).missed == (_g(3),)


def test_large_files_symlinks_and_foreign_xattrs_go_to_the_engine(dirs):
    src, dst = dirs
    big, link, tagged, plain = _g(4), _g(5), _g(6), _g(7)
    _source(src, big, b"x" * 5000)
    os.symlink("elsewhere", os.path.join(src, handle_relpath(link)))
    _source(src, tagged, b"tagged")
    os.setxattr(os.path.join(src, handle_relpath(tagged)), "user.tag", b"1")
    _source(src, plain, b"plain")
    os.setxattr(os.path.join(src, handle_relpath(plain)), "trusted.gfid2path.ab", b"x/y")
    for g in (big, link, tagged, plain):
        open(os.path.join(dst, g), "w").close()
    lane, inner = _lane(src, dst)
    res = lane.transfer([big, link, tagged, plain])
    assert res.returncode == 0 and res.missed == ()
    assert _handed(inner) == [big, link, tagged]
    assert open(os.path.join(dst, plain), "rb").read() == b"plain"
    # without xattrs to carry, a user xattr does not need rsync
    lane, inner = _lane(src, dst, xattrs=False)
    lane.transfer([tagged])
    assert _handed(inner) == [] and open(os.path.join(dst, tagged), "rb").read() == b"tagged"


_NO_RANGE = OSError(18, "Invalid cross-device link")   # EXDEV: a brick into a FUSE mount
_NO_SENDFILE = OSError(22, "Invalid argument")


@pytest.mark.parametrize("kernel", ["copy_file_range", "sendfile", "read-write"])
def test_a_file_over_1_mib_is_copied_by_the_kernel_as_rsync_would(dirs, monkeypatch, kernel):
    """Over 1 MiB the bytes go descriptor to descriptor (copy_file_range, else
    sendfile, else read/write when the filesystems allow neither): the same bytes,
    length (a longer destination is cut), mode and times."""
    src, dst = dirs
    g = _g(20)
    data = os.urandom((3 << 20) + 17)
    _source(src, g, data, mode=0o640, mtime=1_500_000_321)
    with open(os.path.join(dst, g), "wb") as fh:
        fh.write(b"z" * (5 << 20))  # an older, longer version
    calls = []
    if kernel != "copy_file_range":
        def no_range(*a):
            calls.append("copy_file_range")
            raise _NO_RANGE
        monkeypatch.setattr(os, "copy_file_range", no_range)
    if kernel == "read-write":
        def no_sendfile(*a):
            calls.append("sendfile")
            raise _NO_SENDFILE
        monkeypatch.setattr(os, "sendfile", no_sendfile)
    lane, inner = _lane(src, dst, limit=8 << 20)
    res = lane.transfer([g])
    assert res.returncode == 0 and res.missed == () and _handed(inner) == []
    assert open(os.path.join(dst, g), "rb").read() == data
    st = os.lstat(os.path.join(dst, g))
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o640, 1_500_000_321)
    assert calls == {"copy_file_range": [], "sendfile": ["copy_file_range"],
                     "read-write": ["copy_file_range", "sendfile"]}[kernel]


def test_a_kernel_copy_failing_half_way_is_a_partial_transfer(dirs, monkeypatch):
    """An error after some bytes moved is not retried another way: the file is
    reported (exit 23, its name), for the dispatcher's retry and ledger."""
    src, dst = dirs
    g = _g(21)
    _source(src, g, os.urandom(3 << 20))
    open(os.path.join(dst, g), "w").close()
    real = os.copy_file_range
    state = {"n": 0}

    def flaky(sfd, dfd, count, *a):
        state["n"] += 1
        if state["n"] > 1:
            raise OSError(5, "Input/output error")
        return real(sfd, dfd, 1 << 20)
    monkeypatch.setattr(os, "copy_file_range", flaky)
    lane, inner = _lane(src, dst, limit=8 << 20)
    res = lane.transfer([g])
    assert res.returncode == 23 and res.missed == (g,) and _handed(inner) == []
    assert "Input/output error" in res.stderr and g in res.stderr


def test_when_no_way_of_copying_works_the_file_is_reported_not_emptied(dirs, monkeypatch):
    """Both kernel copies refused and the read failing too: an error naming the
    file (retried, then ledgered), never an empty destination taken as copied."""
    src, dst = dirs
    g = _g(22)
    _source(src, g, os.urandom(2 << 20))
    with open(os.path.join(dst, g), "wb") as fh:
        fh.write(b"older bytes")
    real_read = os.read

    def refuse(*a):
        raise _NO_SENDFILE

    def failing_read(fd, n):
        if n == 1 << 20:  # the lane's chunked read of a large file
            raise OSError(22, "Invalid argument")
        return real_read(fd, n)
    monkeypatch.setattr(os, "copy_file_range", refuse)
    monkeypatch.setattr(os, "sendfile", refuse)
    monkeypatch.setattr(os, "read", failing_read)
    lane, inner = _lane(src, dst, limit=8 << 20)
    res = lane.transfer([g])
    assert res.returncode == 23 and res.missed == (g,) and g in res.stderr
    assert open(os.path.join(dst, g), "rb").read() == b"older bytes"


def test_a_destination_symlink_is_not_followed(dirs, tmp_path):
    src, dst = dirs
    g = _g(8)
    _source(src, g, b"payload")
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    os.symlink(victim, os.path.join(dst, g))
    lane, inner = _lane(src, dst)
    lane.transfer([g])
    assert victim.read_bytes() == b"untouched"
    assert _handed(inner) == [g]


def test_a_write_error_is_a_partial_transfer_naming_the_file(dirs):
    src, dst = dirs
    g = _g(9)
    _source(src, g, b"data")
    os.mkfifo(os.path.join(dst, g))  # not a regular file: handed over, never opened
    lane, inner = _lane(src, dst)
    assert lane.transfer([g]).returncode == 0 and _handed(inner) == [g]
    os.unlink(os.path.join(dst, g))
    open(os.path.join(dst, g), "w").close()
    lane = SmallFileLane(RecordingEngine(), src, lambda g: "/proc/self/status", limit=4096)
    res = lane.transfer([g])
    assert res.returncode == 23 and res.missed == (g,)
    assert "/proc/self/status" in res.stderr


def test_the_lane_is_off_for_a_chosen_rsync_unless_asked():
    eng = RecordingEngine()
    assert isinstance(lane_for(eng, "/b", str, Options()), SmallFileLane)
    assert lane_for(eng, "/b", str, Options.from_pairs(["rsync-command=/opt/rsync"])) is eng
    assert isinstance(lane_for(eng, "/b", str, Options.from_pairs(
        ["rsync-command=/opt/rsync", "copy-small-files=4096"])), SmallFileLane)
    assert lane_for(eng, "/b", str, Options.from_pairs(["copy-small-files=0"])) is eng


def test_the_lane_lands_what_rsync_lands(tmp_path):
    """Same sources, rsync into one replica and the lane into another: equal."""
    src = tmp_path / "brick"
    gfids = [_g(20 + i) for i in range(12)]
    for i, g in enumerate(gfids):
        _source(str(src), g, os.urandom(97 * i), mode=(0o600, 0o755, 0o2770)[i % 3],
                mtime=1_400_000_000 + i)
        os.chown(os.path.join(src, handle_relpath(g)), 1000 + i, 2000 + i)
    outs = []
    for name in ("rsync", "lane"):
        dst = tmp_path / name
        for g in gfids:
            path = dst / handle_relpath(g)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"stale stale stale stale")
        eng = RsyncEngine(str(src), str(dst))
        if name == "lane":
            eng = SmallFileLane(eng, str(src), lambda g, d=dst: str(d / handle_relpath(g)),
                                limit=1 << 20)
        res = eng.transfer(gfids)
        assert res.returncode == 0 and res.missed == (), res.stderr
        outs.append({g: (os.lstat(dst / handle_relpath(g)).st_mode,
                         os.lstat(dst / handle_relpath(g)).st_uid,
                         os.lstat(dst / handle_relpath(g)).st_gid,
                         os.lstat(dst / handle_relpath(g)).st_mtime_ns,
                         (dst / handle_relpath(g)).read_bytes()) for g in gfids})
    assert outs[0] == outs[1]


# ------------------------------------------------ in the same pass as the CREATE
def _journaled_brick(tmp_path):
    from test_worker_brick import Brick
    b = Brick(tmp_path / "b")
    b.mkdir("d")
    small = [b.create(f"d/f{i}", os.urandom(100 * i + 1), mode=0o640 + (i % 2)) for i in range(12)]
    os.chown(b.path("d/f3"), 1234, 5678)
    os.utime(b.path("d/f4"), (1_500_000_000, 1_500_000_001))
    foreign = b.create("d/x", b"with a foreign xattr")
    os.setxattr(b.path("d/x"), "user.note", b"kept by rsync")
    big = b.create("d/big", os.urandom(3 << 20))
    b.rollover(1700000015)
    return b, small, foreign, big


def test_new_small_files_land_with_their_create(tmp_path, monkeypatch):
    """A local replica writes a new small file's bytes, owner, mode and times while
    creating it: neither the lane's copy nor rsync is run for it; a file over 1 MiB
    is the lane's after the entries; what the lane does not copy (foreign xattrs)
    still goes to rsync."""
    from streamsync.replicate import replicate
    from streamsync.verify import verify
    b, small, foreign, big = _journaled_brick(tmp_path)
    copied, handed = [], []
    lane_copy, rsync_transfer = SmallFileLane._copy, RsyncEngine.transfer
    monkeypatch.setattr(SmallFileLane, "_copy", lambda self, g: copied.append(g) or lane_copy(self, g))
    monkeypatch.setattr(RsyncEngine, "transfer",
                        lambda self, gs: handed.extend(gs) or rsync_transfer(self, gs))
    s = replicate(b.root, str(tmp_path / "r"), options=Options.from_pairs(["hot-file-size=0"]))
    assert s.open_failures == 0
    assert not set(small) & set(copied) and not set(small) & set(handed)
    assert set(handed) == {foreign} and big in copied
    assert verify(b.root, str(tmp_path / "r"), mtimes=True, gfids=True) == []
    st = os.lstat(tmp_path / "r" / "d" / "f3")
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert os.getxattr(tmp_path / "r" / "d" / "x", "user.note") == b"kept by rsync"


def test_a_fill_that_fails_is_sent_after_the_entries(tmp_path, monkeypatch):
    """A write error half-way through a file's fill (ENOSPC) leaves it to the usual
    data path, which rewrites it whole after the entries."""
    from streamsync.replicate import replicate
    from streamsync.verify import verify
    b, small, _foreign, _big = _journaled_brick(tmp_path)
    write, lane_copy = SmallFileLane._write, SmallFileLane._copy
    copied = []

    def failing(self, dfd, dst, st, data):
        # (the handle is linked after the fill: the visible name tells the file)
        if os.path.basename(os.readlink(f"/proc/self/fd/{dfd}")) in ("f2", "f5"):
            os.write(dfd, b"half")
            raise OSError(28, "No space left on device")
        return write(self, dfd, dst, st, data)

    monkeypatch.setattr(SmallFileLane, "_write", failing)
    monkeypatch.setattr(SmallFileLane, "_copy", lambda self, g: copied.append(g) or lane_copy(self, g))
    s = replicate(b.root, str(tmp_path / "r"), options=Options.from_pairs(["hot-file-size=0"]))
    assert s.open_failures == 0
    assert sorted(set(copied) & set(small)) == sorted([small[2], small[5]])
    assert verify(b.root, str(tmp_path / "r"), mtimes=True, gfids=True) == []


def test_a_file_gone_from_the_source_is_not_filled_nor_a_failure(tmp_path):
    from streamsync.replicate import replicate
    from streamsync.verify import verify
    from test_worker_brick import Brick
    b = Brick(tmp_path / "b")
    b.create("keep", b"k")
    b.create("gone", b"g")
    b.unlink("gone")
    b.rollover(1700000015)
    s = replicate(b.root, str(tmp_path / "r"))
    assert s.open_failures == 0
    assert verify(b.root, str(tmp_path / "r"), gfids=True) == []


def test_a_large_file_whose_copy_fails_once_is_retried_and_lands(tmp_path, monkeypatch):
    """The kernel copy of the 3 MiB file fails half-way in the first attempt (EIO
    after 1 MiB): the batch retries it, the replica ends equal, nothing is
    ledgered."""
    from streamsync.replicate import replicate
    from streamsync.verify import verify
    b, _small, _foreign, big = _journaled_brick(tmp_path)
    real = os.copy_file_range
    calls = []

    def once_broken(sfd, dfd, count, *a):
        calls.append(count)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        return real(sfd, dfd, 1 << 20 if len(calls) == 1 else count)
    monkeypatch.setattr(os, "copy_file_range", once_broken)
    s = replicate(b.root, str(tmp_path / "r"), options=Options.from_pairs(["hot-file-size=0"]),
                  retry_delay=0)
    assert len(calls) >= 4  # 1 MiB, the error, then a whole copy and its end
    assert s.open_failures == 0
    assert verify(b.root, str(tmp_path / "r"), mtimes=True, gfids=True) == []
