"""Plausible journal stamps and sync points.

A journal's name carries its timestamp (``CHANGELOG.<ts>``) and that number
becomes a sync point once the journal is applied: every journal with a smaller
stamp then counts as done. A name is only a name, so replication checks it
before trusting it. A stamp must fit the 32-bit seconds of GlusterFS's stime
xattr (``"!II"``), and a journal a brick wrote cannot lie in the future of the
clock replicating it (beyond :data:`FUTURE_SLACK` of clock skew).

>>> from streamsync.records import Changelog
>>> ok = Changelog("/b/CHANGELOG.1700000000", 1700000000, 10, "live")
>>> [c.ts for c in refuse_future([ok], now=1700000100)]
[1700000000]
>>> list(refuse_future([Changelog("/b/CHANGELOG.1900000000", 1900000000, 10, "live")],
...                    now=1700000100))
Traceback (most recent call last):
...
streamsync.errors.SourceError: /b/CHANGELOG.1900000000: journal stamp 1900000000 ...
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Iterator

from .errors import SourceError, StateError
from .records import Changelog

__all__ = ["MAX_STAMP", "FUTURE_SLACK", "check_stamp", "refuse_future", "check_stored_stimes"]

#: the largest seconds value a GlusterFS stime xattr (``"!II"``) can hold
MAX_STAMP = 2**32 - 1
#: how far past the local clock a journal or a stored sync point may lie (clock skew)
FUTURE_SLACK = 3600


def check_stamp(where: str, ts: int) -> int:
    """``ts`` if it can be a journal stamp, else :class:`SourceError` naming ``where``.

    >>> check_stamp("CHANGELOG.1700000000", 1700000000)
    1700000000
    """
    if not 0 <= ts <= MAX_STAMP:
        raise SourceError(f"{where}: impossible journal stamp {ts} (a GlusterFS stime holds "
                          f"32-bit seconds, at most {MAX_STAMP}); rename or remove the file")
    return ts


def refuse_future(changelogs: Iterable[Changelog], *, now: float | None = None,
                  slack: int = FUTURE_SLACK) -> Iterator[Changelog]:
    """Pass ``changelogs`` through, raising :class:`SourceError` at the first one
    stamped more than ``slack`` seconds after ``now`` (default: the clock).

    Applying such a journal would move the sync point past every real journal
    still to come, and those would then be skipped as done.
    """
    limit = (time.time() if now is None else now) + slack
    for cl in changelogs:
        if cl.ts > limit:
            raise SourceError(f"{cl.where}: journal stamp {cl.ts} lies "
                              f"{int(cl.ts - limit + slack)} s in the future of this clock; "
                              f"refusing to let its name move the sync point past journals "
                              f"not yet applied (fix the clock, or rename or remove the file)")
        yield cl


def check_stored_stimes(state: Any, *, now: float | None = None,
                        slack: int = FUTURE_SLACK) -> None:
    """Refuse a state whose data or entry sync point lies in the future: every
    journal before it would be skipped as done. Raises :class:`StateError`."""
    limit = (time.time() if now is None else now) + slack
    for name, read in (("data stime", state.data_stime), ("entry stime", state.entry_stime)):
        st = read()
        if st is not None and st[0] > limit:
            raise StateError(
                f"{getattr(state, 'path', 'state')}: the stored {name} {st[0]} lies in the "
                f"future of this clock, so every journal before it would be skipped as done; "
                f"fix the clock, or start over with a fresh --state (replaying is safe)")
