"""Remote replicas: the serve protocol, and replication through a real sshd on
loopback (a key made for the test, a non-default port), including a connection
dropped mid-batch and a connection lost for good."""

from __future__ import annotations

import io
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_worker_brick import Brick

from streamsync.crawl.select import run_worker
from streamsync.errors import ConfigError
from streamsync.ops import EntryOp
from streamsync.options import Options
from streamsync.records import ROOT_GFID, Stime
from streamsync.remote.client import ConnectionLost, RemoteReplica
from streamsync.remote.protocol import PROTOCOL_VERSION, dumps, loads
from streamsync.remote.server import serve
from streamsync.remote.spec import parse_replica
from streamsync.state import SqliteState
from streamsync.status import status_file_name
from streamsync.verify import verify, verify_manifest

DEMO = Path(__file__).parent.parent / "examples" / "demo-brick"
SSHD = "/usr/sbin/sshd"
#: streamsync on the "remote" host (sshd gives it a clean environment: its state
#: and locks go to this test run's directory, not to the home directory)
REMOTE_CMD = (f"env XDG_STATE_HOME={shlex.quote(os.environ.get('XDG_STATE_HOME', '/tmp'))} "
              f"{sys.executable} -m streamsync")
G1 = "5b1c2d3e-0000-4000-8000-00000000000a"


