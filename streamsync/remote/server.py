"""The ``streamsync serve`` loop: apply a client's ops to a local replica.

Started on the replica host over ssh (``streamsync serve``), it reads the
handshake and then one request per line on stdin and answers each on stdout
(:mod:`~streamsync.remote.protocol`). The work is done by a
:class:`~streamsync.sinks.replica.ReplicaSink` on the path the client names;
the replica's worker lock (``.glusterfs/streamsync/<lock>.lock``) is held for
the life of the connection, so two workers never write one replica for the
same brick. Anything else (logs) goes to stderr: stdout is the protocol.

>>> import io, tempfile
>>> from streamsync.remote.protocol import dumps, loads
>>> root = tempfile.mkdtemp()
>>> req = dumps({"hello": "streamsync", "version": 1, "replica": root}) + dumps({"id": 1, "op": "ping"})
>>> out = io.BytesIO()
>>> serve(io.BytesIO(req), out)
0
>>> [loads(l)["ok"] for l in out.getvalue().splitlines()]
[True, True]
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from typing import Any, BinaryIO

from ..errors import LockHeld
from ..ops import EntryFailure, FailureInfo
from .confine import open_confined
from .protocol import HELLO, MAX_LINE, PROTOCOL_VERSION, ProtocolError, decode_entry_ops, \
    decode_meta_ops, dumps, encode_entry_failure, encode_meta_failure, encode_stat, loads

__all__ = ["serve", "open_replica"]

log = logging.getLogger("streamsync.serve")

#: entry ops that never leave a regular-file handle behind
_NOT_DATA = frozenset({"MKDIR", "RMDIR", "UNLINK", "SYMLINK"})
_LOCK_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}\Z")


def _send(out: BinaryIO, msg: Any) -> None:
    out.write(dumps(msg))
    out.flush()


def _readline(inp: BinaryIO) -> bytes | None:
    line = inp.readline(MAX_LINE)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise ProtocolError("request line too long or truncated")
    return line


def _gfids(args: Any) -> list[str]:
    if not isinstance(args, list) or not all(isinstance(g, str) for g in args):
        raise ProtocolError("expected a list of gfids")
    return args


def _text(args: Any) -> str:
    if not isinstance(args, str):
        raise ProtocolError("expected a gfid")
    return args


def _waiting(value: Any) -> list[EntryFailure]:
    """The ``waiting`` failures of an apply_entries request (validated like ops)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(d, dict) for d in value):
        raise ProtocolError("waiting: expected a list of entry failures")
    ops = decode_entry_ops([d.get("entry") for d in value])
    out = []
    for op, d in zip(ops, value):
        err = d.get("errno")
        if type(err) is not int or not 0 < err < 4096:
            raise ProtocolError("waiting: bad errno")
        out.append(EntryFailure(op, err, FailureInfo()))
    return out


def _targets(sink: Any, gfids: list[str]) -> list[bool]:
    """``is_data_target`` of each gfid (all at once where the sink can: a volume)."""
    many = getattr(sink, "data_targets", None)
    return list(many(gfids)) if many is not None else [sink.is_data_target(g) for g in gfids]


def _handle(sink: Any, op: Any, args: Any) -> Any:
    if op == "apply_entries":
        if isinstance(args, dict):  # {"ops": [...], "targets": true}: also say which
            ops = decode_entry_ops(args.get("ops"))  # gfids are now data targets
            waiting = _waiting(args.get("waiting"))
            fails = [encode_entry_failure(f) for f in sink.apply_entries(ops, waiting=waiting)]
            out: dict[str, Any] = {"failures": fails}
            if args.get("targets"):
                cand = list(dict.fromkeys(o.gfid for o in ops if o.op not in _NOT_DATA))
                out["targets"] = [g for g, t in zip(cand, _targets(sink, cand)) if t]
            out["made"] = sink.take_made()
            return out
        return [encode_entry_failure(f) for f in sink.apply_entries(decode_entry_ops(args))]
    if op == "apply_meta":
        return [encode_meta_failure(f) for f in sink.apply_meta(decode_meta_ops(args))]
    if op == "is_data_target":
        return [bool(t) for t in _targets(sink, list(_gfids(args)))]
    if op == "has_handle":
        return [bool(sink.has_handle(g)) for g in _gfids(args)]
    if op == "lstat":
        return encode_stat(sink.lstat(_text(args)))
    if op == "entry_gfid":
        from ..records import name_from_json
        if not isinstance(args, list) or len(args) != 2 or not isinstance(args[0], str) \
                or not isinstance(args[1], (str, dict)):
            raise ProtocolError("entry_gfid expects [pgfid, name]")
        return sink.entry_gfid(args[0], name_from_json(args[1]))
    if op == "dir_entry":
        r = sink.dir_entry(_text(args))
        if r is None:
            return None
        from ..records import name_to_json
        return [r[0], name_to_json(r[1])]
    if op == "ping":
        return "pong"
    raise ProtocolError(f"unknown operation {op!r}")


_VOLUME_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}\Z")


