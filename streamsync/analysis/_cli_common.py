"""Small helpers shared by the analysis subcommands (bricks, progress)."""

from __future__ import annotations

import os
import sys
from typing import Callable

from ..errors import SourceError
from ..records import Changelog

__all__ = ["brick_of", "source_brick", "progress_bar"]


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


def progress_bar(total: int | None, *, stream=None, label: str = "journals"
                 ) -> Callable[[Changelog], None] | None:
    """A callback drawing a one-line progress bar on ``stream`` (stderr), or ``None``
    when that stream is not a terminal (no progress output in pipes and logs)."""
    stream = stream if stream is not None else sys.stderr
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    state = {"n": 0}
    width = 30

    def tick(changelog: Changelog) -> None:
        state["n"] += 1
        n = state["n"]
        if total:
            frac = min(1.0, n / total)
            bar = "#" * int(frac * width)
            stream.write(f"\r[{bar:<{width}}] {n}/{total} {label} (ts {changelog.ts})")
            if n >= total:
                stream.write("\n")
        else:
            stream.write(f"\r{n} {label} (ts {changelog.ts})")
        stream.flush()

    return tick
