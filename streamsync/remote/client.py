"""The client side of a remote replica: :class:`RemoteReplica`.

It is a sink the dispatcher can use like a local
:class:`~streamsync.sinks.replica.ReplicaSink` (``apply_entries``,
``apply_meta``, ``is_data_target``, lookups), forwarding each call to a
``streamsync serve`` process started over ssh, and it provides the data engine
for the same host (rsync or tar over ssh).

ssh: ``<ssh-command> <ssh-options> -p <ssh-port> -oControlMaster=auto
-oControlPath=<ctl-dir>/<h>.sock -oControlPersist=...`` where ``<ctl-dir>`` is
a ``gsyncd-aux-ssh-`` temp directory and ``<h>`` the first 32 hex digits of
SHA-256 over ``SLAVE_HOST=<host>\\nSLAVE_RESOURCE_URL=<path>`` (also written
as ``<h>.mft``), as gsyncd names them. rsync's ``-e`` uses the same socket, so
data rides on the connection the ops use.

Connection loss: a request whose connection breaks (ssh died, ``serve``
killed, network down) is re-sent on a fresh connection after a backoff (0.5 s
doubling up to 30 s, ``connect_attempts`` tries). Every op is idempotent on
the replica side, so re-sending converges. When the attempts are exhausted,
:class:`ConnectionLost` is raised out of the dispatcher's batch: the stimes
are advanced only after a batch completes, so they never pass unapplied work.
Data transfers whose connection breaks (ssh exit status 255, rsync 12) are
retried the same way; if they still fail the batch fails (no stime advance).

>>> from streamsync.remote.spec import parse_replica
>>> from streamsync.options import Options
>>> r = RemoteReplica(parse_replica("geo@h:/r"), options=Options.from_pairs(["ssh-port=2222"]))
>>> r.ssh_argv()[-6:] == ['-p', '2222', '-oControlMaster=auto', '-oControlPath=' + r.control_path,
...                       '-oControlPersist=600', '-oServerAliveInterval=60']
True
>>> r.close()
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable, Iterable, Sequence

from ..errors import LockHeld, SyncError
from ..ops import EntryFailure, EntryOp, MetaFailure, MetaOp
from ..records import Stat, name_from_json, name_to_json
from ..sinks.engine import TransferResult
from .protocol import HELLO, PROTOCOL_VERSION, ProtocolError, decode_entry_failure, \
    decode_meta_failure, decode_stat, dumps, encode_entry_failure, encode_entry_ops, \
    encode_meta_ops, loads
from .spec import ReplicaSpec

__all__ = ["RemoteReplica", "ConnectionLost", "RemoteError", "SSH_FAILURE"]

log = logging.getLogger("streamsync.remote")

#: ssh's exit status when the connection itself failed
SSH_FAILURE = 255
#: exit statuses of a data engine over ssh that mean "the connection broke"
#: (rsync 12: protocol data stream cut; ssh 255) - retried on a new connection
CONNECTION_CODES = {"rsync": frozenset({12, SSH_FAILURE}), "tar": frozenset({SSH_FAILURE})}
_ENV_COMMAND = "STREAMSYNC_REMOTE_COMMAND"


class ConnectionLost(SyncError):
    """The remote replica could not be reached again within the retry budget."""


class RemoteError(SyncError):
    """The remote ``serve`` reported an error for a request."""


def control_hash(host: str, path: str) -> str:
    """gsyncd's control-socket name: 32 hex digits of SHA-256 over the host and URL.

    >>> len(control_hash("h", "/r"))
    32
    """
    return hashlib.sha256(f"SLAVE_HOST={host}\nSLAVE_RESOURCE_URL={path}".encode()).hexdigest()[:32]


class _Conn:
    """One ssh + serve process."""

    def __init__(self, proc: subprocess.Popen, pid: int | None) -> None:
        self.proc = proc
        self.remote_pid = pid
        self.stderr: collections.deque[str] = collections.deque(maxlen=50)
        self._t = threading.Thread(target=self._drain, daemon=True)
        self._t.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr.append(raw.decode("utf-8", "replace").rstrip())

    def kill(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


class RemoteReplica:
    """A replica on an ssh host, driven through ``streamsync serve`` (module docstring).

    The connection is opened lazily on the first request, so a passive worker
    holds no remote lock; :meth:`disconnect` drops it (the worker calls it
    when it turns passive).
    """

    #: test hook: ``before_request(self, op)`` runs before each request is sent
    before_request: Callable[..., Any] | None = None

    def __init__(self, spec: ReplicaSpec, *, options: Any, stop: threading.Event | None = None,
                 remote_command: str | None = None, lock_name: str | None = None,
                 connect_attempts: int = 8, backoff: tuple[float, float] = (0.5, 30.0),
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        if not spec.remote:
            raise ValueError("RemoteReplica needs a [user@]host:/path replica")
        #: the secondary nodes (``USER@HOST1,HOST2::VOLUME``), tried in turn; ``spec``
        #: names the one in use
        self.hosts = [h for h in (spec.host or "").split(",") if h] if spec.volume \
            else [spec.host or ""]
        self.spec = spec._replace(host=self.hosts[0])
        self.options = options
        self.stop = stop
        self.remote_command = (remote_command or os.environ.get(_ENV_COMMAND)
                               or "streamsync")
        self.lock_name = lock_name
        self.connect_attempts = max(1, connect_attempts)
        self.backoff = backoff
        self._sleep = sleep
        self._ctl_dir = tempfile.mkdtemp(prefix="gsyncd-aux-ssh-")
        h = control_hash(self.spec.host or "", spec.path)
        with open(os.path.join(self._ctl_dir, h + ".mft"), "w") as fh:
            fh.write(f"SLAVE_HOST={self.spec.host}\nSLAVE_RESOURCE_URL={spec.path}\n")
        self._conn: _Conn | None = None
        self._lock = threading.RLock()
        self._next_id = 0
        self.reconnects = 0
        self.remote_pid: int | None = None
        self._targets: set[str] = set()
        self._made: dict[str, None] = {}
        #: the replica root the server opened (for a volume: its mount point there)
        self.remote_root: str | None = None

    # ------------------------------------------------------------- ssh
    @property
    def control_path(self) -> str:
        """The ssh ControlMaster socket of the node in use (one per node: a socket
        made for one host must never carry a session to another)."""
        return os.path.join(self._ctl_dir,
                            control_hash(self.spec.host or "", self.spec.path) + ".sock")

    def _next_host(self) -> None:
        """Move on to the next secondary node (after one could not be reached)."""
        i = (self.hosts.index(self.spec.host) + 1) % len(self.hosts)
        log.warning("%s: %s is unreachable; trying %s", self.spec.display, self.spec.host,
                    self.hosts[i])
        self.spec = self.spec._replace(host=self.hosts[i])
        self.remote_root = None  # that node mounts the volume for its own session

    def _opt(self, name: str, default: Any) -> Any:
        try:
            v = self.options.get(name)
        except Exception:
            return default
        return default if v is None else v

    def control_options(self) -> list[str]:
        timeout = int(self._opt("slave-timeout", 120))
        return ["-oControlMaster=auto", f"-oControlPath={self.control_path}",
                "-oControlPersist=600", f"-oServerAliveInterval={max(1, timeout // 2)}"]

    def ssh_argv(self) -> list[str]:
        """ssh words up to (not including) the target."""
        return [*shlex.split(self._opt("ssh-command", "ssh")),
                *shlex.split(self._opt("ssh-options", "") or ""),
                "-p", str(self._opt("ssh-port", 22)), *self.control_options()]

    def data_options(self) -> Any:
        """Options for the data engines: the control socket added to the ssh words."""
        extra = " ".join(shlex.quote(w) for w in self.control_options())
        return self.options.replace(
            ssh_options=f"{self._opt('ssh-options', '')} {extra}".strip(),
            ssh_options_tar=f"{self._opt('ssh-options-tar', '')} {extra}".strip())

    def data_destination(self) -> str:
        """Where data goes: the replica path, or the volume's mount on that host
        (known once connected: serve mounts it for the session)."""
        if self.spec.volume:
            if self.remote_root is None:
                self.connect()
            return f"{self.spec.target}:{self.remote_root}"
        return f"{self.spec.target}:{self.spec.path}"

    def data_engine(self, name: str, source: str) -> "ResilientEngine":
        """rsync or tar from the brick ``source`` to this host, over the same ssh (made
        again for another node when the one in use could not be reached)."""
        return ResilientEngine(lambda: self._raw_engine(name, source), self)

    def _raw_engine(self, name: str, source: str) -> Any:
        from ..sinks.rsync import RsyncEngine
        from ..sinks.tar import TarEngine
        # the destination first: reaching it may move on to another node, whose
        # control socket the options must then name
        dest = self.data_destination()
        opts = self.data_options()
        if name == "rsync":
            eng: Any = RsyncEngine(source, dest, opts, gfid_dest=bool(self.spec.volume))
        elif name in ("tar", "tarssh"):
            # into a volume: serve's receiver on that host writes .gfid/<gfid> of the
            # mount the session made (data_destination names it)
            eng = TarEngine(source, dest, opts, remote_command=self.remote_command)
        else:
            raise ValueError(f"unknown data engine {name!r}")
        return eng

    # ------------------------------------------------------ connection
    def _connect(self) -> _Conn:
        cmd = f"{self.remote_command} serve"
        argv = [*self.ssh_argv(), self.spec.target or "", cmd]
        log.debug("connecting: %s", shlex.join(argv))
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        except OSError as exc:
            raise ConnectionLost(f"cannot run ssh: {exc}") from exc
        conn = _Conn(proc, None)
        hello: dict[str, Any] = {"hello": HELLO, "version": PROTOCOL_VERSION}
        if self.spec.volume:
            hello["volume"] = self.spec.volume
        else:
            hello["replica"] = self.spec.path
        if self.lock_name:
            hello["lock"] = self.lock_name
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(dumps(hello))
            proc.stdin.flush()
            line = proc.stdout.readline()
        except OSError:
            line = b""
        if not line:
            conn.kill()
            err = "; ".join(list(conn.stderr)[-5:])
            raise _Broken(f"{self.spec.display}: connection failed "
                          f"(ssh exit {proc.returncode}){': ' + err if err else ''}")
        try:
            reply = loads(line)
        except ProtocolError as exc:
            conn.kill()
            raise ProtocolError(f"{self.spec.display}: the remote command "
                                f"{self.remote_command!r} does not speak streamsync: {exc}") from None
        if not reply.get("ok"):
            conn.kill()
            if reply.get("lock_held"):
                raise LockHeld(f"{self.spec.display}: {reply.get('error')}")
            raise ProtocolError(f"{self.spec.display}: handshake refused: {reply.get('error')}")
        conn.remote_pid = reply.get("pid")
        self.remote_pid = conn.remote_pid
        self.remote_root = reply.get("root")
        log.info("connected to %s (serve pid %s, protocol %s)", self.spec.display,
                 conn.remote_pid, reply.get("version"))
        return conn

    def connect(self) -> None:
        """Open the connection now (it is otherwise opened by the first request)."""
        self.call("ping")

    def disconnect(self) -> None:
        """Close the ops connection (the remote releases its lock)."""
        with self._lock:
            if self._conn is not None:
                try:
                    assert self._conn.proc.stdin is not None
                    self._conn.proc.stdin.write(dumps({"id": 0, "op": "close"}))
                    self._conn.proc.stdin.flush()
                except OSError:
                    pass
                self._conn.kill()
                self._conn = None

    def close(self) -> None:
        self.disconnect()
        for host in self.hosts:  # the master of every node this session reached
            spec = self.spec._replace(host=host)
            path = os.path.join(self._ctl_dir, control_hash(host, spec.path) + ".sock")
            if os.path.exists(path):
                subprocess.run([*shlex.split(self._opt("ssh-command", "ssh")),
                                f"-oControlPath={path}", "-O", "exit", spec.target or ""],
                               capture_output=True, timeout=15)
        shutil.rmtree(self._ctl_dir, ignore_errors=True)

    def _with_retries(self, fn: Callable[[], Any]) -> Any:
        delay, cap = self.backoff
        last: Exception | None = None
        for attempt in range(1, self.connect_attempts + 1):
            if attempt > 1:
                if self.stop is not None and self.stop.is_set():
                    break
                log.warning("%s: %s; retrying in %.1f s (attempt %d/%d)", self.spec.display,
                            last, delay, attempt, self.connect_attempts)
                self._sleep(delay)
                delay = min(cap, delay * 2)
            try:
                return fn()
            except _Broken as exc:
                last = exc
                if len(self.hosts) > 1:
                    with self._lock:
                        if self._conn is not None:
                            self._conn.kill()
                            self._conn = None
                        self._next_host()
        raise ConnectionLost(f"{self.spec.display}: connection lost and not re-established "
                             f"after {self.connect_attempts} attempts: {last}")

    def _once(self, op: str, args: Any) -> Any:
        if self._conn is None:
            if self.remote_pid is not None:
                self.reconnects += 1
            self._conn = self._connect()
        conn = self._conn
        if self.before_request is not None:
            self.before_request(op)
        self._next_id += 1
        rid = self._next_id
        try:
            assert conn.proc.stdin is not None and conn.proc.stdout is not None
            conn.proc.stdin.write(dumps({"id": rid, "op": op, "args": args}))
            conn.proc.stdin.flush()
            line = conn.proc.stdout.readline()
        except OSError as exc:
            line = b""
            err: Any = exc
        else:
            err = "connection closed"
        if not line:
            conn.kill()
            self._conn = None
            raise _Broken(f"{op}: {err}")
        reply = loads(line)
        if reply.get("id") != rid:
            conn.kill()
            self._conn = None
            raise ProtocolError(f"{self.spec.display}: reply {reply.get('id')} to request {rid}")
        if not reply.get("ok"):
            raise RemoteError(f"{self.spec.display}: {op} failed on the replica: "
                              f"{reply.get('type')}: {reply.get('error')}")
        return reply.get("result")

    def call(self, op: str, args: Any = None) -> Any:
        """One request, re-sent on a fresh connection if the connection breaks."""
        with self._lock:
            return self._with_retries(lambda: self._once(op, args))

    # ------------------------------------------------------------- sink
    def apply_entries(self, ops: Iterable[EntryOp], *,
                      waiting: Iterable[EntryFailure] = ()) -> list[EntryFailure]:
        """Apply on the replica; the reply also names the gfids that became data
        targets, which :meth:`is_data_target` then answers without a round trip.
        ``waiting``: as :meth:`ReplicaSink.apply_entries` (held on the server)."""
        ops = list(ops)
        if not ops:
            return []
        req: dict[str, Any] = {"ops": encode_entry_ops(ops), "targets": True}
        waiting = list(waiting)
        if waiting:
            req["waiting"] = [encode_entry_failure(f) for f in waiting]
        r = self.call("apply_entries", req)
        self._targets = set(r.get("targets") or ())
        made = r.get("made")
        if isinstance(made, list):
            self._made.update(dict.fromkeys(g for g in made if isinstance(g, str)))
        return [decode_entry_failure(d) for d in r["failures"]]

    def take_made(self) -> list[str]:
        """As :meth:`ReplicaSink.take_made`, from the server's replies."""
        made, self._made = list(self._made), {}
        return made

    def apply_meta(self, ops: Iterable[MetaOp]) -> list[MetaFailure]:
        ops = list(ops)
        if not ops:
            return []
        return [decode_meta_failure(d) for d in self.call("apply_meta", encode_meta_ops(ops))]

    def is_data_target(self, gfid: str) -> bool:
        if gfid in self._targets:
            return True
        return bool(self.call("is_data_target", [gfid])[0])

    def data_targets(self, gfids: Sequence[str]) -> list[bool]:
        """:meth:`is_data_target` of each gfid: the last entry reply answers most, the
        rest go in one request."""
        ask = [g for g in gfids if g not in self._targets]
        told = dict(zip(ask, self.call("is_data_target", ask))) if ask else {}
        return [g in self._targets or bool(told.get(g)) for g in gfids]

    def has_handle(self, gfid: str) -> bool:
        return bool(self.call("has_handle", [gfid])[0])

    def lstat(self, gfid: str) -> Stat | None:
        return decode_stat(self.call("lstat", gfid))

    def entry_gfid(self, pgfid: str, bname: str) -> str | None:
        return self.call("entry_gfid", [pgfid, name_to_json(bname)])

    def dir_entry(self, gfid: str) -> tuple[str, str] | None:
        r = self.call("dir_entry", gfid)
        return None if r is None else (r[0], name_from_json(r[1]))

    def ping(self) -> str:
        return self.call("ping")

    def __repr__(self) -> str:
        return f"RemoteReplica({self.spec.display!r})"


