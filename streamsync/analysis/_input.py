"""Where the analysis gets its journals from: :mod:`streamsync.discover`.

Files, changelog directories (flat or dated, raw or processed), bricks and
gsyncd ``archive_*.tar`` files are all accepted.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

from ..discover import discover, read_changelog
from ..records import Changelog, Record

__all__ = ["iter_journals", "path_list", "read_records", "changelog_records"]


def iter_journals(paths: Iterable[str | os.PathLike], *, since: int | None = None,
                  until: int | None = None) -> Iterator[Changelog]:
    """Every journal under ``paths``, in ts order (``since <= ts <= until`` when given).

    >>> [c.ts for c in iter_journals(["tests/data/gluster-10.3/processed/ascii-delpath-on"])][:2]
    [1795467001, 1795467006]
    """
    return discover(path_list(paths), since=since, until=until)


def path_list(paths: Iterable[str | os.PathLike] | str | os.PathLike) -> list[str]:
    """One path or many, as a list (a string is one path, never its characters).

    >>> path_list("/bricks/b1"), path_list(["a", "b"])
    (['/bricks/b1'], ['a', 'b'])
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        return [os.fsdecode(os.fspath(paths))]
    return [os.fspath(p) for p in paths]


def read_records(changelog: Changelog) -> Iterator[Record]:
    """The records of one journal (raw or processed), in file order."""
    return read_changelog(changelog)


def changelog_records(changelogs: Iterable[Changelog]) -> Iterator[tuple[Changelog, list[Record]]]:
    """``(changelog, records)`` pairs, reading each journal fully (errors name the file)."""
    for c in changelogs:
        yield c, list(read_changelog(c))
