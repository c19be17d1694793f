"""Find journals and read them: the first stage of every pipeline.

:func:`discover` lists ``CHANGELOG.<ts>`` files in timestamp order from any mix
of inputs:

* a journal file (raw or processed, ``CHANGELOG.<ts>`` or ``XSYNC-CHANGELOG.<ts>``);
* a changelog directory, flat (``CHANGELOG.<ts>``, GlusterFS < 8) or dated
  (``YYYY/MM/DD/CHANGELOG.<ts>``, GlusterFS >= 8);
* a brick directory (its ``.glusterfs/changelogs`` is used);
* gsyncd's ``archive_<fmt>.tar`` files (each ``CHANGELOG.<ts>`` member), also
  when found inside a directory.

:func:`history` answers a time-range query through the HTIME index as
libgfchangelog's history API does (range by binary search, empty rollovers
skipped, partial history detected).

:func:`read_changelog` yields the records of one journal, detecting raw brick
journals (decoded, see :mod:`streamsync.decode`) and processed text (parsed,
see :mod:`streamsync.parse`).

>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> for ts in (1700000030, 1700000015):
...     _ = open(os.path.join(d, f"CHANGELOG.{ts}"), "w").write("D 00000000-0000-0000-0000-000000000001\\n")
>>> [c.ts for c in discover([d])]
[1700000015, 1700000030]
>>> [r.TYPE for r in read_changelog(next(discover([d])))]
['D']
"""

from __future__ import annotations

import bisect
import enum
import os
import re
import tarfile
import time
from typing import Iterable, Iterator, NamedTuple, Sequence

from .decode import decode_journal, is_raw_journal
from .errors import JournalError, ParseError, SourceError
from .stamps import check_stamp
from .parse import parse_processed
from .records import Changelog, Record

__all__ = [
    "discover",
    "changelog_dir_of",
    "read_changelog",
    "read_changelog_bytes",
    "HtimeEntry",
    "HistoryRange",
    "read_htime",
    "history",
    "overwritten_journals",
    "HtimeWatch",
    "HistoryStatus",
    "HISTORY_OK",
    "HISTORY_PARTIAL",
    "HISTORY_UNAVAILABLE",
]

_JOURNAL_RE = re.compile(r"(XSYNC-)?CHANGELOG\.(\d+)\Z")
_ARCHIVE_RE = re.compile(r"archive_.*\.tar\Z")
_DIGITS = {4: re.compile(r"\d{4}\Z"), 2: re.compile(r"\d{2}\Z")}

class HistoryStatus(enum.IntEnum):
    """What :func:`history` found; the values are libgfchangelog's return codes.

    >>> HistoryStatus(-2).name, HistoryStatus.PARTIAL == 1
    ('UNAVAILABLE', True)
    """

    #: the index covers the whole requested range
    OK = 0
    #: the index ends more than 20 s before the requested end
    PARTIAL = 1
    #: no HTIME index covers the start
    UNAVAILABLE = -2


HISTORY_OK = HistoryStatus.OK
HISTORY_PARTIAL = HistoryStatus.PARTIAL
HISTORY_UNAVAILABLE = HistoryStatus.UNAVAILABLE
#: libgfchangelog reports partial history when ``end - 20 > last_ts``
_PARTIAL_SLACK = 20


def _journal_kind(name: str) -> tuple[int, str] | None:
    m = _JOURNAL_RE.match(name)
    if m is None:
        return None
    return int(m[2]), ("xsync" if m[1] else "live")


def changelog_dir_of(path: str | os.PathLike[str]) -> str:
    """The changelog directory for a brick or a changelog directory.

    >>> changelog_dir_of("/nonexistent/brick")
    '/nonexistent/brick'
    """
    p = os.fspath(path)
    inner = os.path.join(p, ".glusterfs", "changelogs")
    return inner if os.path.isdir(inner) else p


def _archive_members(path: str, kind: str) -> Iterator[Changelog]:
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                hit = _journal_kind(os.path.basename(member.name))
                if hit is not None:
                    ts, k = hit
                    yield Changelog(path, ts, member.size, "xsync" if k == "xsync" else kind,
                                    member.name)
    except (tarfile.TarError, OSError) as exc:
        raise SourceError(f"{path}: cannot read archive: {exc}") from None


def _file(path: str, name: str, kind: str | None) -> Changelog | None:
    hit = _journal_kind(name)
    if hit is None:
        return None
    ts, k = hit
    return Changelog(path, ts, os.stat(path).st_size, k if kind is None or k == "xsync" else kind)


