"""Small helpers shared by the analysis subcommands (which brick resolves names)."""

from __future__ import annotations

import os

from ..errors import SourceError

__all__ = ["brick_of", "source_brick"]


def brick_of(path: str) -> str | None:
    """``path`` itself when it is a brick root (has ``.glusterfs/``), else ``None``."""
    if os.path.isdir(os.path.join(path, ".glusterfs")):
        return path
    return None


def source_brick(given: str | None, paths: list[str]) -> str | None:
    """The brick to resolve gfids through: ``--brick`` (checked), else the first PATH
    that is a brick, else ``None``.

    A ``--brick`` that is not a brick is an error, not a silent "no brick": a
    mistyped path must not change the numbers a report shows.

    >>> source_brick(None, ["/nonexistent"]) is None
    True
    >>> source_brick("/etc", [])
    Traceback (most recent call last):
    ...
    streamsync.errors.SourceError: --brick /etc: not a brick directory (no .glusterfs)
    """
    if given is not None:
        if not os.path.isdir(given):
            raise SourceError(f"--brick {given}: no such directory")
        if brick_of(given) is None:
            raise SourceError(f"--brick {given}: not a brick directory (no .glusterfs)")
        return given
    bricks = [b for b in map(brick_of, paths) if b is not None]
    return bricks[0] if bricks else None