@pytest.fixture(autouse=True)
def _state_home(tmp_path, monkeypatch):
    """Master-side working directories of remote workers go under the test's tmp."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


# ------------------------------------------------------------ no ssh needed
def test_replica_addresses():
    assert parse_replica("/a/b").remote is False
    assert parse_replica("./x:y").remote is False
    s = parse_replica("backup:/srv/r")
    assert (s.remote, s.user, s.host, s.path, s.target) == (True, None, "backup", "/srv/r",
                                                             "backup")
    assert parse_replica("u@[fe80::1]:/r").display == "u@[fe80::1]:/r"
    with pytest.raises(ConfigError):
        parse_replica("host:relative/path")


def _session(root, *msgs, hello=None):
    hello = hello or {"hello": "streamsync", "version": PROTOCOL_VERSION, "replica": str(root)}
    out = io.BytesIO()
    rc = serve(io.BytesIO(b"".join(dumps(m) for m in (hello, *msgs))), out)
    return rc, [loads(line) for line in out.getvalue().splitlines()]


def test_serve_applies_ops_like_the_local_sink(tmp_path):
    op = EntryOp("MKDIR", G1, ROOT_GFID, "a dir\nwith newline", mode=0o40755, uid=0, gid=0)
    rc, replies = _session(tmp_path / "r", {"id": 1, "op": "apply_entries", "args": [op.to_dict()]},
                           {"id": 2, "op": "dir_entry", "args": G1},
                           {"id": 3, "op": "is_data_target", "args": [G1]},
                           {"id": 4, "op": "close"})
    assert rc == 0
    hello, r1, r2, r3, r4 = replies
    assert hello["ok"] and hello["version"] == PROTOCOL_VERSION and hello["pid"] == os.getpid()
    assert r1 == {"id": 1, "ok": True, "result": []}
    assert r2["result"] == [ROOT_GFID, "a dir\nwith newline"]
    assert r3["result"] == [False] and r4["ok"]
    assert os.path.isdir(tmp_path / "r" / "a dir\nwith newline")


def test_serve_names_new_data_targets_with_the_entry_reply(tmp_path):
    g2 = "5b1c2d3e-0000-4000-8000-00000000000b"
    ops = [EntryOp("MKDIR", G1, ROOT_GFID, "d", mode=0o40755, uid=0, gid=0),
           EntryOp("CREATE", g2, G1, "f", mode=0o100644, uid=0, gid=0)]
    rc, (_, r1, r2) = _session(
        tmp_path / "r", {"id": 1, "op": "apply_entries",
                         "args": {"ops": [o.to_dict() for o in ops], "targets": True}},
        {"id": 2, "op": "apply_entries",
         "args": {"ops": [EntryOp("UNLINK", g2, G1, "f").to_dict()], "targets": True}})
    assert r1["result"] == {"failures": [], "targets": [g2], "made": []}
    assert r2["result"] == {"failures": [], "targets": [], "made": []}  # computed after the ops


def test_serve_holds_ops_behind_waiting_rows_and_names_files_made_from_a_stat(tmp_path):
    """The client sends the ledger's open rows with its ops (an op that depends on
    one is held on the server too), and the reply names the files a LINK made
    from a stat (their bytes are owed: the dispatcher sends them)."""
    g2, g3 = "5b1c2d3e-0000-4000-8000-00000000000b", "5b1c2d3e-0000-4000-8000-00000000000c"
    st = {"uid": 0, "gid": 0, "mode": 0o100644, "atime": 0, "mtime": 0}
    failed = EntryOp("CREATE", g2, ROOT_GFID, "x", mode=0o100644, uid=0, gid=0)
    later = EntryOp("RENAME", g2, ROOT_GFID, "x", pgfid1=ROOT_GFID, bname1="y")
    link = dict(EntryOp("LINK", g3, ROOT_GFID, "l").to_dict(), stat=st)
    rc, (_, r1, r2) = _session(
        tmp_path / "r",
        {"id": 1, "op": "apply_entries",
         "args": {"ops": [later.to_dict(), link], "targets": True,
                  "waiting": [{"entry": failed.to_dict(), "errno": 28}]}},
        {"id": 2, "op": "apply_entries",
         "args": {"ops": [later.to_dict()], "waiting": [{"entry": failed.to_dict(),
                                                        "errno": "x"}]}})
    [held] = r1["result"]["failures"]
    assert held["errno"] == 28 and held["entry"]["op"] == "RENAME"
    assert r1["result"]["made"] == [g3] and os.path.isfile(tmp_path / "r" / "l")
    assert not r2["ok"] and "errno" in r2["error"]


def test_serve_refuses_other_versions_and_garbage(tmp_path):
    rc, (reply,) = _session(tmp_path, hello={"hello": "streamsync", "version": 99,
                                             "replica": str(tmp_path)})
    assert rc == 2 and not reply["ok"] and "version 99" in reply["error"]
    out = io.BytesIO()
    assert serve(io.BytesIO(b"GET / HTTP/1.0\n"), out) == 2
    assert "not a protocol line" in loads(out.getvalue())["error"]
    rc, (reply,) = _session(tmp_path, hello={"hello": "streamsync", "version": PROTOCOL_VERSION,
                                             "replica": "relative"})
    assert rc == 2 and "absolute" in reply["error"]
    # errors in a request are answered, the session goes on
    rc, replies = _session(tmp_path / "r", {"id": 1, "op": "nope"}, {"id": 2, "op": "ping"})
    assert replies[1]["ok"] is False and "unknown operation" in replies[1]["error"]
    assert replies[2]["result"] == "pong"


def test_serve_cli_holds_the_replica_lock(tmp_path):
    root = tmp_path / "r"
    hello = dumps({"hello": "streamsync", "version": PROTOCOL_VERSION, "replica": str(root),
                   "lock": "brick1"})
    first = subprocess.Popen([sys.executable, "-m", "streamsync", "serve"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    first.stdin.write(hello)
    first.stdin.flush()
    assert loads(first.stdout.readline())["ok"]
    second = subprocess.run([sys.executable, "-m", "streamsync", "serve"], input=hello,
                            capture_output=True, timeout=30)
    reply = loads(second.stdout.splitlines()[0])
    assert reply["ok"] is False and reply["lock_held"] is True
    first.stdin.close()
    assert first.wait(30) == 0


# --------------------------------------------------------------- real sshd
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    def __init__(self, d: Path) -> None:
        self.dir = d
        self.port = _free_port()
        for name in ("host", "key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                           check=True)
        shutil.copy(d / "key.pub", d / "authorized_keys")
        (d / "sshd_config").write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {d}/host
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
""")
        import pwd
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.ssh_options = (f"-i {d}/key -oStrictHostKeyChecking=no -oUserKnownHostsFile=/dev/null "
                            f"-oBatchMode=yes -oLogLevel=ERROR -oConnectTimeout=5")

    def start(self) -> None:
        subprocess.run([SSHD, "-f", str(self.dir / "sshd_config"), "-E", str(self.dir / "log")],
                       check=True, timeout=30)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("sshd did not listen")

    def stop(self) -> None:
        try:
            pid = int((self.dir / "sshd.pid").read_text())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)

    def options(self, *extra: str) -> Options:
        return Options.from_pairs([f"ssh-port={self.port}", f"ssh-options={self.ssh_options}",
                                   f"ssh-options-tar={self.ssh_options}", *extra])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if not os.path.exists(SSHD) or shutil.which("ssh") is None:
        pytest.skip("openssh-server/client not installed")
    if os.geteuid() != 0:
        pytest.skip("a private sshd needs root here (privilege separation directory)")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    d = tmp_path_factory.mktemp("sshd")
    srv = Sshd(d)
    try:
        srv.start()
    except (subprocess.SubprocessError, RuntimeError) as exc:
        pytest.skip(f"sshd could not start: {exc}")
    yield srv
    srv.stop()