def _scan_dir(top: str, kind: str | None) -> Iterator[Changelog]:
    try:
        entries = list(os.scandir(top))
    except OSError as exc:
        raise SourceError(f"{top}: cannot list directory: {exc}") from None
    for entry in entries:
        name = entry.name
        if entry.is_file(follow_symlinks=False):
            cl = _file(entry.path, name, kind)
            if cl is not None:
                yield cl
            elif _ARCHIVE_RE.match(name):
                yield from _archive_members(entry.path, kind or "live")
        elif entry.is_dir(follow_symlinks=False) and _DIGITS[4].match(name):
            yield from _scan_dated(entry.path, 2, kind)


def _scan_dated(top: str, depth: int, kind: str | None) -> Iterator[Changelog]:
    """``YYYY/MM/DD`` below a changelog directory (depth 2 = months, 1 = days, 0 = files)."""
    for entry in os.scandir(top):
        if depth == 0:
            if entry.is_file(follow_symlinks=False):
                cl = _file(entry.path, entry.name, kind)
                if cl is not None:
                    yield cl
        elif entry.is_dir(follow_symlinks=False) and _DIGITS[2].match(entry.name):
            yield from _scan_dated(entry.path, depth - 1, kind)


#: directory names that are journal places even while they hold no journal yet
_JOURNAL_PLACES = frozenset({"changelogs", ".processed", ".processing", ".current", ".history",
                             "xsync"})
#: what a brick's changelog directory holds besides journals
_CHANGELOG_DIR_MARKS = ("htime", "csnap", "CHANGELOG")


def _journal_place(top: str, cdir: str) -> bool:
    """Whether ``top`` (with changelog directory ``cdir``) is somewhere journals live,
    so that finding none there means "nothing yet", not "wrong directory"."""
    if os.path.isdir(os.path.join(top, ".glusterfs")):
        return True
    if os.path.basename(os.path.normpath(cdir)) in _JOURNAL_PLACES:
        return True
    return any(os.path.lexists(os.path.join(cdir, m)) for m in _CHANGELOG_DIR_MARKS)


