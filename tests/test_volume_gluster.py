"""A real GlusterFS volume as the secondary (issue 11): brick -> secondary volume.

Two volumes on loopback GlusterFS: ``gm`` (changelog on) and ``gs``. The
secondary is mounted as gsyncd's secondary side mounts it (aux-gfid, acl,
client-pid -1) with the FUSE caches off; ``streamsync replicate --follow``
runs from ``gm``'s brick into that mount while a workload runs on ``gm``'s
FUSE mount; then the two mounts must be equal, **gfids included**.

The op rules themselves (:mod:`streamsync.secondary.rules`) are also checked
one case at a time against the volume (``test_rules_on_the_volume``).

rollover-time is 3 s, not 1: at 1 s the brick rolls over several times within
one second and a later rollover overwrites the journal of an earlier one with
the same name (HTIME then lists ``CHANGELOG.<ts>`` twice): changes are lost
on the brick itself, before any consumer sees them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from gluster_lab import glusterd_running, other_rsync, remove_volumes, run, start_volume, wait_for
from streamsync.ops import EntryOp
from streamsync.records import ROOT_GFID, Stat
from streamsync.secondary.gfid_mount import GfidMount, is_gfid_mount
from streamsync.sinks.volume import VolumeSink
from streamsync.verify import verify

pytestmark = pytest.mark.gluster

R = ROOT_GFID
LATIN1 = os.fsdecode(b"latin1-\xe9\xff")


@pytest.fixture(scope="module")
def glusterd(tmp_path_factory):
    yield from glusterd_running(tmp_path_factory)


def _secondary_mount(host: str, vol: str, where) -> None:
    run("glusterfs", "--aux-gfid-mount", "--acl", "--client-pid=-1", "--entry-timeout=0",
        "--attribute-timeout=0", "--negative-timeout=0", f"--volfile-server={host}",
        f"--volfile-id={vol}", str(where))
    wait_for(lambda: is_gfid_mount(where), f"the aux-gfid mount of {vol}", timeout=30)


@pytest.fixture
def volumes(glusterd, tmp_path):
    """``(primary brick, primary mount, secondary aux mount, secondary volume name)``,
    torn down after."""
    host = glusterd
    tag = f"{os.getpid()}{uuid.uuid4().hex[:4]}"
    gm, gs = f"ssgm{tag}", f"ssgs{tag}"
    pm, sm = tmp_path / "pm", tmp_path / "sm"
    pm.mkdir()
    sm.mkdir()
    (tmp_path / "bricks").mkdir()
    made, mounted = [], []
    try:
        for vol in (gm, gs):
            run("gluster", "--mode=script", "volume", "create", vol,
                f"{host}:{tmp_path / 'bricks' / vol}", "force")
            made.append(vol)
        for k, v in (("changelog.changelog", "on"), ("changelog.rollover-time", "3")):
            run("gluster", "volume", "set", gm, k, v)
        for vol in (gm, gs):
            start_volume(vol)
        run("mount", "-t", "glusterfs", f"{host}:/{gm}", str(pm))
        mounted.append(pm)
        _secondary_mount(host, gs, sm)
        mounted.append(sm)
        yield str(tmp_path / "bricks" / gm), str(pm), str(sm), gs
    finally:
        remove_volumes(made, mounted)


def _gfid(path: str) -> str | None:
    try:
        return os.getxattr(path, "glusterfs.gfid.string",
                           follow_symlinks=False).rstrip(b"\0").decode()
    except OSError:
        return None


def _gfid_differences(primary: str, secondary: str) -> list[str]:
    out = []
    for top, dirs, files in os.walk(primary):
        for name in dirs + files:
            p = os.path.join(top, name)
            rel = os.path.relpath(p, primary)
            a, b = _gfid(p), _gfid(os.path.join(secondary, rel))
            if a != b:
                out.append(f"{rel!r}: gfid {a} on the primary, {b} on the secondary")
    return out


def _workload(m: str) -> None:
    j = lambda *p: os.path.join(m, *p)  # noqa: E731
    os.makedirs(j("src", "app", "core"))
    os.makedirs(j("data", "raw"))
    os.mkdir(j("with space"))
    for i in range(60):
        with open(j("src", "app", f"m{i}.py"), "wb") as fh:
            fh.write(os.urandom(37 * i))
    with open(j("data", "raw", "blob.bin"), "wb") as fh:
        fh.write(os.urandom(8 << 20))
    with open(j("with space", "new\nline %20.txt"), "w") as fh:
        fh.write("odd name\n")
    with open(j(LATIN1), "wb") as fh:
        fh.write(b"not utf-8\n")
    os.rename(j("src", "app", "m1.py"), j("data", "m1-moved.py"))
    os.rename(j("src", "app", "core"), j("data", "core-moved"))
    os.rename(j("src", "app", "m9.py"), j("src", "app", "m10.py"))  # over an existing name
    os.link(j("src", "app", "m2.py"), j("data", "m2-hardlink.py"))
    os.symlink("../src/app/m3.py", j("data", "m3-link"))
    os.symlink("/nonexistent/dangling", j("dangling"))
    os.chmod(j("src", "app", "m4.py"), 0o4750)
    os.chown(j("src", "app", "m5.py"), 1000, 1001)
    os.chmod(j("data"), 0o2775)
    with open(j("src", "app", "m6.py"), "ab") as fh:
        fh.write(b"appended\n")
    os.truncate(j("src", "app", "m7.py"), 3)
    with open(j("data", "raw", "blob.bin"), "r+b") as fh:
        fh.seek(1 << 20)
        fh.write(b"\0" * 65536)
    os.unlink(j("src", "app", "m8.py"))
    os.unlink(j("src", "app", "m2.py"))  # the hard link stays
    os.mkdir(j("gone"))
    open(j("gone", "f"), "w").close()
    os.unlink(j("gone", "f"))
    os.rmdir(j("gone"))
    os.mkdir(j("deep"))
    for k in range(5):
        os.makedirs(j("deep", f"d{k}", "x"))
        open(j("deep", f"d{k}", "x", "f"), "w").write(str(k))
    os.rename(j("deep", "d0"), j("deep", "d1", "x", "d0-inside"))


@pytest.fixture(scope="module")
def rsync_alt(tmp_path_factory):
    return other_rsync(tmp_path_factory)


@pytest.mark.parametrize("rsync", ["installed", "other"])
def test_a_live_workload_reaches_the_secondary_volume_gfids_included(volumes, tmp_path, rsync,
                                                                     request):
    """With either rsync Debian 12 ships (3.2.7 and 3.5.0) on both sides."""
    brick, primary, secondary, _ = volumes
    state = str(tmp_path / "state.sqlite")
    command = "rsync" if rsync == "installed" else request.getfixturevalue("rsync_alt")
    proc = subprocess.Popen([sys.executable, "-m", "streamsync", "replicate", "--follow", "-q",
                             "--state", state, "-o", "change-interval=1",
                             "-o", f"rsync-command={command}", brick, secondary],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _workload(primary)
        last = ["not compared"]

        def equal() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"replicate exited {proc.returncode}: {proc.communicate()}")
            last[:] = [str(d) for d in verify(primary, secondary)] + \
                _gfid_differences(primary, secondary)
            return not last

        try:
            wait_for(equal, "the secondary volume to equal the primary", timeout=120,
                     interval=1.0)
        except AssertionError:
            raise AssertionError(last[:20]) from None
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # streamsync verify compares gfids between two volumes by itself: a name made
    # again with another gfid (same bytes) is a difference
    from streamsync.cli import main
    assert main(["verify", primary, secondary]) == 0
    victim = os.path.join(secondary, "with space", "new\nline %20.txt")
    data = open(victim, "rb").read()
    os.unlink(victim)
    pg = _gfid(os.path.dirname(victim))
    GfidMount(secondary).create(pg, "new\nline %20.txt", str(uuid.uuid4()), 0o100644, 0, 0)
    with open(victim, "r+b") as fh:
        fh.write(data)
    assert [d.field for d in verify(primary, secondary)] == []  # blind without gfids
    assert [d.field for d in verify(primary, secondary, gfids=True)] == ["gfid"]
    assert main(["verify", primary, secondary]) == 1
    st = os.lstat(os.path.join(secondary, "src", "app", "m4.py"))
    assert st.st_mode & 0o7777 == 0o4750
    assert os.readlink(os.path.join(secondary, "dangling")) == "/nonexistent/dangling"
    assert os.path.getsize(os.path.join(secondary, "data", "raw", "blob.bin")) == 8 << 20
    assert not os.path.exists(os.path.join(secondary, ".glusterfs"))  # state stays here


def _orphan_ssh_masters() -> list[str]:
    """ssh ControlMaster processes whose socket directory is gone (a session that
    ended without telling its master to exit)."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [x for x in out.splitlines() if x.startswith("ssh: ") and x.endswith("[mux]")
            and "gsyncd-aux-ssh-" in x and not os.path.isdir(os.path.dirname(x.split()[1]))]