def test_ssh_replication_of_a_real_brick(sshd, tmp_path):
    brick = tmp_path / "demo"
    brick.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xzf",
                    str(DEMO / "demo.tar.gz"), "-C", str(brick)], check=True)
    rep = tmp_path / "remote-rep"
    target = f"{sshd.user}@127.0.0.1:{rep}"
    state = tmp_path / "state" / "w.sqlite"
    state.parent.mkdir()
    aux_before = {p for p in os.listdir("/tmp") if p.startswith("gsyncd-aux-ssh-")}
    s = run_worker(str(brick), target, options=sshd.options(), state_path=str(state),
                   register_time=1795470720, remote_command=REMOTE_CMD, retry_delay=0)
    assert s.modes == ("xsync", "live") and s.open_failures == 0
    assert s.replica == target
    # equal, the two fifos included (our hybrid crawl journals fifos; gsyncd's does not)
    assert verify_manifest(DEMO / "demo.manifest.jsonl", rep) == []
    import json
    f = json.loads((state.parent / status_file_name(str(brick))).read_text())
    assert f["slave_node"] == "127.0.0.1" and f["last_synced"] == 1795470720
    # the control socket directory is gone after the run
    assert {p for p in os.listdir("/tmp") if p.startswith("gsyncd-aux-ssh-")} <= aux_before


