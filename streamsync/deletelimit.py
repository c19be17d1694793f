"""A safety limit on deletes: ``-o max-deletes=N`` or ``-o max-deletes=P%``.

A batch whose entry ops would remove more than that on the secondary (UNLINK and
RMDIR ops, each counted once, however much an RMDIR takes with it) is refused
before any of its ops is applied: the worker stops with
:class:`~streamsync.errors.DeleteLimitExceeded`, its stime stays before the batch,
and the state remembers the last journal of the refused batch, so that
``streamsync replicate --allow-deletes`` lets exactly that much through on the
next run (later batches are checked again). Off by default, as gsyncd has no
such limit.

``P%`` is of the objects the source brick holds before the batch's deletes: the
gfids of its ``.glusterfs`` handle tree (counted only when a batch deletes
something), plus the batch's deletes.

>>> limit = DeleteLimit.parse("100")
>>> limit.exceeded(150, objects=lambda: 10_000)
'150 entries, more than max-deletes=100 allows'
>>> DeleteLimit.parse("5%").exceeded(150, objects=lambda: 10_000) is None
True
>>> DeleteLimit.parse("1%").exceeded(150, objects=lambda: 10_000)
"150 entries (1.5% of the source's 10150 objects), more than max-deletes=1% allows"
>>> DeleteLimit.parse("") is None
True
"""

from __future__ import annotations

import os
import re
from typing import Callable, Iterable, NamedTuple

from .errors import ConfigError
from .ops import Batch

__all__ = ["DeleteLimit", "batch_deletes", "brick_objects"]

_FORM = re.compile(r"(\d+)(\.\d+)?(%?)\Z")
_HEX2 = re.compile(r"[0-9a-f]{2}\Z")
_DELETES = frozenset({"UNLINK", "RMDIR"})


class DeleteLimit(NamedTuple):
    """At most ``count`` deletes per batch, or at most ``percent`` % of the objects."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> "DeleteLimit | None":
        """``N`` or ``P%`` (``""`` or ``0``: no limit); a one-line ConfigError otherwise."""
        t = (text or "").strip()
        if t in ("", "0", "0%"):
            return None
        m = _FORM.match(t)
        if m is None or (m[2] and not m[3]):
            raise ConfigError(f"option max-deletes: {text!r} is not N or P% (e.g. 500 or 2.5%)")
        if m[3]:
            percent = float(m[1] + (m[2] or ""))
            if percent > 100:
                raise ConfigError(f"option max-deletes: {text!r} is above 100%")
            return cls(percent=percent)
        return cls(count=int(m[1]))

    def exceeded(self, deletes: int, *, objects: Callable[[], int]) -> str | None:
        """Why ``deletes`` is over the limit (one phrase), or ``None`` when it is not.
        ``objects()`` counts the source's objects (asked only for a percentage)."""
        if deletes <= 0:
            return None
        if self.count is not None:
            if deletes > self.count:
                return f"{deletes} entries, more than max-deletes={self.count} allows"
            return None
        assert self.percent is not None
        total = objects() + deletes
        share = 100.0 * deletes / max(1, total)
        if share > self.percent:
            return (f"{deletes} entries ({share:.1f}% of the source's {total} objects), "
                    f"more than max-deletes={self.percent:g}% allows")
        return None


def batch_deletes(batch: Batch) -> int:
    """The UNLINK and RMDIR ops a batch would send (gated and skipped journals send none).

    >>> from streamsync.ops import ChangelogPlan, EntryOp
    >>> from streamsync.records import Changelog
    >>> ops = (EntryOp("UNLINK", "g1", "p", "a"), EntryOp("CREATE", "g2", "p", "b"))
    >>> batch_deletes(Batch(0, (ChangelogPlan(Changelog("CHANGELOG.5", 5, 0), entry_ops=ops),)))
    1
    """
    return sum(1 for p in batch.plans if not p.skipped and not p.entries_gated
               for op in p.entry_ops if op.op in _DELETES)


def brick_objects(brick: str | os.PathLike[str]) -> int:
    """How many gfids a brick holds: the entries of its ``.glusterfs/xx/yy`` handle
    directories (one per file, directory or symlink, hard links counted once).

    >>> import tempfile
    >>> b = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(b, ".glusterfs", "5b", "1c"))
    >>> _ = open(os.path.join(b, ".glusterfs", "5b", "1c", "5b1c2d3e-0000-4000-8000-00000000000a"), "w")
    >>> brick_objects(b)
    1
    """
    root = os.path.join(os.fspath(brick), ".glusterfs")
    total = 0
    for first in _hex_dirs(root):
        for second in _hex_dirs(os.path.join(root, first)):
            with os.scandir(os.path.join(root, first, second)) as it:
                total += sum(1 for _ in it)
    return total


def _hex_dirs(path: str) -> Iterable[str]:
    try:
        with os.scandir(path) as it:
            return [e.name for e in it if _HEX2.match(e.name) and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
