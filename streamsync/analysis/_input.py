"""Where the analysis gets its journals from.

Uses :mod:`streamsync.discover` (raw and processed journals, dated layouts,
archives) when it is available; otherwise falls back to listing processed
``CHANGELOG.<ts>`` files and parsing them with :func:`streamsync.parse.parse_processed`.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

from ..errors import SourceError
from ..parse import parse_processed
from ..records import Changelog, Record, changelog_ts

__all__ = ["iter_journals", "read_records", "changelog_records"]

_NAMES = ("CHANGELOG.", "XSYNC-CHANGELOG.")


def _is_journal_name(name: str) -> bool:
    if not name.startswith(_NAMES):
        return False
    return name.rsplit(".", 1)[-1].isdigit()


def _fallback_discover(paths: Iterable[str]) -> Iterator[Changelog]:
    found: list[Changelog] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if d not in ("htime", "csnap"))
                for fn in filenames:
                    if _is_journal_name(fn):
                        full = os.path.join(dirpath, fn)
                        kind = "xsync" if fn.startswith("XSYNC") else "live"
                        found.append(Changelog(full, changelog_ts(fn), os.path.getsize(full), kind))
        elif os.path.isfile(p):
            fn = os.path.basename(p)
            if not _is_journal_name(fn):
                raise SourceError(f"{p}: not a CHANGELOG.<ts> journal")
            found.append(Changelog(p, changelog_ts(fn), os.path.getsize(p)))
        else:
            raise SourceError(f"{p}: no such file or directory")
    found.sort(key=lambda c: (c.ts, c.path))
    return iter(found)


def iter_journals(paths: Iterable[str]) -> Iterator[Changelog]:
    """Every journal under ``paths`` (files, changelog directories, bricks), in ts order.

    >>> [c.ts for c in iter_journals(["tests/data/gluster-10.3/processed/ascii-delpath-on"])][:2]
    [1795467001, 1795467006]
    """
    paths = [os.fspath(p) for p in paths]
    try:
        from ..discover import discover  # type: ignore[attr-defined]
    except ImportError:
        return _fallback_discover(paths)
    return discover(paths)


def _fallback_read(changelog: Changelog) -> Iterator[Record]:
    if changelog.member is not None:
        import tarfile
        with tarfile.open(changelog.path) as tf:
            f = tf.extractfile(changelog.member)
            if f is None:
                raise SourceError(f"{changelog.path}: member {changelog.member} is not a file")
            data = f.read()
        where = f"{changelog.path}:{changelog.member}"
    else:
        with open(changelog.path, "rb") as f:
            data = f.read()
        where = changelog.path
    if data.startswith(b"GlusterFS Changelog"):
        raise SourceError(f"{where}: raw brick journal needs streamsync.discover/decode")
    return parse_processed(data, path=where)


def read_records(changelog: Changelog) -> Iterator[Record]:
    """The records of one journal (raw or processed), in file order."""
    try:
        from ..discover import read_changelog  # type: ignore[attr-defined]
    except ImportError:
        return _fallback_read(changelog)
    return read_changelog(changelog)


def changelog_records(changelogs: Iterable[Changelog]) -> Iterator[tuple[Changelog, list[Record]]]:
    """``(changelog, records)`` pairs, reading each journal fully (errors name the file)."""
    for c in changelogs:
        yield c, list(read_records(c))