def _wait_dead(pid: int, timeout: float = 30.0) -> None:
    """Until ``pid`` (on this host: ssh to loopback) has exited: its pidfd turns
    readable then (a zombie counts: it holds no descriptor any more)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:  # gone already
        return
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    assert ready, f"process {pid} still runs {timeout} s after SIGKILL"


def _journaled_brick(tmp_path, T, n=4):
    b = Brick(tmp_path / "brick")
    for i in range(n):
        b.mkdir(f"d{i}")
        b.create(f"d{i}/f", (b"data %d " % i) * 1000)
        b.symlink("f", f"d{i}/s")
        b.rollover(T + 15 * (i + 1))
    b.rollover(T + 15 * (n + 1))
    return b


def test_ssh_tar_engine(sshd, tmp_path):
    T = int(time.time()) - 100000
    b = _journaled_brick(tmp_path, T)
    rep = tmp_path / "rep"
    st = SqliteState(tmp_path / "s.sqlite")
    st.set_data_stime((T + 14, 0))  # the start of the HTIME index
    s = run_worker(b.root, f"127.0.0.1:{rep}", state=st, options=sshd.options(), engine="tar",
                   register_time=T + 60, remote_command=REMOTE_CMD, retry_delay=0)
    assert s.modes == ("history", "live")
    assert verify(b.root, rep) == []
    st.close()


def test_dropped_connection_mid_batch_is_resent(sshd, tmp_path, monkeypatch):
    T = int(time.time()) - 100000
    b = _journaled_brick(tmp_path, T)
    rep = tmp_path / "rep"
    st = SqliteState(tmp_path / "s.sqlite")
    st.set_data_stime((T + 14, 0))  # the start of the HTIME index
    calls = []
    seen = {}

    def hook(self, op):
        seen["obj"] = self
        if op == "apply_entries":
            calls.append(op)
            if len(calls) == 3:  # the third journal of the (single) batch
                os.kill(self.remote_pid, signal.SIGKILL)  # the serve process dies
                _wait_dead(self.remote_pid)

    monkeypatch.setattr(RemoteReplica, "before_request", hook)
    s = run_worker(b.root, f"127.0.0.1:{rep}", state=st, options=sshd.options(),
                   register_time=T + 75, remote_command=REMOTE_CMD, retry_delay=0,
                   remote_kwargs={"backoff": (0.1, 1.0)})
    assert seen["obj"].reconnects == 1
    assert s.modes == ("history", "live") and s.open_failures == 0
    assert s.data_stime == Stime(T + 59, 0)
    assert verify(b.root, rep) == []
    st.close()


def test_connection_lost_for_good_never_advances_stime(sshd, tmp_path, monkeypatch):
    T = int(time.time()) - 100000
    b = _journaled_brick(tmp_path, T)
    rep = tmp_path / "rep"
    st = SqliteState(tmp_path / "s.sqlite")
    st.set_data_stime((T + 14, 0))  # the start of the HTIME index
    calls = []

    def hook(self, op):
        if op == "apply_entries":
            calls.append(op)
            if len(calls) == 3:
                sshd.stop()  # no new connections
                subprocess.run(["ssh", f"-oControlPath={self.control_path}", "-O", "exit",
                                "127.0.0.1"], capture_output=True, timeout=15)

    monkeypatch.setattr(RemoteReplica, "before_request", hook)
    opts = sshd.options("changelog-batch-size=1")  # one journal per batch
    try:
        with pytest.raises(ConnectionLost):
            run_worker(b.root, f"127.0.0.1:{rep}", state=st, options=opts,
                       register_time=T + 75, remote_command=REMOTE_CMD, retry_delay=0,
                       remote_kwargs={"backoff": (0.1, 0.2), "connect_attempts": 3})
        # two journals were applied completely; the third was not: stime stops before it
        assert st.data_stime() == Stime(T + 29, 0)
        assert f"CHANGELOG.{T + 45}" not in st.done_names()
        assert st.status()["worker_status"] == "Faulty"
    finally:
        sshd.start()
    monkeypatch.setattr(RemoteReplica, "before_request", None)
    s = run_worker(b.root, f"127.0.0.1:{rep}", state=st, options=opts, register_time=T + 75,
                   remote_command=REMOTE_CMD, retry_delay=0)
    assert s.data_stime == Stime(T + 59, 0)
    assert verify(b.root, rep) == []
    st.close()


def test_data_transfers_cut_by_the_connection_are_retried(tmp_path):
    from streamsync.remote.client import ResilientEngine
    from streamsync.sinks.engine import TransferResult

    class Flaky:
        name = "rsync"

        def __init__(self, codes):
            self.codes = list(codes)
            self.calls = 0

        def is_partial(self, code):
            return code in (23, 24)

        def transfer(self, gfids):
            self.calls += 1
            return TransferResult(self.codes.pop(0), "ssh: connection reset", len(gfids))

    rr = RemoteReplica(parse_replica("h:/r"), options=Options(), connect_attempts=3,
                       backoff=(0.0, 0.0), sleep=lambda s: None)
    try:
        eng = Flaky([255, 12, 0])
        assert ResilientEngine(eng, rr).transfer([G1]).returncode == 0 and eng.calls == 3
        eng = Flaky([23])  # partial: not a connection problem, the dispatcher retries it
        assert ResilientEngine(eng, rr).transfer([G1]).returncode == 23 and eng.calls == 1
        eng = Flaky([255, 255, 255])
        with pytest.raises(ConnectionLost, match="3 attempts"):
            ResilientEngine(eng, rr).transfer([G1])
    finally:
        rr.close()


def test_serve_root_confines_the_replica_paths(tmp_path):
    hello = {"hello": "streamsync", "version": PROTOCOL_VERSION, "replica": str(tmp_path / "x")}
    out = io.BytesIO()
    assert serve(io.BytesIO(dumps(hello)), out, allowed_root=str(tmp_path / "served")) == 2
    assert "outside the served root" in loads(out.getvalue())["error"]
    assert not (tmp_path / "x").exists()
    hello["replica"] = str(tmp_path / "served" / "ok")
    out = io.BytesIO()
    assert serve(io.BytesIO(dumps(hello)), out, allowed_root=str(tmp_path / "served")) == 0
    assert loads(out.getvalue())["ok"]
