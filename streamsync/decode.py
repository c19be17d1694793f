"""Decode raw brick journals (``CHANGELOG.<ts>`` as the changelog translator writes them).

A raw journal is one header line followed by records with no newline between
them (spec section 2)::

    GlusterFS Changelog | version: v1.2 | encoding : 2\\n
    E<gfid>\\0<fop>\\0<mode>\\0<uid>\\0<gid>\\0<pgfid>/<name>\\0D<gfid>\\0...

* **ascii** (encoding 2): gfids as 36-character text, numbers as decimal text.
  Decoded exactly as libgfchangelog's ``gf_changelog_parse_ascii``, so
  :func:`journal_to_processed` gives byte-identical processed text.
* **binary** (encoding 1): 16 raw gfid bytes and 4-byte little-endian
  integers, same field layout, parsed by position (raw bytes may hold NUL and
  newline). libgfchangelog 10.3 cannot decode these; we can.
* versions **v1.1** (UNLINK/RMDIR carry one name) and **v1.2** (plus a
  captured-delete-path slot, empty when not captured).

Whole-file validation: a truncated or corrupt journal raises
:class:`~streamsync.errors.JournalError` naming the file and the byte offset
where decoding failed, and no record of it is returned. :func:`decode_journal`
returns every record (memory: the file's bytes plus its records);
:func:`iter_journal` validates the whole file first, then yields records one at
a time, holding only a few MiB of the body decoded at once (memory: the file's
bytes), for journals of any size.

>>> raw = (b"GlusterFS Changelog | version: v1.2 | encoding : 2\\n"
...        b"E5b1c2d3e-0000-4000-8000-00000000000a\\x0023\\x0033188\\x000\\x000\\x00"
...        b"00000000-0000-0000-0000-000000000001/my notes\\x00"
...        b"D5b1c2d3e-0000-4000-8000-00000000000a\\x00")
>>> print(journal_to_processed(raw).decode(), end="")
E 5b1c2d3e-0000-4000-8000-00000000000a CREATE 33188 0 0 00000000-0000-0000-0000-000000000001/my%20notes
D 5b1c2d3e-0000-4000-8000-00000000000a
"""

from __future__ import annotations

import os
import re
from itertools import chain
from typing import Iterable, Iterator, NamedTuple

from ._gc import paused
from .errors import JournalError, UnsupportedJournal
from .fops import DELETE_FOPS, FOP_NAMES, NAMED_FOPS, NEWENTRY_FOPS
from .parse import is_gfid, render_processed, second_digits
from .records import DataRecord, EntryRecord, MetaRecord, Record

__all__ = [
    "JournalHeader",
    "HEADER_PREFIX",
    "ASCII",
    "BINARY",
    "read_header",
    "is_raw_journal",
    "decode_journal",
    "decode_journal_some",
    "SomeRecords",
    "iter_journal",
    "decode_file",
    "journal_to_processed",
]

#: every raw journal starts with these bytes
HEADER_PREFIX = b"GlusterFS Changelog | version: v"
#: encoding numbers of the header
BINARY = 1
ASCII = 2

_HEADER_RE = re.compile(rb"GlusterFS Changelog \| version: v(\d{1,9})\.(\d{1,9}) \| encoding : (\d{1,9})\n")
_SUPPORTED_VERSIONS = ((1, 1), (1, 2))
_MAX_HEADER = 128
#: bytes of a journal body decoded at once (records straddling a boundary carry over)
_CHUNK = 1 << 19
#: records per list handed out by the binary decoder
_BATCH = 1 << 13
#: the most NUL-separated fields one ascii record has (CREATE: type+gfid, fop, mode, uid,
# gid, pgfid/name); a chunk is parsed up to this many fields before its end
_MAX_RECORD_FIELDS = 6
#: distinct gfids / numbers remembered as already checked (bounded memory)
_KNOWN_MAX = 1 << 14


