"""The target-namespace protocol the secondary's rules are written over.

Everything is addressed as gsyncd addresses a secondary: an object by its gfid,
a name by ``(parent gfid, basename)``. A backend answers lookups and performs
single namespace operations; it decides nothing (the rules do) and raises
``OSError`` with the system's errno when an operation fails.

>>> from streamsync.secondary.gfid_mount import GfidMount
>>> isinstance(GfidMount.__new__(GfidMount), Namespace)
True
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..records import Stat

__all__ = ["Namespace", "Absent"]


class Absent(Exception):
    """A parent directory (or the object an operation needs) is not on the target."""


@runtime_checkable
class Namespace(Protocol):
    """What a secondary must answer and do (see the module docstring)."""

    def kind(self, gfid: str) -> int | None:
        """``S_IFMT`` of the object ``gfid`` on the target, ``None`` when absent."""

    def name_gfid(self, pgfid: str, name: str) -> str | None:
        """The gfid at ``pgfid/name``; ``None`` when the name is free; ``""`` for
        an object that carries no gfid. Raises :class:`Absent` when ``pgfid`` is
        not on the target."""

    def dir_location(self, gfid: str) -> tuple[str, str] | None:
        """``(parent gfid, name)`` of the directory ``gfid``, ``None`` if unknown."""

    def create(self, pgfid: str, name: str, gfid: str, mode: int, uid: int, gid: int,
               target: str | None = None) -> None:
        """Make ``pgfid/name`` with gfid ``gfid``: type and permissions from
        ``mode``, owner ``uid:gid``, symlink ``target`` for a symlink."""

    def link(self, gfid: str, pgfid: str, name: str) -> None:
        """Add ``pgfid/name`` as a hard link of the non-directory ``gfid``."""

    def rename(self, pgfid: str, name: str, pgfid1: str, name1: str) -> None:
        """Move ``pgfid/name`` to ``pgfid1/name1`` (a free name)."""

    def unlink(self, pgfid: str, name: str) -> None:
        """Remove the non-directory name ``pgfid/name``."""

    def rmdir(self, pgfid: str, name: str, gfid: str) -> None:
        """Remove the directory ``pgfid/name`` (gfid ``gfid``), with what is inside."""

    def set_attrs(self, gfid: str, stat: Stat) -> list[tuple[int, str]]:
        """Owner, then mode and times (not for symlinks); the ``(errno, what)`` of
        each step that failed. Raises :class:`Absent` when ``gfid`` is absent."""

    # optional: ``settle(gfid, pgfid, name)`` - a directory RENAME found already
    # applied (a replay): make the target's own records (a handle index) agree