def _g(n: int) -> str:
    return f"5b1c2d3e-{os.getpid() % 10000:04d}-4000-8000-{n:012x}"


def test_rules_on_the_volume(volumes):
    """Spec 4.3 case by case on a real secondary, checked with the volume's own
    answers (gfid xattrs of names), not the sink's."""
    _, _, secondary, _ = volumes
    sink = VolumeSink(secondary)
    ns = GfidMount(secondary)
    d, f, s, d2 = _g(1), _g(2), _g(3), _g(4)
    st = Stat(0, 0, 0o100644, 0, 0)
    dst = Stat(0, 0, 0o40755, 0, 0)
    assert sink.apply_entries([
        EntryOp("MKDIR", d, R, "d", mode=0o40755, uid=0, gid=0),
        EntryOp("CREATE", f, d, "f", mode=0o100640, uid=1000, gid=1000),
        EntryOp("SYMLINK", s, d, "s", stat=Stat(0, 0, 0o120777, 0, 0), link="../t"),
        EntryOp("LINK", f, R, "f-link", stat=st),
    ]) == []
    assert _gfid(os.path.join(secondary, "d", "f")) == f
    assert os.lstat(os.path.join(secondary, "d", "f")).st_uid == 1000
    assert os.readlink(os.path.join(secondary, "d", "s")) == "../t"
    assert os.lstat(os.path.join(secondary, "f-link")).st_ino == \
        os.lstat(os.path.join(secondary, "d", "f")).st_ino
    # a name holding another gfid: EEXIST with the secondary's gfid
    [fail] = sink.apply_entries([EntryOp("CREATE", _g(9), d, "f", mode=0o100644, uid=0, gid=0)])
    assert fail.errno == 17 and fail.info.gfid_mismatch and fail.info.slave_gfid == f
    # a second directory with an existing directory gfid is never made
    [fail] = sink.apply_entries([EntryOp("MKDIR", d, R, "d-again", mode=0o40755, uid=0, gid=0)])
    assert fail.info.name_mismatch and fail.info.slave_entry == f".gfid/{R}/d"
    assert not os.path.exists(os.path.join(secondary, "d-again"))
    assert sorted(os.listdir(os.path.join(secondary, "d"))) == ["f", "s"]
    # RENAME: directory, then a replay of it (nothing to do), then onto an existing name
    assert sink.apply_entries([EntryOp("MKDIR", d2, R, "e", mode=0o40755, uid=0, gid=0),
                               EntryOp("RENAME", d, R, "d", pgfid1=d2, bname1="d", stat=dst)]) == []
    assert sink.apply_entries([EntryOp("RENAME", d, R, "d", pgfid1=d2, bname1="d",
                                       stat=dst)]) == []
    assert ns.dir_location(d) == (d2, "d")
    [fail] = sink.apply_entries([EntryOp("RENAME", s, d, "s", pgfid1=R, bname1="f-link",
                                         stat=Stat(0, 0, 0o120777, 0, 0), link="../t")])
    assert fail.errno == 17 and fail.info.dst and fail.info.slave_gfid == f
    # names the volume would shorten or misread are refused
    [fail] = sink.apply_entries([EntryOp("CREATE", _g(10), R, "a/b", mode=0o100644, uid=0,
                                         gid=0)])
    assert fail.errno == 22 and not os.path.exists(os.path.join(secondary, "b"))
    # UNLINK and RMDIR (recursive, by gfid)
    assert sink.apply_entries([EntryOp("UNLINK", f, R, "f-link"),
                               EntryOp("RMDIR", d2, R, "e")]) == []
    assert sorted(os.listdir(secondary)) == []
    assert ns.kind(f) is None and ns.kind(d) is None
    # a LINK whose gfid is gone makes the file from the stat: its bytes are owed
    assert sink.apply_entries([EntryOp("LINK", _g(11), R, "made", stat=st)]) == []
    assert sink.take_made() == [_g(11)]
    sink.close()