class JournalHeader(NamedTuple):
    """What a raw journal's first line says.

    >>> read_header(b"GlusterFS Changelog | version: v1.2 | encoding : 2\\n")
    JournalHeader(major=1, minor=2, encoding=2, body_offset=51)
    """

    major: int
    minor: int
    encoding: int
    body_offset: int

    @property
    def version(self) -> str:
        """``"v1.2"``."""
        return f"v{self.major}.{self.minor}"

    @property
    def delete_path_slot(self) -> bool:
        """True when UNLINK/RMDIR records carry the captured-path slot (v1.2)."""
        return (self.major, self.minor) >= (1, 2)


def is_raw_journal(data: bytes) -> bool:
    """True when ``data`` starts like a raw brick journal (not processed text).

    >>> is_raw_journal(b"GlusterFS Changelog | version: v1.2 | encoding : 2\\n"), is_raw_journal(b"D ...")
    (True, False)
    """
    return data.startswith(HEADER_PREFIX)


def read_header(data: bytes, *, path: str = "<bytes>") -> JournalHeader:
    """Parse and check the header line; the body starts at ``body_offset``.

    Raises :class:`JournalError` for anything that is not a journal header and
    :class:`UnsupportedJournal` for a version other than v1.1/v1.2 or an
    encoding other than 1 (binary) / 2 (ascii).

    >>> data = open("tests/data/gluster-10.3/raw/binary-delpath-on/CHANGELOG.1795467234", "rb").read()
    >>> read_header(data)
    JournalHeader(major=1, minor=2, encoding=1, body_offset=51)
    """
    m = _HEADER_RE.match(data, 0, _MAX_HEADER)
    if m is None:
        nl = data.find(b"\n", 0, _MAX_HEADER)
        what = "no header line" if nl < 0 else f"bad header line {data[:nl][:80]!r}"
        raise JournalError(f"not a GlusterFS changelog: {what}", path=path, offset=0)
    major, minor, encoding = int(m[1]), int(m[2]), int(m[3])
    if (major, minor) not in _SUPPORTED_VERSIONS:
        raise UnsupportedJournal(f"unsupported changelog version v{major}.{minor} "
                                 f"(only v1.1 and v1.2 exist)", path=path, offset=m.start(1) - 1)
    if encoding not in (BINARY, ASCII):
        raise UnsupportedJournal(f"invalid encoding {encoding} (1 = binary, 2 = ascii)",
                                 path=path, offset=m.start(3))
    return JournalHeader(major, minor, encoding, m.end())


def _record_lists(data: bytes, path: str) -> Iterator[list[Record]]:
    """The records of a raw journal as consecutive lists (a JournalError ends it)."""
    header = read_header(data, path=path)
    if header.encoding == ASCII:
        return _decode_ascii(data, header, path)
    return _decode_binary(data, header, path)


def decode_journal(data: bytes, *, path: str = "<bytes>") -> list[Record]:
    """All records of a raw journal, in file order, after validating the whole file.

    >>> decode_journal(b"GlusterFS Changelog | version: v1.2 | encoding : 2\\n"
    ...                b"M00000000-0000-0000-0000-000000000001\\x0017\\x00")
    [MetaRecord(gfid='00000000-0000-0000-0000-000000000001', fop='SETXATTR', stat=None)]
    """
    header = read_header(data, path=path)
    with paused():  # records make no cycles: the collector would only re-scan (2x)
        if header.encoding == ASCII:
            fast = _ascii_fast(data, header)
            if fast is not None:
                return fast
        return list(chain.from_iterable(_record_lists(data, path)))