def discover(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str], *,
             since: int | None = None, until: int | None = None,
             kind: str | None = None, allow_empty: bool = False) -> Iterator[Changelog]:
    """Every journal under ``paths``, in timestamp order (ties by name, then path).

    ``since``/``until`` keep journals with ``since <= ts <= until``. ``kind``
    overrides the kind of ``CHANGELOG.<ts>`` journals (``XSYNC-`` ones stay
    ``"xsync"``). The active journal ``CHANGELOG`` (no timestamp), ``htime/``
    and ``csnap/`` are not journals and are ignored. A path that does not exist
    raises :class:`~streamsync.errors.SourceError`, and so does a journal whose
    stamp cannot be one (beyond a GlusterFS stime's 32 bits), and so does a
    directory without a journal that is not a brick or a changelog directory
    (``/etc``, a brick's ``.glusterfs``: a mistyped path), unless ``allow_empty``.

    >>> list(discover([]))
    []
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Changelog] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            cdir = changelog_dir_of(p)
            before = len(found)
            found.extend(_scan_dir(cdir, kind))
            if len(found) == before and not allow_empty and not _journal_place(p, cdir):
                raise SourceError(f"{p}: no journals here (not a brick, a changelog directory, "
                                  f"or a directory of CHANGELOG.<ts> or archive_*.tar files)")
        elif os.path.isfile(p):
            name = os.path.basename(p)
            if _ARCHIVE_RE.match(name) or (tarfile.is_tarfile(p) and _journal_kind(name) is None):
                found.extend(_archive_members(p, kind or "live"))
                continue
            cl = _file(p, name, kind)
            if cl is None:
                raise SourceError(f"{p}: not a journal name (expected CHANGELOG.<ts>, "
                                  f"XSYNC-CHANGELOG.<ts> or archive_*.tar)")
            found.append(cl)
        else:
            raise SourceError(f"{p}: no such file or directory")
    for cl in found:
        check_stamp(f"{cl.path}:{cl.member}" if cl.member else cl.path, cl.ts)
    found.sort(key=lambda c: (c.ts, c.name, c.path, c.member or ""))
    for cl in found:
        if (since is None or cl.ts >= since) and (until is None or cl.ts <= until):
            yield cl


def read_changelog_bytes(changelog: Changelog) -> bytes:
    """The bytes of one journal (a file, or a member of an archive).

    >>> journal = next(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))
    >>> read_changelog_bytes(journal)[:50]
    b'GlusterFS Changelog | version: v1.2 | encoding : 2'
    """
    try:
        if changelog.member is None:
            with open(changelog.path, "rb") as fh:
                return fh.read()
        with tarfile.open(changelog.path) as tar:
            fh = tar.extractfile(changelog.member)
            if fh is None:
                raise SourceError(f"{changelog.path}: {changelog.member} is not a file")
            return fh.read()
    except (OSError, tarfile.TarError, KeyError) as exc:
        raise SourceError(f"{changelog.where}: cannot read: {exc}") from None


def read_changelog(changelog: Changelog, *, errors: list[ParseError] | None = None
                   ) -> Iterator[Record]:
    """Records of one journal, raw or processed (detected from the first bytes).

    Raw journals are validated as a whole before the first record is yielded
    (:class:`~streamsync.errors.JournalError` otherwise). Processed text raises
    :class:`~streamsync.errors.ParseError` on a bad line, or appends to
    ``errors`` and goes on when a list is given.

    >>> journal = list(discover("tests/data/gluster-10.3/raw/ascii-delpath-on"))[1]
    >>> first = next(read_changelog(journal))
    >>> first.fop, first.bname, first.pgfid
    ('MKDIR', 'top', '00000000-0000-0000-0000-000000000001')
    """
    data = read_changelog_bytes(changelog)
    where = changelog.where
    if is_raw_journal(data):
        yield from decode_journal(data, path=where)
    else:
        yield from parse_processed(data, path=where, errors=errors)


# --------------------------------------------------------------------------- HTIME


class HtimeEntry(NamedTuple):
    """One rollover listed in an HTIME index.

    ``empty`` is True for ``changelog.<ts>`` entries (rollovers that logged
    nothing, so no file exists); ``path`` is the path as the brick wrote it.
    """

    ts: int
    path: str
    empty: bool


class HistoryRange(NamedTuple):
    """The answer of :func:`history`.

    ``status``: a :class:`HistoryStatus`: ``OK``, ``PARTIAL`` (the index ends
    more than 20 s before the requested end) or ``UNAVAILABLE`` (no HTIME file
    covers ``start``; ``changelogs`` is empty). ``actual_end`` is the stamp of
    the last entry returned (or ``start`` when none).
    """

    changelogs: list[Changelog]
    status: HistoryStatus
    actual_end: int
    htime: str | None


def read_htime(path: str | os.PathLike[str]) -> list[HtimeEntry]:
    """The entries of an ``HTIME.<ts>`` file, in file order.

    Raises :class:`~streamsync.errors.JournalError` for an entry that does
    not end in a ``.<10-digit stamp>``.

    >>> entries = read_htime("tests/data/gluster-10.3/raw/ascii-delpath-on/htime/HTIME.1795466999")
    >>> len(entries), entries[0].ts, entries[0].empty, os.path.basename(entries[0].path)
    (85, 1795467000, True, 'changelog.1795467000')
    """
    p = os.fspath(path)
    with open(p, "rb") as fh:
        data = fh.read()
    out: list[HtimeEntry] = []
    off = 0
    for raw in data.split(b"\0"):
        if raw:
            text = os.fsdecode(raw)
            base = os.path.basename(text)
            m = re.fullmatch(r"(CHANGELOG|changelog)\.(\d+)", base)
            if m is None:
                raise JournalError(f"HTIME entry is not a changelog path: {text[:120]!r}",
                                   path=p, offset=off)
            out.append(HtimeEntry(int(m[2]), text, m[1] == "changelog"))
        off += len(raw) + 1
    return out


class HtimeWatch:
    """Journals the brick wrote more than once, read incrementally from HTIME.

    HTIME lists every rollover. GlusterFS 10.3 can roll over several times in one
    second (seen at ``changelog.rollover-time 1``); when two of those rollovers
    had changes they get the same name ``CHANGELOG.<ts>`` and the later file
    replaces the earlier one: the changes in the first are lost on the brick
    before any consumer sees them. Such a stamp is listed twice, non-empty.
    Each call reads only what HTIME gained since the last one.

    >>> HtimeWatch("/nonexistent").overwritten()
    []
    """

    def __init__(self, changelog_dir: str | os.PathLike[str]) -> None:
        self.hdir = os.path.join(changelog_dir_of(changelog_dir), "htime")
        self._offsets: dict[str, int] = {}
        self._seen: dict[int, int] = {}

    def overwritten(self, since: int = 0) -> list[int]:
        """Stamps > ``since`` listed more than once (older ones are forgotten)."""
        try:
            names = [n for n in os.listdir(self.hdir) if re.fullmatch(r"HTIME\.\d+", n)]
        except OSError:
            return []
        for name in names:
            path = os.path.join(self.hdir, name)
            try:
                with open(path, "rb") as fh:
                    fh.seek(self._offsets.get(name, 0))
                    data = fh.read()
            except OSError:
                continue
            end = data.rfind(b"\0") + 1  # whole entries only
            self._offsets[name] = self._offsets.get(name, 0) + end
            for raw in data[:end].split(b"\0"):
                m = re.search(rb"/CHANGELOG\.(\d+)\Z", raw)
                if m is not None:
                    ts = int(m[1])
                    self._seen[ts] = self._seen.get(ts, 0) + 1
        if since:
            self._seen = {ts: n for ts, n in self._seen.items() if ts > since}
        return sorted(ts for ts, n in self._seen.items() if n > 1 and ts > since)


def overwritten_journals(changelog_dir: str | os.PathLike[str], *, since: int = 0) -> list[int]:
    """Stamps of journals the brick wrote more than once (see :class:`HtimeWatch`).

    >>> overwritten_journals("tests/data/gluster-10.3/raw/ascii-delpath-on")
    []
    """
    return HtimeWatch(changelog_dir).overwritten(since)


def _htime_last_ts(path: str, entries: Sequence[HtimeEntry]) -> int:
    """``last_ts`` from the ``trusted.glusterfs.htime`` xattr, else the last entry."""
    try:
        value = os.getxattr(path, "trusted.glusterfs.htime").split(b"\0")[0].decode()
        last = int(value.split(":")[0])
        if last > 0:
            return last
    except (OSError, ValueError, AttributeError):
        pass
    return entries[-1].ts if entries else 0


def _local_journal(changelog_dir: str, brick_path: str) -> str | None:
    """Map a path written into HTIME (absolute, on the brick) to a local file."""
    marker = "/.glusterfs/changelogs/"
    i = brick_path.rfind(marker)
    rel = brick_path[i + len(marker):] if i >= 0 else os.path.basename(brick_path)
    for cand in (os.path.join(changelog_dir, rel),
                 os.path.join(changelog_dir, os.path.basename(brick_path))):
        if os.path.isfile(cand):
            return cand
    return None


def history(changelog_dir: str | os.PathLike[str], start: int, end: int | None = None
            ) -> HistoryRange:
    """Journals of ``[start, end]`` through the HTIME index, as gsyncd's history crawl gets them.

    Picks the HTIME file whose range ``[name ts, last_ts]`` holds ``start``,
    binary-searches the first entry with stamp >= ``start`` and the first with
    stamp >= ``min(end, last_ts)``, and returns the non-empty journals between
    them (inclusive). A listed journal missing on disk raises
    :class:`~streamsync.errors.SourceError` (history would be silently incomplete).

    >>> h = history("tests/data/gluster-10.3/raw/ascii-delpath-on", 1795467010, 1795467030)
    >>> h.status, [c.ts for c in h.changelogs], h.actual_end
    (<HistoryStatus.OK: 0>, [1795467011, 1795467017, 1795467021, 1795467023, 1795467027], 1795467030)
    >>> history("/bricks/nowhere", 1795467000).status
    <HistoryStatus.UNAVAILABLE: -2>
    """
    cdir = changelog_dir_of(changelog_dir)
    end = int(time.time()) if end is None else end
    hdir = os.path.join(cdir, "htime")
    try:
        names = sorted((n for n in os.listdir(hdir) if re.fullmatch(r"HTIME\.\d+", n)),
                       key=lambda n: int(n.split(".")[1]))
    except OSError:
        names = []
    for name in reversed(names):
        hpath = os.path.join(hdir, name)
        first = int(name.split(".")[1])
        entries = read_htime(hpath)
        last_ts = _htime_last_ts(hpath, entries)
        if not entries or not (first <= start <= last_ts):
            continue
        stamps = [e.ts for e in entries]
        lo = bisect.bisect_left(stamps, start)
        hi = bisect.bisect_left(stamps, min(end, last_ts))
        hi = min(hi, len(entries) - 1)
        picked: list[Changelog] = []
        for e in entries[lo:hi + 1]:
            if e.empty:
                continue
            local = _local_journal(cdir, e.path)
            if local is None:
                raise SourceError(f"{hpath}: journal {e.path} is listed but not found under {cdir}")
            picked.append(Changelog(local, e.ts, os.stat(local).st_size, "history"))
        actual_end = entries[hi].ts if lo <= hi else start
        status = HISTORY_PARTIAL if end - _PARTIAL_SLACK > last_ts else HISTORY_OK
        return HistoryRange(picked, status, actual_end, hpath)
    return HistoryRange([], HISTORY_UNAVAILABLE, start, None)
