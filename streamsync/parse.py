"""Parse processed changelog text (what libgfchangelog publishes, what gsyncd reads).

One record per ``\\n``-terminated line, fields separated by single spaces::

    D <gfid>
    M <gfid> <FOP>                                   (xsync: + uid gid mode atime mtime)
    E <gfid> CREATE|MKNOD|MKDIR <mode> <uid> <gid> <pgfid>/<bname>
    E <gfid> LINK|SYMLINK <pgfid>/<bname>
    E <gfid> RENAME <pgfid>/<bname> <pgfid1>/<bname1>
    E <gfid> UNLINK|RMDIR <pgfid>/<bname> [<path>]

Names are unescaped (:mod:`streamsync.escaping`). :func:`render_processed` is
the exact inverse for everything libgfchangelog writes, so text -> records ->
text is byte-identical.

A malformed line raises :class:`~streamsync.errors.ParseError` naming the file
and the 1-based line number; pass ``errors=[]`` to collect the errors and go on.

Speed: one compiled regular expression (:func:`well_formed`) first checks, in C
for the whole text, that every line has a shape the line parser accepts; the
lines of such a text are then split without re-checking each field, and only
what the expression cannot tell (an M fop's name, an xsync inline stat, numbers
above 2**32-1) goes through :func:`parse_line`. The fused planner
(:mod:`streamsync.stages.fused`) relies on the same expression.

>>> text = b"E 5b1c2d3e-0000-4000-8000-00000000000a CREATE 33188 0 0 " \\
...        b"00000000-0000-0000-0000-000000000001/my%20notes.txt\\n" \\
...        b"D 5b1c2d3e-0000-4000-8000-00000000000a\\n"
>>> [r.TYPE for r in parse_processed(text)]
['E', 'D']
>>> render_processed(parse_processed(text)) == text
True
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from .errors import ParseError
from .escaping import escape, unescape
from .fops import DELETE_FOPS, FOP_NUMBERS, NAMED_FOPS, NEWENTRY_FOPS
from .records import DataRecord, EntryRecord, MetaRecord, Record, Stat

__all__ = ["parse_processed", "parse_processed_some", "second_digits", "parse_line",
           "render_record", "render_processed", "is_gfid", "split_entry", "well_formed"]

_G = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_N = r"(?!\.\.?(?:[ \n]|\Z))[^ \n/\x00]+"      # an escaped basename field
_U = r"[0-9]{1,10}"
_LINE = (rf"(?:D {_G}|M {_G} [A-Z_]+(?: [^\n]*)?"
         rf"|E {_G} (?:(?:CREATE|MKNOD|MKDIR) {_U} {_U} {_U} {_G}/{_N}"
         rf"|(?:LINK|SYMLINK) {_G}/{_N}|(?:UNLINK|RMDIR) {_G}/{_N}(?: [^ \n]+)?"
         rf"|RENAME {_G}/{_N} {_G}/{_N}))")
_WELL_FORMED = re.compile(rf"(?:{_LINE}\n)*(?:{_LINE})?\Z").match
_MAX = 0xFFFFFFFF
_HEX_DIGITS = frozenset("0123456789abcdef")
_PREFIXES = frozenset(a + b for a in _HEX_DIGITS for b in _HEX_DIGITS)


def well_formed(text: str) -> bool:
    """Whether every line of processed ``text`` has a shape :func:`parse_line`
    accepts (M fop names, M lines with more fields and numbers above 2**32-1
    are left to it).

    >>> well_formed("D 00000000-0000-0000-0000-000000000001\\n"), well_formed("D x\\n")
    (True, False)
    """
    return _WELL_FORMED(text) is not None

_GFID_MATCH = re.compile(_G + r"\Z").match


def is_gfid(text: str) -> bool:
    """True for a canonical lower-case 36-character gfid.

    >>> is_gfid("00000000-0000-0000-0000-000000000001"), is_gfid("../../etc")
    (True, False)
    """
    return len(text) == 36 and _GFID_MATCH(text) is not None


def _shown(text: str) -> str:
    """``repr`` of text as the bytes it came from (undecodable bytes as ``\\xNN``)."""
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return repr(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(raw)


def _uint(text: str, what: str) -> int:
    if not (text.isdigit() and text.isascii()) or len(text) > 10:
        raise ValueError(f"{what} is not an unsigned decimal: {text!r}")
    value = int(text)
    if value > 0xFFFFFFFF:
        raise ValueError(f"{what} out of range: {text!r}")
    return value


#: an xsync inline time: unsigned decimal seconds, optional fraction (no nan,
#: inf, sign, exponent or digit separators, all of which float() would take)
_TIME_RE = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?\Z")


def _time(text: str, what: str) -> float:
    if not _TIME_RE.match(text):
        raise ValueError(f"{what} is not a time in seconds: {text[:40]!r}")
    return float(text)


def split_entry(field: str) -> tuple[str, str]:
    """Split an escaped ``pgfid/bname`` field into ``(pgfid, unescaped bname)``.

    >>> split_entry("00000000-0000-0000-0000-000000000001/a%20b")
    ('00000000-0000-0000-0000-000000000001', 'a b')
    """
    pgfid = field[:36]
    if field[36:37] != "/" or not is_gfid(pgfid):
        raise ValueError(f"not a <pgfid>/<name> field: {field[:80]!r}")
    bname = unescape(field[37:])
    if not bname or "/" in bname or "\0" in bname or bname in (".", ".."):
        raise ValueError(f"invalid entry name: {bname[:80]!r}")
    return pgfid, bname


def parse_line(line: str) -> Record:
    """Parse one processed line (without its newline) into a record.

    Raises ``ValueError`` with a reason; :func:`parse_processed` adds file/line.

    >>> parse_line("M 00000000-0000-0000-0000-000000000001 SETXATTR")
    MetaRecord(gfid='00000000-0000-0000-0000-000000000001', fop='SETXATTR', stat=None)
    """
    kind = line[:2]
    if kind not in ("D ", "M ", "E "):
        raise ValueError(f"unknown record type {_shown(line[:1])} (not E, D or M; "
                         f"a raw journal starts with 'GlusterFS Changelog')")
    parts = line[2:].split(" ")
    gfid = parts[0]
    if not is_gfid(gfid):
        raise ValueError(f"bad gfid {gfid[:80]!r}")
    n = len(parts)
    if kind == "D ":
        if n != 1:
            raise ValueError(f"D record takes 1 field, got {n}")
        return DataRecord(gfid)
    if n < 2:
        raise ValueError("record has no fop")
    fop = parts[1]
    if kind == "M ":
        if fop not in FOP_NUMBERS:
            raise ValueError(f"unknown fop {fop[:40]!r}")
        if n == 2:
            return MetaRecord(gfid, fop)
        if n == 7 and fop == "SETATTR":  # xsync inline stat
            st = Stat(_uint(parts[2], "uid"), _uint(parts[3], "gid"),
                      _uint(parts[4], "mode"), _time(parts[5], "atime"),
                      _time(parts[6], "mtime"))
            return MetaRecord(gfid, fop, st)
        raise ValueError(f"M {fop} record with {n} fields")
    if fop in NEWENTRY_FOPS:
        if n != 6:
            raise ValueError(f"E {fop} takes 6 fields, got {n}")
        pgfid, bname = split_entry(parts[5])
        return EntryRecord(gfid, fop, pgfid, bname, _uint(parts[2], "mode"),
                           _uint(parts[3], "uid"), _uint(parts[4], "gid"))
    if fop in NAMED_FOPS:
        if n != 3:
            raise ValueError(f"E {fop} takes 3 fields, got {n}")
        pgfid, bname = split_entry(parts[2])
        return EntryRecord(gfid, fop, pgfid, bname)
    if fop in DELETE_FOPS:
        if n == 3:
            pgfid, bname = split_entry(parts[2])
            return EntryRecord(gfid, fop, pgfid, bname)
        if n == 4:
            pgfid, bname = split_entry(parts[2])
            path = unescape(parts[3])
            if not path:
                raise ValueError("empty delete path")
            return EntryRecord(gfid, fop, pgfid, bname, path=path)
        raise ValueError(f"E {fop} takes 3 or 4 fields, got {n}")
    if fop == "RENAME":
        if n != 4:
            raise ValueError(f"E RENAME takes 4 fields, got {n}")
        pgfid, bname = split_entry(parts[2])
        pgfid1, bname1 = split_entry(parts[3])
        return EntryRecord(gfid, fop, pgfid, bname, pgfid1=pgfid1, bname1=bname1)
    if fop in FOP_NUMBERS:
        raise ValueError(f"{fop} is not an entry fop")
    raise ValueError(f"unknown fop {fop[:40]!r}")


def parse_processed(data: bytes | str, *, path: str = "<string>",
                    errors: list[ParseError] | None = None,
                    first_line: int = 1) -> Iterator[Record]:
    """Records of a processed changelog, in file order.

    ``data`` is the whole file (bytes are decoded with ``surrogateescape``, so
    any byte survives). A malformed line raises :class:`ParseError` naming
    ``path`` and the line number, unless ``errors`` is a list: then the error
    is appended there and the line skipped (nothing is dropped silently).

    >>> bad = []
    >>> list(parse_processed(b"X what\\n", path="C.1", errors=bad)), bad[0].line
    ([], 1)
    >>> str(bad[0])[:32]
    "C.1:1: unknown record type 'X' ("
    """
    text, lines = _text_lines(data)
    if _WELL_FORMED(text) is not None:
        yield from _checked_lines(enumerate(lines, first_line), path, errors)
        return
    for lineno, line in enumerate(lines, first_line):
        try:
            yield parse_line(line)
        except ValueError as exc:
            _failed(exc, line, lineno, path, errors)


def parse_processed_some(data: bytes | str, select: frozenset[str] | set[str], *,
                         path: str = "<string>", strays: bool = False
                         ) -> Iterator[tuple[int, Record]]:
    """``(index, record)`` for the lines of a processed changelog whose gfid starts
    with one of the two-hex-digit prefixes in ``select`` (one shard of its gfids).

    Only those lines are checked (as :func:`parse_processed` checks them) and the
    first bad one raises :class:`ParseError`; ``strays=True`` also takes, and so
    checks, the lines that start with no gfid prefix (lines nobody's shard would
    hold, so always errors): with one caller passing it, shards covering every
    prefix check the whole file together. An index is the record's position in
    the whole file.

    >>> text = (b"D 5b1c2d3e-0000-4000-8000-00000000000a\\n"
    ...         b"D 00000000-0000-0000-0000-000000000001\\n")
    >>> [(i, r.gfid[:8]) for i, r in parse_processed_some(text, {"00"})]
    [(1, '00000000')]
    >>> list(parse_processed_some(text + b"oops\\n", {"5b"}, path="C.1", strays=True))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    streamsync.errors.ParseError: C.1:3: unknown record type 'o' ...
    """
    _, lines = _text_lines(data)
    kept = _select_lines(lines, select, strays)
    mine = [lines[i] for i in kept]
    if _WELL_FORMED("\n".join(mine)) is not None:
        # errors raise, so each kept index meets its record
        yield from zip(kept, _checked_lines(zip([i + 1 for i in kept], mine), path, None))
        return
    for i, line in zip(kept, mine):
        try:
            yield i, parse_line(line)
        except ValueError as exc:
            _failed(exc, line, i + 1, path, None)


def second_digits(select: frozenset[str] | set[str]) -> frozenset[str] | None:
    """The second hex digits that alone decide whether a gfid starts with one of the
    two-digit prefixes in ``select``, when it holds every prefix ending in them (the
    gfid shards of a count dividing 16); else ``None``. A shard's reader then
    tests one character of each line or record, not a slice of two.

    >>> sorted(second_digits({a + b for a in "0123456789abcdef" for b in "08"}))
    ['0', '8']
    >>> second_digits({"00", "10"}) is None
    True
    """
    seconds = frozenset(p[1:2] for p in select)
    if seconds and len(select) == 16 * len(seconds) and select <= _PREFIXES:
        return seconds
    return None


def _select_lines(lines: list[str], select: frozenset[str] | set[str], strays: bool) -> list[int]:
    """Indexes of the lines :func:`parse_processed_some` takes. When one character
    decides (:func:`second_digits`), a third cheaper, a line whose gfid begins
    with no hex digit goes to the shard its second character names, which checks
    it as it would check any line (the line is bad either way)."""
    seconds = second_digits(select)
    if seconds is not None:
        if strays:  # every line but the others': strays included
            others = _HEX_DIGITS - seconds
            return [i for i, line in enumerate(lines) if line[3:4] not in others]
        return [i for i, line in enumerate(lines) if line[3:4] in seconds]
    if strays:
        return [i for i, line in enumerate(lines)
                if line[2:4] in select or line[2:4] not in _PREFIXES]
    return [i for i, line in enumerate(lines) if line[2:4] in select]


def _text_lines(data: bytes | str) -> tuple[str, list[str]]:
    """The text (any byte survives, as ``surrogateescape``) and its lines, without the
    empty one a final newline leaves."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return text, lines