def iter_journal(data: bytes, *, path: str = "<bytes>") -> Iterator[Record]:
    """The records of a raw journal one at a time, after validating the whole file.

    The first ``next()`` decodes the whole journal once without keeping a record
    (a corrupt journal raises :class:`JournalError` before any record is
    yielded), then decodes it again as it is consumed, so memory stays at the
    journal's bytes plus a few MiB, whatever its size. Twice the CPU of
    :func:`decode_journal`; use that one for journals that fit in memory.

    >>> raw = (b"GlusterFS Changelog | version: v1.2 | encoding : 2\\n"
    ...        b"D00000000-0000-0000-0000-000000000001\\x00")
    >>> [r.TYPE for r in iter_journal(raw)]
    ['D']
    >>> next(iter_journal(raw + b"Dnot-a-gfid\\x00"))
    Traceback (most recent call last):
    ...
    streamsync.errors.JournalError: <bytes>: byte 89: record 2: expected a record type and a 36-character gfid, got 'Dnot-a-gfid'
    """
    for _ in _record_lists(data, path):
        pass
    for records in _record_lists(data, path):
        yield from records


def decode_file(path: str | os.PathLike[str]) -> list[Record]:
    """Read and decode one raw journal file (see :func:`decode_journal`).

    >>> first = decode_file("tests/data/gluster-10.3/raw/ascii-delpath-on/CHANGELOG.1795467006")[0]
    >>> first.fop, first.gfid, first.bname
    ('MKDIR', 'd11575a7-bfec-475e-8e73-c98e35a6564c', 'top')
    """
    p = os.fspath(path)
    with open(p, "rb") as fh:
        data = fh.read()
    return decode_journal(data, path=p)


def journal_to_processed(data: bytes, *, path: str = "<bytes>") -> bytes:
    """The processed text libgfchangelog publishes for a raw journal.

    Byte-identical to libgfchangelog for ascii journals; binary journals are
    rendered the same way (text gfids, decimal numbers).

    >>> data = open("tests/data/gluster-10.3/raw/binary-delpath-on/CHANGELOG.1795467234", "rb").read()
    >>> journal_to_processed(data).splitlines()[0]
    b'E bcb9de5d-0a23-4a6f-b326-c18b3f6f412a MKDIR 16877 0 0 00000000-0000-0000-0000-000000000001/top'
    """
    return render_processed(decode_journal(data, path=path))


# --------------------------------------------------------------------------- ascii

#: canonical decimal text of a fop number -> fop name ("23" -> "CREATE")
_FOP_BY_TEXT: dict[str, str] = {str(num): name for num, name in FOP_NAMES.items()}
_UINT_MAX = 0xFFFFFFFF


def _ascii_uint(text: str) -> int:
    if not text or not text.isascii() or not text.isdigit() or len(text) > 10 \
            or (text[0] == "0" and len(text) > 1):
        raise ValueError(f"expected an unsigned decimal, got {text[:40]!r}")
    value = int(text)
    if value > _UINT_MAX:
        raise ValueError(f"number out of range: {text!r}")
    return value


def _raw_entry(field: str, known: set[str]) -> tuple[str, str]:
    """``pgfid/name`` of a raw journal (names are not escaped in raw journals)."""
    pgfid = field[:36]
    if field[36:37] != "/" or (pgfid not in known and not _remember_gfid(pgfid, known)):
        raise ValueError(f"expected <pgfid>/<name>, got {field[:80]!r}")
    bname = field[37:]
    if not bname:
        raise ValueError("empty entry name")
    if "/" in bname or bname in (".", ".."):
        raise ValueError(f"invalid entry name {bname[:80]!r}")
    return pgfid, bname


def _token_offset(toks: list[str], index: int, base: int) -> int:
    """Byte offset of token ``index`` (only computed when reporting an error)."""
    off = base
    for tok in toks[:index]:
        off += len(tok.encode("utf-8", "surrogateescape")) + 1
    return off


