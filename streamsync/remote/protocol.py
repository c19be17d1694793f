"""The ``streamsync serve`` wire format: JSON lines (orjson), one request per line.

Handshake (client first)::

    {"hello": "streamsync", "version": 1, "replica": "/srv/rep", "lock": "name"}
    {"ok": true, "hello": "streamsync", "version": 1, "pid": 4242, "root": "/srv/rep"}

A version the server does not speak is refused with ``{"ok": false, "error": ...}``
and the server exits. Then requests and replies, strictly in turn::

    {"id": 7, "op": "apply_entries", "args": [<entry op dicts>]}
    {"id": 7, "ok": true, "result": [<entry failure dicts>]}
    {"id": 8, "ok": false, "error": "...", "type": "StateError"}

Operations: ``apply_entries`` (a list of ops -> a list of failures; or
``{"ops": [...], "targets": true}`` -> ``{"failures": [...], "targets": [gfids
that are now regular-file handles]}``, saving a round trip per file for the
data filter), ``apply_meta``, ``is_data_target`` (a list of gfids -> a list of
booleans), ``lstat``, ``entry_gfid``, ``dir_entry``,
``ping``, ``close``. Names travel as gsyncd entry strings; bytes that are not
UTF-8 as ``{"b64": ...}`` (:func:`streamsync.records.name_to_json`).

>>> from streamsync.ops import EntryOp, EntryFailure, FailureInfo
>>> op = EntryOp("MKDIR", "5b1c2d3e-0000-4000-8000-00000000000a",
...              "00000000-0000-0000-0000-000000000001", "d", mode=16877, uid=0, gid=0)
>>> f = EntryFailure(op, 17, FailureInfo(slave_name="d"))
>>> decode_entry_failure(loads(dumps(encode_entry_failure(f)))) == f
True
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..errors import StreamsyncError
from ..ops import EntryFailure, EntryOp, FailureInfo, MetaFailure, MetaOp, \
    entry_op_from_gsyncd, meta_op_from_gsyncd
from ..records import Stat, name_from_json, name_to_json

__all__ = ["PROTOCOL_VERSION", "HELLO", "ProtocolError", "dumps", "loads",
           "encode_entry_failure", "decode_entry_failure", "encode_meta_failure",
           "decode_meta_failure", "encode_stat", "decode_stat"]

#: bumped on any incompatible change of the messages
PROTOCOL_VERSION = 1
HELLO = "streamsync"
#: longest line accepted (a batch of entry ops is one line)
MAX_LINE = 256 * 1024 * 1024


class ProtocolError(StreamsyncError):
    """The peer sent something that is not our protocol (or a refused version)."""


def dumps(msg: Any) -> bytes:
    """One line: JSON + newline."""
    return orjson.dumps(msg) + b"\n"


def loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        shown = line[:120].decode("utf-8", "replace")
        raise ProtocolError(f"not a protocol line: {shown!r} ({exc})") from None


def _opt_name(v: str | None) -> Any:
    return None if v is None else name_to_json(v)


def _opt_name_back(v: Any) -> str | None:
    return None if v is None else name_from_json(v)


def encode_entry_failure(f: EntryFailure) -> dict[str, Any]:
    i = f.info
    return {"entry": f.op.to_dict(), "errno": f.errno,
            "info": {"gfid_mismatch": i.gfid_mismatch, "name_mismatch": i.name_mismatch,
                     "dst": i.dst, "slave_isdir": i.slave_isdir,
                     "slave_name": _opt_name(i.slave_name), "slave_gfid": i.slave_gfid,
                     "slave_entry": _opt_name(i.slave_entry)}}


def decode_entry_failure(d: dict[str, Any]) -> EntryFailure:
    i = d["info"]
    info = FailureInfo(bool(i["gfid_mismatch"]), bool(i["name_mismatch"]), bool(i["dst"]),
                       bool(i["slave_isdir"]), _opt_name_back(i.get("slave_name")),
                       i.get("slave_gfid"), _opt_name_back(i.get("slave_entry")))
    return EntryFailure(entry_op_from_gsyncd(d["entry"]), int(d["errno"]), info)


def encode_meta_failure(f: MetaFailure) -> dict[str, Any]:
    return {"entry": f.op.to_gsyncd(), "errno": f.errno, "what": f.what}


def decode_meta_failure(d: dict[str, Any]) -> MetaFailure:
    return MetaFailure(meta_op_from_gsyncd(d["entry"]), int(d["errno"]), d["what"])


def encode_entry_ops(ops: list[EntryOp]) -> list[dict[str, Any]]:
    return [op.to_dict() for op in ops]


#: the entry ops a client may send
_ENTRY_OPS = frozenset({"CREATE", "MKDIR", "MKNOD", "LINK", "SYMLINK", "RENAME", "UNLINK",
                        "RMDIR"})
_GFID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_MAX_MODE = 0o177777
_MAX_ID = 2**32 - 2          # (uid_t)-1 means "unchanged" to chown: never an owner
_MAX_TIME = 2.0**40          # seconds: far beyond any real timestamp, inside every C type


def _int(d: dict[str, Any], key: str, hi: int, *, optional: bool = True) -> None:
    v = d.get(key)
    if v is None and optional:
        return
    if type(v) is not int or not 0 <= v <= hi:
        raise ProtocolError(f"{key} must be an integer 0..{hi}, not {v!r}")


def _check_stat(st: Any) -> None:
    if not isinstance(st, dict):
        raise ProtocolError(f"stat must be an object, not {st!r}")
    for key, hi in (("uid", _MAX_ID), ("gid", _MAX_ID), ("mode", _MAX_MODE)):
        _int(st, key, hi, optional=False)
    for key in ("atime", "mtime"):
        v = st.get(key)
        if type(v) not in (int, float) or not -_MAX_TIME < v < _MAX_TIME:  # nan fails too
            raise ProtocolError(f"{key} must be a finite time, not {v!r}")


def _check_name(v: Any, key: str) -> None:
    if isinstance(v, str) or (isinstance(v, dict) and isinstance(v.get("b64"), str)):
        return
    raise ProtocolError(f"{key} must be a name, not {v!r}")


def _check_entry(d: Any) -> None:
    if not isinstance(d, dict):
        raise ProtocolError(f"an entry op must be an object, not {d!r}")
    if d.get("op") not in _ENTRY_OPS:
        raise ProtocolError(f"unknown entry op {d.get('op')!r}")
    if not isinstance(d.get("gfid"), str) or not _GFID_RE.match(d["gfid"]):
        raise ProtocolError(f"bad gfid {d.get('gfid')!r}")
    _check_name(d.get("entry"), "entry")
    for key in ("entry1", "link"):
        if d.get(key) is not None:
            _check_name(d[key], key)
    _int(d, "mode", _MAX_MODE)
    _int(d, "uid", _MAX_ID)
    _int(d, "gid", _MAX_ID)
    if d.get("stat"):  # {} or None: no stat (a SYMLINK's, say)
        _check_stat(d["stat"])
    if d.get("source_fop") is not None and not isinstance(d["source_fop"], str):
        raise ProtocolError(f"bad source_fop {d['source_fop']!r}")


def _decode_all(items: Any, check: Any, build: Any, what: str) -> list[Any]:
    """Validate every item, then build them all: a malformed item refuses the
    whole request before anything is applied."""
    if not isinstance(items, list):
        raise ProtocolError(f"{what} must be a list, not {type(items).__name__}")
    for d in items:
        check(d)
    try:
        return [build(d) for d in items]
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise ProtocolError(f"bad {what}: {exc}") from None


def decode_entry_ops(items: Any) -> list[EntryOp]:
    """Checked entry ops of a request (:class:`ProtocolError` on the first bad one)."""
    return _decode_all(items, _check_entry, entry_op_from_gsyncd, "entry ops")


def encode_meta_ops(ops: list[MetaOp]) -> list[dict[str, Any]]:
    return [op.to_gsyncd() for op in ops]


def _check_meta(d: Any) -> None:
    if not isinstance(d, dict):
        raise ProtocolError(f"a meta op must be an object, not {d!r}")
    go = d.get("go")
    if not isinstance(go, str) or not go.startswith(".gfid/") or not _GFID_RE.match(go[6:]):
        raise ProtocolError(f"bad meta target {go!r}")
    _check_stat(d.get("stat"))


def decode_meta_ops(items: Any) -> list[MetaOp]:
    """Checked meta ops of a request (:class:`ProtocolError` on the first bad one)."""
    return _decode_all(items, _check_meta, meta_op_from_gsyncd, "meta ops")


def encode_stat(st: Stat | None) -> dict[str, Any] | None:
    return None if st is None else st.to_dict()


def decode_stat(d: dict[str, Any] | None) -> Stat | None:
    return None if d is None else Stat.from_dict(d)