def test_host_volume_is_mounted_for_the_run_and_unmounted_after(volumes, glusterd, capsys):
    from streamsync.cli import main
    brick, primary, secondary, gs = volumes
    _workload(primary)
    address = f"{glusterd}::{gs}"

    def journaled_all() -> bool:  # the workload's last entry is in a published journal
        from gluster_lab import journaled
        return journaled(brick, "MKDIR", "x") is not None and bool(
            journaled(brick, "RENAME", "d0"))
    wait_for(journaled_all, "the workload's journals", timeout=60)
    # no mode given: the journals create every gfid of the brick, so they are replayed
    assert main(["replicate", "-q", brick, address]) in (0, 1)
    capsys.readouterr()
    assert not [line for line in open("/proc/mounts") if f"streamsync-{gs}-" in line]

    def equal() -> bool:
        if main(["replicate", "-q", brick, address]) != 0:
            return False
        return not verify(primary, secondary) and not _gfid_differences(primary, secondary)
    wait_for(equal, "the secondary volume to equal the primary", timeout=60, interval=1)
    # the state is keyed on the address, not on the private mount point
    from streamsync.target import default_state_path
    assert os.path.exists(default_state_path(brick, address))
    assert main(["replicate", brick, f"{glusterd}::nosuchvolume{os.getpid()}"]) == 2
    err = capsys.readouterr().err
    assert f"nosuchvolume{os.getpid()}" in err and "Traceback" not in err