def _decode_ascii(data: bytes, header: JournalHeader, path: str) -> Iterator[list[Record]]:
    """Records of an ascii journal, a list per chunk of the body (see :data:`_CHUNK`)."""
    end = len(data)
    pos = header.body_offset
    if pos == end:
        return
    if data[-1:] != b"\0":
        raise JournalError("truncated journal: the last record is not terminated",
                           path=path, offset=end)
    slot = header.delete_path_slot
    fop_by_text = _FOP_BY_TEXT
    known: set[str] = set()
    uints: dict[str, int] = {}
    done = 0            # records of the chunks before this one
    carry: list[str] = []  # fields of a record that the previous chunk cut
    base = pos          # byte offset of toks[0]
    while pos < end:
        stop = end if end - pos <= _CHUNK else data.rfind(b"\0", pos, pos + _CHUNK) + 1
        if stop <= pos:  # one field longer than a chunk
            stop = data.index(b"\0", pos + _CHUNK) + 1
        toks = data[pos:stop].decode("utf-8", "surrogateescape").split("\0")
        if carry:
            toks[:0] = carry
        last = len(toks) - 1  # toks[last] == "" (after the chunk's final NUL)
        final = stop == end
        limit = last if final else last - _MAX_RECORD_FIELDS
        out: list[Record] = []
        append = out.append
        if len(known) > _KNOWN_MAX:
            known.clear()
        if len(uints) > _KNOWN_MAX:
            uints.clear()
        i = 0
        try:
            while i < limit:
                head = toks[i]
                gfid = head[1:]
                if len(head) != 37 or (gfid not in known and not _remember_gfid(gfid, known)):
                    raise ValueError(f"expected a record type and a 36-character gfid, got {head[:60]!r}")
                kind = head[0]
                if kind == "D":
                    append(DataRecord(gfid))
                    i += 1
                    continue
                if i + 1 >= last:
                    raise ValueError("record ends before its fop")
                fop = fop_by_text.get(toks[i + 1])
                if fop is None:
                    raise ValueError(f"unknown fop number {toks[i + 1][:20]!r}")
                if kind == "M":
                    append(MetaRecord(gfid, fop))
                    i += 2
                    continue
                if kind != "E":
                    raise ValueError(f"unknown record type {kind!r}")
                if fop in NEWENTRY_FOPS:
                    if i + 5 >= last:
                        raise ValueError(f"truncated {fop} record")
                    t = toks[i + 2]
                    mode = uints[t] if t in uints else _remember_uint(t, uints)
                    t = toks[i + 3]
                    uid = uints[t] if t in uints else _remember_uint(t, uints)
                    t = toks[i + 4]
                    gid = uints[t] if t in uints else _remember_uint(t, uints)
                    pgfid, bname = _raw_entry(toks[i + 5], known)
                    append(EntryRecord(gfid, fop, pgfid, bname, mode, uid, gid))
                    i += 6
                elif fop in NAMED_FOPS:
                    if i + 2 >= last:
                        raise ValueError(f"truncated {fop} record")
                    pgfid, bname = _raw_entry(toks[i + 2], known)
                    append(EntryRecord(gfid, fop, pgfid, bname))
                    i += 3
                elif fop in DELETE_FOPS:
                    if i + 2 >= last:
                        raise ValueError(f"truncated {fop} record")
                    pgfid, bname = _raw_entry(toks[i + 2], known)
                    if not slot:
                        append(EntryRecord(gfid, fop, pgfid, bname))
                        i += 3
                        continue
                    if i + 3 >= last:
                        raise ValueError(f"truncated {fop} record (no delete-path slot)")
                    dpath = toks[i + 3]
                    if dpath:
                        append(EntryRecord(gfid, fop, pgfid, bname, path=dpath))
                        i += 4
                    else:
                        # empty slot: its NUL plus one more byte, which must be the terminator
                        if i + 4 > last or toks[i + 4] != "":
                            raise ValueError(f"{fop} record: empty delete-path slot is not terminated")
                        append(EntryRecord(gfid, fop, pgfid, bname))
                        i += 5
                elif fop == "RENAME":
                    if i + 3 >= last:
                        raise ValueError("truncated RENAME record")
                    pgfid, bname = _raw_entry(toks[i + 2], known)
                    pgfid1, bname1 = _raw_entry(toks[i + 3], known)
                    append(EntryRecord(gfid, fop, pgfid, bname, pgfid1=pgfid1, bname1=bname1))
                    i += 4
                else:
                    raise ValueError(f"E record with non-entry fop {fop}")
        except (ValueError, IndexError) as exc:
            raise JournalError(f"record {done + len(out) + 1}: {exc}", path=path,
                               offset=_token_offset(toks, i, base)) from None
        if final and i != last:
            raise JournalError("trailing bytes after the last record", path=path,
                               offset=_token_offset(toks, i, base))
        carry = toks[i:last]
        base = stop - sum(len(t.encode("utf-8", "surrogateescape")) + 1 for t in carry)
        pos = stop
        done += len(out)
        yield out


