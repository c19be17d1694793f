"""Archive processed changelogs as gsyncd does: append to ``archive_<fmt>.tar``, then remove.

Only for journals in a working directory streamsync owns (never a brick's own
``.glusterfs/changelogs``). The archive name is
``archive_<strftime(changelog-archive-format)>.tar`` in the journal's
directory; appending a member that is already in the archive (a replay after a
crash between append and unlink) is skipped.

>>> import tempfile, os
>>> d = tempfile.mkdtemp(); p = os.path.join(d, "CHANGELOG.1700000000")
>>> _ = open(p, "w").write("D 00000000-0000-0000-0000-000000000001\\n")
>>> out = archive_and_purge([p], fmt="%Y%m", now=0)
>>> os.path.basename(out[0]), os.path.exists(p)
('archive_197001.tar', False)
"""

from __future__ import annotations

import os
import tarfile
import time
from typing import Iterable

from .errors import StateError

__all__ = ["archive_and_purge", "archive_name"]


def archive_name(fmt: str = "%Y%m", now: float | None = None) -> str:
    """``archive_<strftime(fmt)>.tar`` (UTC)."""
    return "archive_" + time.strftime(fmt, time.gmtime(time.time() if now is None else now)) + ".tar"


def archive_and_purge(paths: Iterable[str], *, fmt: str = "%Y%m",
                      now: float | None = None) -> list[str]:
    """Append each journal file to the archive of its directory, then unlink it.
    Returns the archives written to."""
    by_dir: dict[str, list[str]] = {}
    for p in paths:
        by_dir.setdefault(os.path.dirname(os.path.abspath(p)), []).append(p)
    written = []
    for d, files in by_dir.items():
        arch = os.path.join(d, archive_name(fmt, now))
        try:
            existing: set[str] = set()
            if os.path.exists(arch):
                with tarfile.open(arch, "r") as tf:
                    existing = set(tf.getnames())
            with tarfile.open(arch, "a") as tf:
                for p in files:
                    name = os.path.basename(p)
                    if not os.path.exists(p):
                        continue
                    if name not in existing:
                        tf.add(p, arcname=name)
            for p in files:
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
        except (OSError, tarfile.TarError) as exc:
            raise StateError(f"{arch}: cannot archive changelogs: {exc}") from exc
        written.append(arch)
    return written
