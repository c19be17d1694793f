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

import logging
import os
import re
from typing import Any, BinaryIO

from ..errors import LockHeld, StreamsyncError
from .protocol import HELLO, MAX_LINE, PROTOCOL_VERSION, ProtocolError, decode_entry_ops, \
    decode_meta_ops, dumps, encode_entry_failure, encode_meta_failure, encode_stat, loads

__all__ = ["serve"]

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


def _handle(sink: Any, op: str, args: Any) -> Any:
    if op == "apply_entries":
        if isinstance(args, dict):  # {"ops": [...], "targets": true}: also say which
            ops = decode_entry_ops(args["ops"])  # gfids are now data targets
            fails = [encode_entry_failure(f) for f in sink.apply_entries(ops)]
            out: dict[str, Any] = {"failures": fails}
            if args.get("targets"):
                cand = dict.fromkeys(o.gfid for o in ops if o.op not in _NOT_DATA)
                out["targets"] = [g for g in cand if sink.is_data_target(g)]
            return out
        return [encode_entry_failure(f) for f in sink.apply_entries(decode_entry_ops(args))]
    if op == "apply_meta":
        return [encode_meta_failure(f) for f in sink.apply_meta(decode_meta_ops(args))]
    if op == "is_data_target":
        return [bool(sink.is_data_target(g)) for g in args]
    if op == "has_handle":
        return [bool(sink.has_handle(g)) for g in args]
    if op == "lstat":
        return encode_stat(sink.lstat(args))
    if op == "entry_gfid":
        from ..records import name_from_json
        return sink.entry_gfid(args[0], name_from_json(args[1]))
    if op == "dir_entry":
        r = sink.dir_entry(args)
        if r is None:
            return None
        from ..records import name_to_json
        return [r[0], name_to_json(r[1])]
    if op == "ping":
        return "pong"
    raise ProtocolError(f"unknown operation {op!r}")


def serve(inp: BinaryIO, out: BinaryIO, *, allowed_root: str | None = None) -> int:
    """Serve one client on ``inp``/``out`` until EOF or ``close``; returns an exit status.

    ``allowed_root``: when set, the replica path must be inside it.
    """
    from ..sinks.replica import ReplicaSink
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
    root = hello.get("replica")
    if not isinstance(root, str) or not root.startswith("/"):
        _send(out, {"ok": False, "error": "replica path must be absolute", "type": "ConfigError"})
        return 2
    root = os.path.abspath(root)
    if allowed_root is not None:
        base = os.path.abspath(allowed_root)
        if os.path.commonpath([base, root]) != base:
            _send(out, {"ok": False, "type": "ConfigError",
                        "error": f"{root}: outside the served root {base}"})
            return 2
    lock = None
    sink = None
    try:
        sink = ReplicaSink(root)
        name = hello.get("lock")
        if name is not None:
            if not isinstance(name, str) or not _LOCK_NAME.match(name):
                raise ProtocolError(f"bad lock name {name!r}")
            os.makedirs(os.path.join(root, ".glusterfs", "streamsync"), exist_ok=True)
            lock = WorkerLock(os.path.join(root, ".glusterfs", "streamsync", name + ".lock"),
                              what=f"replica {root}").acquire()
    except (StreamsyncError, OSError) as exc:
        if sink is not None:
            sink.close()
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
            try:
                req = loads(line)
                rid = req.get("id")
                op = req.get("op")
            except (ProtocolError, AttributeError) as exc:
                _send(out, {"ok": False, "error": str(exc), "type": "ProtocolError"})
                return 2
            if op == "close":
                _send(out, {"id": rid, "ok": True, "result": None})
                return 0
            try:
                result = _handle(sink, op, req.get("args"))
            except (StreamsyncError, OSError, ValueError, KeyError, TypeError) as exc:
                log.exception("request %s failed", op)
                _send(out, {"id": rid, "ok": False, "error": str(exc),
                            "type": type(exc).__name__})
                continue
            _send(out, {"id": rid, "ok": True, "result": result})
    except BrokenPipeError:
        return 0
    finally:
        sink.close()
        if lock is not None:
            lock.release()
