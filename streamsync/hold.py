"""Hot large files: hold a file's data back while it is still being written.

gsyncd sends a file's whole content in every batch whose journals have a D
record for it, so a large file appended across many journals is sent once per
journal (gluster/glusterfs#4321: 127 times for 92 GB). streamsync holds such a
file back instead, and sends it once it stops changing:

* a regular file of at least ``hot-file-size`` bytes (0: never hold) whose data
  the batch's **last** journal changes is *hot*: its transfer is held, unless it
  has been held for ``hot-file-max-wait`` seconds already (then it is sent, and
  may be held again from the next batch: a file that never stops changing
  reaches the replica at least that often);
* a held file is sent by the first batch in whose last journal it is not hot,
  and by the idle turn of a live worker (no new journal) once its ``ctime`` is
  the one seen when it was last held (or it is overdue); a one-shot run sends
  what it holds before it ends;
* nothing is lost: the held files are kept in the state store in the same
  transaction that marks the batch done, and the data stime, which says "every
  byte up to here is on the secondary", stops before the first journal whose
  data is held (:func:`stime_floor`). A restarted worker sends what it held; a
  gsyncd or a passive worker taking over from the published stime re-reads
  those journals.

Decisions only, no I/O: the dispatcher gives the sizes, ctimes and the clock.

>>> rule = HoldRule(min_size=16 << 20, max_wait=600.0)
>>> rule.hold(size=1 << 30, hot=True, held=None, now=100.0)
True
>>> rule.hold(size=1 << 30, hot=False, held=None, now=100.0)
False
>>> rule.hold(size=1 << 30, hot=True, held=Held(since=0.0, ts=1700000015, ctime=1), now=700.0)
False
>>> stime_floor({"f": Held(0.0, 1700000015, 1)})
1700000014
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from .options import Options

__all__ = ["Held", "HoldRule", "stime_floor", "held_from_json", "held_to_json"]


class Held(NamedTuple):
    """A file whose data is held: since when (wall clock), the first journal
    whose data it holds (its stamp), and its ``st_ctime_ns`` when last held."""

    since: float
    ts: int
    ctime: int


class HoldRule(NamedTuple):
    """When a file's data waits (see the module docstring).

    >>> HoldRule.from_options(None)
    HoldRule(min_size=16777216, max_wait=600.0)
    """

    min_size: int
    max_wait: float

    @classmethod
    def from_options(cls, options: Any) -> "HoldRule | None":
        """The rule of ``hot-file-size`` and ``hot-file-max-wait`` (their defaults
        when ``options`` lacks them; ``None`` when ``hot-file-size`` is 0: nothing
        is held)."""
        defaults = Options()

        def value(name: str) -> Any:
            v = None if options is None else options.get(name)
            return defaults.get(name) if v is None else v
        size = int(value("hot-file-size"))
        return cls(size, float(value("hot-file-max-wait"))) if size > 0 else None

    def hold(self, *, size: int | None, hot: bool, held: Held | None, now: float) -> bool:
        """Whether a file of ``size`` bytes (``None``: not a regular file on the
        source), ``hot`` or not in the batch's last journal, held since ``held``
        (or not held), waits once more."""
        if not hot or size is None or size < self.min_size:
            return False
        return held is None or now - held.since < self.max_wait

    def release_when_idle(self, held: Held, *, ctime: int | None, now: float) -> bool:
        """Whether a worker with no new journal sends a held file now: it has not
        changed since it was held (or is gone), or it waited long enough.

        >>> r = HoldRule(1, 600.0)
        >>> r.release_when_idle(Held(0.0, 1, ctime=5), ctime=5, now=1.0)
        True
        >>> r.release_when_idle(Held(0.0, 1, ctime=5), ctime=9, now=1.0)
        False
        """
        return ctime is None or ctime == held.ctime or now - held.since >= self.max_wait


def stime_floor(held: Mapping[str, Held]) -> int | None:
    """The highest data stime (seconds) the held files allow: just before the
    first journal whose data is held; ``None`` when nothing is held."""
    if not held:
        return None
    return min(h.ts for h in held.values()) - 1


def held_to_json(held: Mapping[str, Held]) -> dict[str, list[Any]]:
    """The held files as a JSON-able value (for the state store).

    >>> held_from_json(held_to_json({"g": Held(1.5, 1700000015, 7)}))
    {'g': Held(since=1.5, ts=1700000015, ctime=7)}
    """
    return {g: [h.since, h.ts, h.ctime] for g, h in held.items()}


def held_from_json(value: Any) -> dict[str, Held]:
    """The held files of a stored value (``None``: nothing held)."""
    if not value:
        return {}
    return {str(g): Held(float(v[0]), int(v[1]), int(v[2])) for g, v in value.items()}
