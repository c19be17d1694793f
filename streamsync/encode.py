"""Write records as a raw brick journal, the way the changelog translator does.

The inverse of :mod:`streamsync.decode`: used to build test fixtures, synthetic
benchmark journals and journals for what-if replays. Both encodings (ascii,
binary) and both versions (v1.1, v1.2) are supported.

>>> from streamsync.records import DataRecord
>>> from streamsync.decode import decode_journal
>>> raw = encode_journal([DataRecord("00000000-0000-0000-0000-000000000001")])
>>> raw
b'GlusterFS Changelog | version: v1.2 | encoding : 2\\nD00000000-0000-0000-0000-000000000001\\x00'
>>> decode_journal(raw)
[DataRecord(gfid='00000000-0000-0000-0000-000000000001')]
"""

from __future__ import annotations

import uuid
from typing import Iterable

from .decode import ASCII, BINARY
from .fops import DELETE_FOPS, FOP_NUMBERS, NEWENTRY_FOPS
from .records import EntryRecord, Record

__all__ = ["journal_header", "encode_journal"]


def journal_header(*, encoding: int = ASCII, version: str = "v1.2") -> bytes:
    """The header line the translator writes.

    >>> journal_header(encoding=BINARY, version="v1.1")
    b'GlusterFS Changelog | version: v1.1 | encoding : 1\\n'
    """
    return f"GlusterFS Changelog | version: {version} | encoding : {encoding}\n".encode()


def _name(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _encode_ascii(r: Record, slot: bool) -> bytes:
    t = r.TYPE
    if t == "D":
        return b"D" + r.gfid.encode() + b"\0"
    num = str(FOP_NUMBERS[r.fop]).encode()  # type: ignore[union-attr]
    if t == "M":
        return b"M" + r.gfid.encode() + b"\0" + num + b"\0"
    e: EntryRecord = r  # type: ignore[assignment]
    parts = [b"E" + e.gfid.encode(), num]
    if e.fop in NEWENTRY_FOPS:
        parts += [str(e.mode).encode(), str(e.uid).encode(), str(e.gid).encode()]
    parts.append(e.pgfid.encode() + b"/" + _name(e.bname))
    if e.fop == "RENAME":
        parts.append(e.pgfid1.encode() + b"/" + _name(e.bname1))  # type: ignore[union-attr,operator]
    if e.fop in DELETE_FOPS and slot:
        parts.append(_name(e.path) if e.path else b"\0")
    return b"\0".join(parts) + b"\0"


def _u32(value: int) -> bytes:
    return int(value).to_bytes(4, "little")


def _encode_binary(r: Record, slot: bool) -> bytes:
    t = r.TYPE
    gfid = uuid.UUID(r.gfid).bytes
    if t == "D":
        return b"D" + gfid + b"\0"
    num = _u32(FOP_NUMBERS[r.fop])  # type: ignore[union-attr]
    if t == "M":
        return b"M" + gfid + b"\0" + num + b"\0"
    e: EntryRecord = r  # type: ignore[assignment]
    parts = [b"E" + gfid, num]
    if e.fop in NEWENTRY_FOPS:
        parts += [_u32(e.mode), _u32(e.uid), _u32(e.gid)]  # type: ignore[arg-type]
    parts.append(uuid.UUID(e.pgfid).bytes + b"/" + _name(e.bname))
    if e.fop == "RENAME":
        parts.append(uuid.UUID(e.pgfid1).bytes + b"/" + _name(e.bname1))  # type: ignore[arg-type]
    if e.fop in DELETE_FOPS and slot:
        parts.append(_name(e.path) if e.path else b"\0")
    return b"\0".join(parts) + b"\0"


def encode_journal(records: Iterable[Record], *, encoding: int = ASCII,
                   version: str = "v1.2") -> bytes:
    """A complete raw journal (header + records).

    In v1.2, UNLINK/RMDIR get the delete-path slot: the record's ``path`` when
    set, else the empty slot. Inline xsync stats of ``M`` records are not part
    of the raw format and are dropped.
    """
    if encoding not in (ASCII, BINARY):
        raise ValueError(f"encoding must be {ASCII} (ascii) or {BINARY} (binary)")
    if version not in ("v1.1", "v1.2"):
        raise ValueError("version must be 'v1.1' or 'v1.2'")
    slot = version == "v1.2"
    enc = _encode_ascii if encoding == ASCII else _encode_binary
    return journal_header(encoding=encoding, version=version) + b"".join(enc(r, slot) for r in records)