def _ascii_body_re(slot: bool) -> re.Pattern[bytes]:
    """One expression for a whole well-formed ascii body (``slot``: v1.2's
    delete-path slot): every record, field and terminator the checked decoder
    accepts, in C and in one pass. Numbers of 10 digits are range-checked after."""
    g = rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    num = rb"(?:0|[1-9][0-9]{0,9})"
    ent = g + rb"/(?!\.\.?\x00)[^\x00/]+\x00"

    def fops(names: Iterable[str]) -> bytes:
        nums = sorted((str(n).encode() for n, f in FOP_NAMES.items() if f in names),
                      key=len, reverse=True)
        return b"(?:" + b"|".join(nums) + b")\x00"
    new, named = fops(NEWENTRY_FOPS), fops(NAMED_FOPS)
    dele, ren, any_fop = fops(DELETE_FOPS), fops({"RENAME"}), fops(FOP_NAMES.values())
    tail = rb"(?:[^\x00]+\x00|\x00\x00)" if slot else b""
    record = (rb"(?:D" + g + rb"\x00|M" + g + rb"\x00" + any_fop +
              rb"|E" + g + rb"\x00(?:" + new + num + rb"\x00" + num + rb"\x00" + num +
              rb"\x00" + ent + b"|" + named + ent + b"|" + dele + ent + tail +
              b"|" + ren + ent + ent + b"))")
    return re.compile(b"(?:" + record + rb")*+\Z")


_BODY_RE = {slot: _ascii_body_re(slot) for slot in (False, True)}


class SomeRecords(NamedTuple):
    """What :func:`decode_journal_some` returns: the records of the selected gfids
    with their index in the journal, and of every entry record, selected or not,
    what links it to names: its parent gfids (in no set order, repeats kept), and
    each rename as ``(index, gfid, new parent gfid, new name)``, in file order."""

    records: list[tuple[int, Record]]
    parents: list[str]
    renames: list[tuple[int, str, str, str]]