def _volume_id(vol: str) -> str:
    out = run("gluster", "volume", "info", vol, "--xml").stdout
    import xml.etree.ElementTree as ET
    return ET.fromstring(out).findtext(".//volume/id")


def test_stimes_in_gsyncd_xattrs_keyed_by_the_real_volume_ids(volumes, glusterd, capsys):
    """--xattr-stime auto: the sync points land where gsyncd keeps them, under the
    uuids of the two real volumes, read from them (not typed by the user)."""
    from streamsync.cli import main
    from streamsync.state.xattr import unpack_stime
    brick, primary, secondary, gs = volumes
    os.makedirs(os.path.join(primary, "a", "b"))
    open(os.path.join(primary, "a", "b", "f"), "w").write("x")
    from gluster_lab import wait_journaled
    wait_journaled(brick, "CREATE", "f")
    gm = os.path.basename(brick)
    key = f"trusted.glusterfs.{_volume_id(gm)}.{_volume_id(gs)}.stime"
    address = f"{glusterd}::{gs}"
    assert main(["replicate", "-q", "--xattr-stime", "auto", brick, address]) == 0
    stime = unpack_stime(os.getxattr(brick, key))
    entry = unpack_stime(os.getxattr(brick, key.replace(".stime", ".entry_stime")))
    assert stime == entry and stime.sec > 1795000000
    assert not verify(primary, secondary, gfids=True)
    capsys.readouterr()
    assert main(["replicate", "-q", "--xattr-stime", "auto", brick, "/tmp"]) == 2
    assert "HOST::VOLUME" in capsys.readouterr().err


def test_the_tar_engine_into_a_volume(volumes, glusterd, capsys):
    from streamsync.cli import main
    brick, primary, secondary, gs = volumes
    _workload(primary)
    from gluster_lab import wait_journaled
    wait_journaled(brick, "RENAME", "d0")
    address = f"{glusterd}::{gs}"

    def equal() -> bool:
        assert main(["replicate", "-q", "--engine", "tar", brick, address]) in (0, 1)
        return not verify(primary, secondary, gfids=True)
    wait_for(equal, "the secondary (tar engine) to equal the primary", timeout=60, interval=1)
    st = os.lstat(os.path.join(secondary, "src", "app", "m4.py"))
    assert st.st_mode & 0o7777 == 0o4750  # set-id bits kept through tar
    assert os.path.getsize(os.path.join(secondary, "data", "raw", "blob.bin")) == 8 << 20


@pytest.mark.parametrize("engine,nodes", [("rsync", "127.0.0.1"), ("tar", "127.0.0.1"),
                                          ("rsync", "127.0.0.2,127.0.0.1")])