def _failed(exc: ValueError, line: str, lineno: int, path: str,
            errors: list[ParseError] | None) -> None:
    err = ParseError(str(exc), path=path, line=lineno, text=line[:200])
    if errors is None:
        raise err from None
    errors.append(err)


def _checked_lines(numbered: Iterable[tuple[int, str]], path: str,
                   errors: list[ParseError] | None) -> Iterator[Record]:
    """The records of ``(line number, line)`` pairs :func:`well_formed` accepted:
    fields are sliced, not re-checked; what the expression cannot tell goes through
    :func:`parse_line`."""
    new = tuple.__new__  # a record without NamedTuple's Python-level __new__
    fops = FOP_NUMBERS
    for lineno, line in numbered:
        k = line[0]
        if k == "D":
            yield new(DataRecord, (line[2:],))
            continue
        if k == "M":
            gfid, _, fop = line[2:].partition(" ")
            if fop in fops:
                yield new(MetaRecord, (gfid, fop, None))
                continue
        else:
            parts = line.split(" ")
            fop = parts[2]
            if fop in NEWENTRY_FOPS:
                mode, uid, gid = int(parts[3]), int(parts[4]), int(parts[5])
                if mode <= _MAX and uid <= _MAX and gid <= _MAX:
                    f = parts[6]
                    yield new(EntryRecord, (parts[1], fop, f[:36], unescape(f[37:]), mode, uid,
                                            gid, None, None, None))
                    continue
            else:
                f = parts[3]
                if fop == "RENAME":
                    f1 = parts[4]
                    yield new(EntryRecord, (parts[1], fop, f[:36], unescape(f[37:]), None, None,
                                            None, f1[:36], unescape(f1[37:]), None))
                else:
                    yield new(EntryRecord, (parts[1], fop, f[:36], unescape(f[37:]), None, None,
                                            None, None, None,
                                            unescape(parts[4]) if len(parts) == 5 else None))
                continue
        try:  # the line parser decides (and names what is wrong)
            yield parse_line(line)
        except ValueError as exc:
            _failed(exc, line, lineno, path, errors)