def decode_journal_some(data: bytes, select: frozenset[str], *, path: str = "<bytes>",
                        check: bool = True) -> SomeRecords:
    """The records of a raw journal whose gfid starts with one of the two-hex-digit
    prefixes in ``select`` (one shard of its gfids), the others walked past
    (:class:`SomeRecords`); checked as :func:`decode_journal` checks.

    ``check=False`` is for a journal that another reader checks (one shard of
    many, :func:`streamsync.analysis.shard.read_shard`): an ascii body is then
    walked without its whole-body check (a quarter of the decode). What the
    walk cannot take still goes through the checked decoder and raises its
    error, but a damaged body may also decode to wrong records without one.

    >>> raw = (b"GlusterFS Changelog | version: v1.2 | encoding : 2\\n"
    ...        b"E5b1c2d3e-0000-4000-8000-00000000000a\\x0023\\x0033188\\x000\\x000\\x00"
    ...        b"00000000-0000-0000-0000-000000000001/my notes\\x00"
    ...        b"D00000000-0000-0000-0000-000000000001\\x00")
    >>> some = decode_journal_some(raw, frozenset({"00"}))
    >>> some.records, some.parents
    ([(1, DataRecord(gfid='00000000-0000-0000-0000-000000000001'))], ['00000000-0000-0000-0000-000000000001'])
    """
    header = read_header(data, path=path)
    if header.encoding == ASCII:
        some = _Some(select)
        with paused():
            fast = _ascii_fast(data, header, check, some)
        if fast is not None:  # the others' links were noted on the way past them
            picked = list(zip(some.at, fast))
            _note_links(picked, some.parents, some.renames)
            some.renames.sort()
            return SomeRecords(picked, some.parents, some.renames)
    records = decode_journal(data, path=path)
    parents: list[str] = []
    renames: list[tuple[int, str, str, str]] = []
    _note_links(enumerate(records), parents, renames)
    return SomeRecords([(i, r) for i, r in enumerate(records) if r.gfid[:2] in select],
                       parents, renames)


def _note_links(pairs: Iterable[tuple[int, Record]], parents: list[str],
                renames: list[tuple[int, str, str, str]]) -> None:
    """The parent gfids and renames of the entry records among ``(index, record)``."""
    for i, r in pairs:
        if r.TYPE == "E":
            parents.append(r.pgfid)  # type: ignore[union-attr]
            if r.fop == "RENAME":  # type: ignore[union-attr]
                parents.append(r.pgfid1)  # type: ignore[union-attr]
                renames.append((i, r.gfid, r.pgfid1, r.bname1))  # type: ignore[union-attr]


def _ascii_fast(data: bytes, header: JournalHeader, check: bool = True,
                some: _Some | None = None) -> list[Record] | None:
    """The records of an ascii journal whose whole body :func:`_ascii_body_re`
    accepts (``check=False``: taken as accepted), fields sliced without
    re-checking; ``None`` for anything else (the checked decoder then names what
    is wrong and where)."""
    pos = header.body_offset
    slot = header.delete_path_slot
    if check:
        if _BODY_RE[slot].match(data, pos) is None:
            return None
        return _ascii_walk(data, pos, slot, some)
    try:
        return _ascii_walk(data, pos, slot, some)
    except (IndexError, KeyError, ValueError):  # a walk off the fields: not well formed
        return None


def _ascii_walk(data: bytes, pos: int, slot: bool, some: _Some | None = None
                ) -> list[Record] | None:
    """The records of a body taken as well formed (``None``: a number out of range);
    with ``some``, only those of its gfids (:class:`_Some`)."""
    toks = data[pos:].decode("utf-8", "surrogateescape").split("\0")
    new = tuple.__new__  # records without NamedTuple's Python-level __new__
    fop_by_text = _FOP_BY_TEXT
    out: list[Record] = []
    append = out.append
    last = len(toks) - 1
    i = 0
    if some is not None:
        lo, hi, keys = some.lo, some.hi, some.keys
        at = some.at.append
        past = some.walk_past
        skipped = 0
    while i < last:
        head = toks[i]
        if some is not None:
            if head[lo:hi] not in keys:
                i = past(toks, i, slot, len(out) + skipped)
                skipped += 1
                continue
            at(len(out) + skipped)
        kind = head[0]
        if kind == "D":
            append(new(DataRecord, (head[1:],)))
            i += 1
            continue
        fop = fop_by_text[toks[i + 1]]
        if kind == "M":
            append(new(MetaRecord, (head[1:], fop, None)))
            i += 2
        elif fop in NEWENTRY_FOPS:
            a, b, c = toks[i + 2], toks[i + 3], toks[i + 4]
            if (len(a) == 10 and int(a) > _UINT_MAX) or (len(b) == 10 and int(b) > _UINT_MAX) \
                    or (len(c) == 10 and int(c) > _UINT_MAX):
                return None
            f = toks[i + 5]
            append(new(EntryRecord, (head[1:], fop, f[:36], f[37:], int(a), int(b), int(c),
                                     None, None, None)))
            i += 6
        elif fop == "RENAME":
            f, f1 = toks[i + 2], toks[i + 3]
            append(new(EntryRecord, (head[1:], fop, f[:36], f[37:], None, None, None,
                                     f1[:36], f1[37:], None)))
            i += 4
        else:
            f = toks[i + 2]
            if slot and fop in DELETE_FOPS:
                dpath = toks[i + 3]
                append(new(EntryRecord, (head[1:], fop, f[:36], f[37:], None, None, None,
                                         None, None, dpath or None)))
                i += 4 if dpath else 5
            else:
                append(new(EntryRecord, (head[1:], fop, f[:36], f[37:], None, None, None,
                                         None, None, None)))
                i += 3
    return out