def test_user_at_host_volume_over_ssh(volumes, tmp_path, engine, nodes):
    """USER@HOST::VOLUME: streamsync serve on HOST (a private sshd on 127.0.0.1)
    mounts the volume there for the session, applies the ops, and rsync (or tar into
    serve's receiver) over the same ssh writes into that mount's .gfid/; it is
    unmounted when the session ends. With USER@HOST1,HOST2::VOLUME and nothing
    answering on HOST1 (127.0.0.2; issue 12, item 3) the worker goes on through
    HOST2's serve and mount, its data over HOST2's own ssh connection."""
    from test_remote import REMOTE_CMD, Sshd
    from streamsync.crawl.select import run_worker
    d = tmp_path / "sshd"
    d.mkdir()
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    sshd = Sshd(d)
    sshd.start()
    try:
        brick, primary, secondary, gs = volumes
        _workload(primary)
        from gluster_lab import wait_journaled
        wait_journaled(brick, "RENAME", "d0")
        target = f"{sshd.user}@{nodes}::{gs}"
        before = [line for line in open("/proc/mounts") if f"streamsync-{gs}-" in line]

        def equal() -> bool:
            s = run_worker(brick, target, options=sshd.options(), remote_command=REMOTE_CMD,
                           state_path=str(tmp_path / "state.sqlite"), retry_delay=0,
                           engine=engine, remote_kwargs={"backoff": (0.1, 0.5)})
            assert s.replica == target
            return not verify(primary, secondary, gfids=True)
        wait_for(equal, "the secondary (over ssh) to equal the primary", timeout=90,
                 interval=1)
        after = [line for line in open("/proc/mounts") if f"streamsync-{gs}-" in line]
        assert after == before == []  # serve's private mount is gone with the session
        # and so is the ssh master of every node it reached (one left behind once,
        # when the data engine named the unreachable node's control socket)
        wait_for(lambda: not _orphan_ssh_masters(), "no ssh master left", timeout=15)
        st = os.lstat(os.path.join(secondary, "src", "app", "m4.py"))
        assert st.st_mode & 0o7777 == 0o4750  # set-id bits kept over ssh too
    finally:
        sshd.stop()


def test_repair_puts_back_what_was_changed_on_the_secondary(volumes, glusterd, capsys):
    """issue 12, item 5: names deleted and files edited on the secondary behind
    replication's back come back, with the primary's gfids, through
    ``verify --repair BRICK HOST::VOLUME``; --dry-run changes nothing."""
    import shutil
    from streamsync.cli import main
    brick, primary, secondary, gs = volumes
    _workload(primary)
    from gluster_lab import wait_journaled
    wait_journaled(brick, "RENAME", "d0")
    address = f"{glusterd}::{gs}"

    def equal() -> bool:
        assert main(["replicate", "-q", brick, address]) in (0, 1)
        return not verify(primary, secondary, gfids=True)
    wait_for(equal, "the secondary to equal the primary", timeout=60, interval=1)
    s = lambda *p: os.path.join(secondary, *p)  # noqa: E731
    os.unlink(s("src", "app", "m5.py"))
    size = os.path.getsize(s("src", "app", "m6.py"))
    with open(s("src", "app", "m6.py"), "r+b") as fh:
        fh.write(b"X" * min(size, 16))
    os.chmod(s("src", "app", "m7.py"), 0o600)
    shutil.rmtree(s("deep"))
    drift = verify(primary, secondary, gfids=True)
    assert len(drift) >= 5
    capsys.readouterr()
    assert main(["verify", "--repair", "--dry-run", brick, address]) == 1
    assert verify(primary, secondary, gfids=True) == drift
    assert main(["verify", "--repair", brick, address]) == 0, capsys.readouterr().out
    assert "equal after the repair" in capsys.readouterr().out
    assert verify(primary, secondary, gfids=True) == []


_WRITER = r"""
import os, random, sys, time
m, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
os.makedirs(os.path.join(m, "churn", "sub"), exist_ok=True)
for i in range(n):
    p = os.path.join(m, "churn", f"f{i}")
    with open(p, "wb") as fh:
        fh.write(os.urandom(rng.randrange(1, 9000)))
    if i % 7 == 3:
        os.rename(p, os.path.join(m, "churn", "sub", f"moved{i}"))
    elif i % 11 == 5:
        os.unlink(p)
    elif i % 5 == 0 and i:
        with open(os.path.join(m, "churn", f"f{i - 5}"), "ab") as fh:
            fh.write(b"more\n")
    time.sleep(0.02)  # a steady stream of changes over several rollovers
"""