class _Broken(Exception):
    """Internal: the connection broke (retriable)."""


class ResilientEngine:
    """A data engine whose connection failures (:data:`CONNECTION_CODES`) are
    retried with backoff on the same schedule as the ops; other statuses pass
    through unchanged (partial codes go to the dispatcher's retries)."""

    def __init__(self, engine: Any, remote: RemoteReplica) -> None:
        # an engine, or how to make one (then made again for another node)
        self._make = None if hasattr(engine, "transfer") else engine
        self.engine = engine if self._make is None else self._make()
        self._host = remote.spec.host
        self.remote = remote
        self.name = self.engine.name

    def is_partial(self, code: int) -> bool:
        return self.engine.is_partial(code)

    def transfer(self, gfids: Sequence[str]) -> TransferResult:
        holder: list[TransferResult] = []

        def attempt() -> TransferResult:
            if self._make is not None and self.remote.spec.host != self._host:
                # another node now: an engine over its own ssh
                self.engine, self._host = self._make(), self.remote.spec.host
            elif self.remote.spec.volume:  # a reconnect mounts the volume somewhere else
                self.engine.dest = self.remote.data_destination()
            res = self.engine.transfer(gfids)
            if res.returncode in CONNECTION_CODES.get(self.name, {SSH_FAILURE}):
                raise _Broken(f"{self.name} over ssh: exit {res.returncode}: "
                              f"{res.stderr.strip()[-300:]}")
            holder.append(res)
            return res

        return self.remote._with_retries(attempt)