def _volume_state_dir(volume: str) -> str:
    """Where this host keeps the locks of workers feeding ``volume``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                            "state")
    where = os.path.join(base, "streamsync", f"volume-{volume}")
    os.makedirs(where, exist_ok=True)
    return where


def _open_volume(volume: Any, allowed_root: str | None,
                 mounts: contextlib.ExitStack) -> tuple[Any, str]:
    """Mount the GlusterFS volume ``volume`` of this host for the session (as
    gsyncd's secondary side does) and open its sink; ``(sink, mount point)``."""
    from ..secondary.volume_mount import mounted_volume
    from ..sinks.volume import VolumeSink
    if not isinstance(volume, str) or not _VOLUME_NAME.match(volume):
        raise ProtocolError(f"bad volume name {str(volume)[:80]!r}")
    if allowed_root is not None:
        raise ProtocolError("this serve is confined to a directory (--root): it does not "
                            "mount volumes")
    mnt = mounts.enter_context(mounted_volume("localhost", volume))
    return VolumeSink(mnt), mnt


def open_replica(root: str, allowed_root: str | None) -> Any:
    """The :class:`ReplicaSink` of replica ``root``; with ``allowed_root``, opened
    from there with ``O_NOFOLLOW`` on every component (:mod:`.confine`), so a
    symlink a client planted can never lead the sink outside."""
    from ..sinks.replica import ReplicaSink
    if allowed_root is None:
        return ReplicaSink(root)
    os.makedirs(allowed_root, exist_ok=True)  # the administrator's path, not a client's
    fd = open_confined(allowed_root, root)
    try:
        return ReplicaSink(root, root_fd=fd)
    except BaseException:
        os.close(fd)
        raise


def open_data_target(root: str, allowed_root: str | None) -> Any:
    """Where the tar receiver writes bytes: the :class:`VolumeSink` of an aux-gfid
    mount (a volume this host's serve session mounted: ``.gfid/<gfid>`` paths), else
    the replica of :func:`open_replica`. Both answer ``open_data(gfid)``."""
    from ..secondary.gfid_mount import is_gfid_mount
    from ..sinks.volume import VolumeSink
    if allowed_root is None and is_gfid_mount(root):
        return VolumeSink(root, threads=1)
    return open_replica(root, allowed_root)


def _lock_file(root: str, allowed_root: str | None, name: str) -> tuple[str, int | None]:
    """Path of the worker lock ``name`` (and a directory fd to close after use),
    reached without following client-made names when confined."""
    rel = os.path.join(root, ".glusterfs", "streamsync")
    if allowed_root is None:
        os.makedirs(rel, exist_ok=True)
        return os.path.join(rel, name + ".lock"), None
    fd = open_confined(allowed_root, rel, mode=0o700)
    return f"/proc/self/fd/{fd}/{name}.lock", fd


def serve(inp: BinaryIO, out: BinaryIO, *, allowed_root: str | None = None) -> int:
    """Serve one client on ``inp``/``out`` until EOF or ``close``; returns an exit status.

    ``allowed_root``: when set, the replica must be inside it, reached from it
    without following symlinks. A malformed request gets an error reply and
    the session goes on; a line that cannot be framed ends it (status 2).
    """
    from ..state.lock import WorkerLock

    try:
        first = _readline(inp)
        if first is None:
            return 0
        hello = loads(first)
        if not isinstance(hello, dict) or hello.get("hello") != HELLO:
            raise ProtocolError("expected a streamsync handshake")
    except ProtocolError as exc:
        _send(out, {"ok": False, "error": str(exc), "type": "ProtocolError"})
        return 2
    if hello.get("version") != PROTOCOL_VERSION:
        _send(out, {"ok": False, "type": "ProtocolError",
                    "error": f"protocol version {hello.get('version')!r} not supported "
                             f"(this streamsync speaks {PROTOCOL_VERSION})",
                    "version": PROTOCOL_VERSION})
        return 2
    volume = hello.get("volume")
    root = hello.get("replica")
    if volume is None and (not isinstance(root, str) or not root.startswith("/")):
        _send(out, {"ok": False, "error": "replica path must be absolute", "type": "ConfigError"})
        return 2
    lock = None
    sink = None
    mounts = contextlib.ExitStack()
    try:
        name = hello.get("lock")
        if name is not None and (not isinstance(name, str) or not _LOCK_NAME.match(name)):
            raise ProtocolError(f"bad lock name {name!r}")
        if volume is not None:
            sink, root = _open_volume(volume, allowed_root, mounts)
            path, dfd = os.path.join(_volume_state_dir(volume), f"{name}.lock"), None
        else:
            root = os.path.abspath(root)
            sink = open_replica(root, allowed_root)
            if name is not None:
                path, dfd = _lock_file(root, allowed_root, name)
        if name is not None:
            try:
                lock = WorkerLock(path, what=f"replica {root}").acquire()
            finally:
                if dfd is not None:
                    os.close(dfd)
    except Exception as exc:  # a bad path or lock name: refused, never a traceback
        if sink is not None:
            sink.close()
        mounts.close()
        _send(out, {"ok": False, "error": str(exc), "type": type(exc).__name__,
                    "lock_held": isinstance(exc, LockHeld)})
        return 2
    _send(out, {"ok": True, "hello": HELLO, "version": PROTOCOL_VERSION, "pid": os.getpid(),
                "root": root})
    try:
        while True:
            try:
                line = _readline(inp)
            except ProtocolError as exc:
                _send(out, {"ok": False, "error": str(exc), "type": "ProtocolError"})
                return 2
            if line is None:
                return 0
            rid = None
            try:
                req = loads(line)
                if not isinstance(req, dict):
                    raise ProtocolError("a request must be a JSON object")
                rid = req.get("id")
                op = req.get("op")
                if op == "close":
                    _send(out, {"id": rid, "ok": True, "result": None})
                    return 0
                result = _handle(sink, op, req.get("args"))
            except Exception as exc:  # every malformed request gets an answer
                log.debug("request failed", exc_info=True)
                _send(out, {"id": rid if isinstance(rid, (int, str)) else None, "ok": False,
                            "error": str(exc)[:2000], "type": type(exc).__name__})
                continue
            _send(out, {"id": rid, "ok": True, "result": result})
    except BrokenPipeError:
        return 0
    finally:
        sink.close()
        if lock is not None:
            lock.release()
        mounts.close()  # (a volume: unmounted when the session ends)
