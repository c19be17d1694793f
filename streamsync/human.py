"""Numbers as a person reads them in text output (``--json`` keeps raw numbers).

>>> count(1, "batch"), count(3, "batch"), count(0, "file")
('1 batch', '3 batches', '0 files')
>>> size(54459), size(100 << 20), size(512)
('53.2 KiB', '100.0 MiB', '512 B')
>>> duration(0.214), duration(100), duration(7322), duration(200000)
('0.21s', '1m40s', '2h02m02s', '2d07h33m')
>>> when(1795470713)
'2026-11-23 21:51:53 UTC'
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["count", "size", "duration", "when", "stime"]

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def count(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless ``n`` is 1 (``batch`` -> ``batches``)."""
    if n == 1:
        return f"{n} {noun}"
    plural = noun + ("es" if noun.endswith(("ch", "sh", "s", "x")) else "s")
    return f"{n} {plural}"


def size(nbytes: int | float) -> str:
    """Bytes in binary units with one decimal (``53.2 KiB``); plain ``B`` under 1 KiB."""
    value = float(nbytes)
    if abs(value) < 1024:
        return f"{int(value)} B"
    for unit in _UNITS:
        value /= 1024
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    """``0.21s``, ``42s``, ``1m40s``, ``2h02m02s``, ``2d07h33m``; ``N/A`` for None."""
    if seconds is None:
        return "N/A"
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.2f}s"
    s = int(round(seconds))
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d:
        return f"{d}d{h:02d}h{m:02d}m"
    if h:
        return f"{h}h{m:02d}m{sec:02d}s"
    if m:
        return f"{m}m{sec:02d}s"
    return f"{sec}s"


def when(ts: float | int | None, *, utc: bool = True, zone: bool = True) -> str:
    """A time with its zone (``2026-11-23 21:51:53 UTC``; ``zone=False``: without);
    ``N/A`` for none or 0, ``@<ts>`` beyond what the platform can show."""
    if not ts:
        return "N/A"
    try:
        t = time.gmtime(ts) if utc else time.localtime(ts)
    except (OverflowError, OSError, ValueError):
        return f"@{ts}"
    text = time.strftime("%Y-%m-%d %H:%M:%S", t)
    return f"{text} {'UTC' if utc else time.strftime('%Z', t)}" if zone else text


def stime(st: Any) -> str:
    """An stime as the date it stands for and its raw value, or ``none``.

    >>> from streamsync.records import Stime
    >>> stime(Stime(1795470713, 0)), stime(None)
    ('2026-11-23 21:51:53 UTC (1795470713)', 'none')
    """
    if st is None:
        return "none"
    sec = st[0]
    nsec = st[1] if len(st) > 1 else 0
    raw = f"{sec},{nsec}" if nsec else f"{sec}"
    return f"{when(sec)} ({raw})"
