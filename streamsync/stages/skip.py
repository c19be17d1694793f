"""Stage: skip changelogs already processed according to the data stime.

The seed marks a changelog done without processing it when its timestamp is
below the data stime's seconds (``ts < data_stime[0]``). This stage pairs each
changelog with that verdict so the caller can report the skipped ones (the
dispatcher marks them done) and process the others.

>>> from streamsync.records import Changelog, Stime
>>> cls = [Changelog(f"CHANGELOG.{t}", t, 10) for t in (100, 200, 300)]
>>> [(c.ts, s) for c, s in skip_processed(cls, data_stime=Stime(200))]
[(100, True), (200, False), (300, False)]
"""

from __future__ import annotations

from typing import Iterable, Iterator

from ..records import Changelog, Stime

__all__ = ["skip_processed", "is_processed"]


def is_processed(ts: int, data_stime: Stime | tuple[int, int] | None) -> bool:
    """``ts < data_stime[0]`` (never when the data stime is unknown).

    >>> is_processed(5, None), is_processed(5, (6, 0)), is_processed(6, (6, 0))
    (False, True, False)
    """
    return data_stime is not None and ts < data_stime[0]


def skip_processed(changelogs: Iterable[Changelog], *,
                   data_stime: Stime | tuple[int, int] | None
                   ) -> Iterator[tuple[Changelog, bool]]:
    """``(changelog, skipped)`` for each changelog, in order."""
    if data_stime is None:
        for cl in changelogs:
            yield cl, False
        return
    limit = data_stime[0]
    for cl in changelogs:
        yield cl, cl.ts < limit