class _Some:
    """Which records of a journal :func:`decode_journal_some` builds (those whose
    head's ``[lo:hi]`` is in ``keys``), and what it notes of the others on the way
    past them."""

    __slots__ = ("lo", "hi", "keys", "at", "parents", "renames")

    def __init__(self, select: frozenset[str]) -> None:
        seconds = second_digits(select)
        if seconds is not None:
            self.lo, self.hi, self.keys = 2, 3, seconds
        else:
            self.lo, self.hi, self.keys = 1, 3, select
        self.at: list[int] = []
        self.parents: list[str] = []
        self.renames: list[tuple[int, str, str, str]] = []

    def walk_past(self, toks: list[str], i: int, slot: bool, index: int) -> int:
        """The token after the record at ``i`` (the journal's record ``index``),
        noting its entry's parents and rename."""
        head = toks[i]
        if head[0] == "D":
            return i + 1
        fop = _FOP_BY_TEXT[toks[i + 1]]
        if head[0] == "M":
            return i + 2
        if fop in NEWENTRY_FOPS:
            self.parents.append(toks[i + 5][:36])
            return i + 6
        self.parents.append(toks[i + 2][:36])
        if fop == "RENAME":
            f1 = toks[i + 3]
            self.parents.append(f1[:36])
            self.renames.append((index, head[1:], f1[:36], f1[37:]))
            return i + 4
        if slot and fop in DELETE_FOPS:
            return i + 4 if toks[i + 3] else i + 5
        return i + 3


def _remember_uint(text: str, uints: dict[str, int]) -> int:
    value = uints[text] = _ascii_uint(text)
    return value


def _remember_gfid(gfid: str, known: set[str]) -> bool:
    if is_gfid(gfid):
        known.add(gfid)
        return True
    return False


# --------------------------------------------------------------------------- binary

def _gfid_text(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _BinaryCursor:
    """Position-based reader over a binary journal body; errors carry the offset."""

    __slots__ = ("data", "pos", "end", "path")

    def __init__(self, data: bytes, pos: int, path: str) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data)
        self.path = path

    def fail(self, message: str, at: int | None = None) -> JournalError:
        return JournalError(message, path=self.path, offset=self.pos if at is None else at)

    def nul(self, what: str) -> None:
        p = self.pos
        if p >= self.end:
            raise self.fail(f"truncated journal: missing NUL after {what}")
        if self.data[p] != 0:
            raise self.fail(f"expected NUL after {what}, got byte 0x{self.data[p]:02x}")
        self.pos = p + 1

    def gfid(self, what: str) -> str:
        p = self.pos
        if p + 16 > self.end:
            raise self.fail(f"truncated journal: {what} needs 16 bytes")
        self.pos = p + 16
        return _gfid_text(self.data[p:p + 16])

    def uint32(self, what: str) -> int:
        p = self.pos
        if p + 4 > self.end:
            raise self.fail(f"truncated journal: {what} needs 4 bytes")
        self.pos = p + 4
        return int.from_bytes(self.data[p:p + 4], "little")

    def text(self, what: str) -> bytes:
        """Bytes up to (not including) the next NUL; the cursor stays on the NUL."""
        p = self.pos
        q = self.data.find(b"\0", p)
        if q < 0:
            raise self.fail(f"truncated journal: unterminated {what}")
        self.pos = q
        return self.data[p:q]

    def entry(self, what: str) -> tuple[str, str]:
        start = self.pos
        pgfid = self.gfid(f"parent gfid of {what}")
        if self.pos >= self.end or self.data[self.pos] != 0x2F:  # "/"
            raise self.fail(f"expected '/' after the parent gfid of {what}")
        self.pos += 1
        name = self.text(what)
        bname = name.decode("utf-8", "surrogateescape")
        if not bname or "/" in bname or bname in (".", ".."):
            raise self.fail(f"invalid entry name {bname[:80]!r} in {what}", at=start)
        return pgfid, bname