def test_stop_and_start_at_random_moments_resume_from_the_stime(volumes, glusterd, tmp_path):
    """issue 12, item 8: a worker into HOST::VOLUME stopped at random moments of a
    live workload, 10 times (SIGKILL or SIGTERM), resumes every time from its
    stime (a replay of the journals from it, never a full crawl), the private
    mounts of killed workers are cleaned up by the next one, and the secondary
    ends equal to the primary, gfids included. The seed is printed
    (STREAMSYNC_RESTART_SEED replays one)."""
    import random
    import signal
    brick, primary, secondary, gs = volumes
    address = f"{glusterd}::{gs}"
    seed = int(os.environ.get("STREAMSYNC_RESTART_SEED", random.randrange(1 << 30)))
    print(f"STREAMSYNC_RESTART_SEED={seed}")
    rng = random.Random(seed)
    state = str(tmp_path / "state.sqlite")
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, primary, "600"])
    cmd = [sys.executable, "-m", "streamsync", "replicate", "--follow", "--state", state,
           "-o", "change-interval=1", brick, address]
    lines: list[str] = []

    def mounts() -> list[str]:
        return [x for x in open("/proc/mounts") if f"streamsync-{gs}-" in x]

    try:
        for k in range(10):
            log = tmp_path / f"run{k}.err"
            with open(log, "w") as err:
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
                try:  # the moment of the stop is what is random here
                    proc.wait(timeout=rng.uniform(1.0, 4.0))
                    raise AssertionError(f"run {k} ended by itself: {log.read_text()[-500:]}")
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL if rng.random() < 0.6 else signal.SIGTERM)
                    proc.wait(timeout=120)
            lines += [x for x in log.read_text().splitlines() if "mode " in x]
            assert len(mounts()) <= 1  # a killed worker's mount, cleaned by the next run
        writer.wait(timeout=120)
        from gluster_lab import wait_journaled
        wait_journaled(brick, "CREATE", "f599")
        with open(tmp_path / "last.err", "w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            try:
                wait_for(lambda: not verify(primary, secondary, gfids=True),
                         "the secondary to equal the primary after the restarts", timeout=120,
                         interval=1)
            finally:
                proc.terminate()
                proc.wait(timeout=120)
        assert proc.returncode == 0, (tmp_path / "last.err").read_text()[-2000:]
    finally:
        if writer.poll() is None:
            writer.kill()
    # the first run had no stime (a hybrid crawl, or a replay of journals that make
    # every gfid); every later one resumed from the stime it found
    assert len(lines) == 10, lines
    assert all("mode replay: data stime" in x for x in lines[1:]), lines
    assert mounts() == []


def test_several_secondary_nodes_the_first_one_down(volumes, glusterd, capsys):
    """issue 12, item 3: HOST1,HOST2::VOLUME with HOST1 unreachable (nothing answers on
    127.0.0.2): the volume comes from HOST2, no Faulty, the stimes keyed as usual."""
    from streamsync.cli import main
    brick, primary, secondary, gs = volumes
    _workload(primary)
    from gluster_lab import wait_journaled
    wait_journaled(brick, "RENAME", "d0")
    address = f"127.0.0.2,{glusterd}::{gs}"

    def equal() -> bool:
        assert main(["replicate", "-q", "--xattr-stime", "auto", brick, address]) == 0
        return not verify(primary, secondary, gfids=True)
    wait_for(equal, "the secondary (its second node) to equal the primary", timeout=90,
             interval=1)
    key = f"trusted.glusterfs.{_volume_id(os.path.basename(brick))}.{_volume_id(gs)}.stime"
    assert os.getxattr(brick, key)
    capsys.readouterr()
    assert main(["status", "--json"]) in (0, 1)
    rows = [__import__("json").loads(x) for x in capsys.readouterr().out.splitlines()]
    mine = [r for r in rows if r.get("replica") == address]
    assert mine and mine[0]["worker_status"] != "Faulty"