def _float_text(x: float) -> str:
    return str(float(x))


def render_record(record: Record) -> str:
    """One processed line (no newline) for a record; inverse of :func:`parse_line`.

    >>> render_record(EntryRecord("5b1c2d3e-0000-4000-8000-00000000000a", "UNLINK",
    ...     "00000000-0000-0000-0000-000000000001", "a b", path="a b"))
    'E 5b1c2d3e-0000-4000-8000-00000000000a UNLINK 00000000-0000-0000-0000-000000000001/a%20b a%20b'
    """
    t = record.TYPE
    if t == "D":
        return "D " + record.gfid
    if t == "M":
        st = record.stat  # type: ignore[union-attr]
        if st is None:
            return f"M {record.gfid} {record.fop}"  # type: ignore[union-attr]
        return (f"M {record.gfid} {record.fop} {st.uid} {st.gid} {st.mode} "  # type: ignore[union-attr]
                f"{_float_text(st.atime)} {_float_text(st.mtime)}")
    r: EntryRecord = record  # type: ignore[assignment]
    name = f"{r.pgfid}/{escape(r.bname)}"
    if r.mode is not None:
        return f"E {r.gfid} {r.fop} {r.mode} {r.uid} {r.gid} {name}"
    if r.pgfid1 is not None:
        return f"E {r.gfid} {r.fop} {name} {r.pgfid1}/{escape(r.bname1)}"  # type: ignore[arg-type]
    if r.path is not None:
        return f"E {r.gfid} {r.fop} {name} {escape(r.path)}"
    return f"E {r.gfid} {r.fop} {name}"


def render_processed(records: Iterable[Record]) -> bytes:
    """Processed text for records, byte-identical to libgfchangelog's output.

    >>> render_processed([DataRecord("00000000-0000-0000-0000-000000000001")])
    b'D 00000000-0000-0000-0000-000000000001\\n'
    """
    out = "".join(render_record(r) + "\n" for r in records)
    return out.encode("utf-8", "surrogateescape")