def _decode_binary(data: bytes, header: JournalHeader, path: str) -> Iterator[list[Record]]:
    """Records of a binary journal, a list per :data:`_BATCH` records."""
    cur = _BinaryCursor(data, header.body_offset, path)
    slot = header.delete_path_slot
    out: list[Record] = []
    append = out.append
    names = FOP_NAMES
    while cur.pos < cur.end:
        if len(out) >= _BATCH:
            yield out
            out = []
            append = out.append
        start = cur.pos
        kind = data[start]
        cur.pos += 1
        if kind not in (0x44, 0x45, 0x4D):  # D E M
            raise cur.fail(f"unknown record type byte 0x{kind:02x}", at=start)
        gfid = cur.gfid("record gfid")
        cur.nul("the gfid")
        if kind == 0x44:
            append(DataRecord(gfid))
            continue
        at = cur.pos
        num = cur.uint32("fop")
        fop = names.get(num)
        if fop is None:
            raise cur.fail(f"unknown fop number {num}", at=at)
        cur.nul("the fop")
        if kind == 0x4D:
            append(MetaRecord(gfid, fop))
            continue
        if fop in NEWENTRY_FOPS:
            mode = cur.uint32("mode")
            cur.nul("mode")
            uid = cur.uint32("uid")
            cur.nul("uid")
            gid = cur.uint32("gid")
            cur.nul("gid")
            pgfid, bname = cur.entry(fop)
            cur.nul(f"the {fop} name")
            append(EntryRecord(gfid, fop, pgfid, bname, mode, uid, gid))
        elif fop in NAMED_FOPS:
            pgfid, bname = cur.entry(fop)
            cur.nul(f"the {fop} name")
            append(EntryRecord(gfid, fop, pgfid, bname))
        elif fop == "RENAME":
            pgfid, bname = cur.entry("RENAME source")
            cur.nul("the RENAME source")
            pgfid1, bname1 = cur.entry("RENAME target")
            cur.nul("the RENAME target")
            append(EntryRecord(gfid, fop, pgfid, bname, pgfid1=pgfid1, bname1=bname1))
        elif fop in DELETE_FOPS:
            pgfid, bname = cur.entry(fop)
            if not slot:
                cur.nul(f"the {fop} name")
                append(EntryRecord(gfid, fop, pgfid, bname))
                continue
            cur.nul(f"the {fop} name")
            dpath = cur.text("delete path")
            if dpath:
                cur.nul("the delete path")
                append(EntryRecord(gfid, fop, pgfid, bname,
                                   path=dpath.decode("utf-8", "surrogateescape")))
            else:
                cur.nul("the empty delete-path slot")
                cur.nul(f"the {fop} record")
                append(EntryRecord(gfid, fop, pgfid, bname))
        else:
            raise cur.fail(f"E record with non-entry fop {fop}", at=at)
    if out:
        yield out
