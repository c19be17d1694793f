"""One time syntax for every command: epoch seconds or ISO 8601.

``1795467032``, ``1795467032.5`` (an stime may add ``,NSEC``), ``2026-11-23``,
``2026-11-23T21:51:29``, ``2026-11-23 21:51:29+01:00``, ``...Z``. A time without
an offset is UTC, everywhere (journal stamps and stimes are UTC epoch seconds;
a machine's local zone must not change which journals a command selects).

>>> parse_time("1795467032"), parse_time("2026-11-23T21:51:29"), parse_time("2026-11-23T22:51:29+01:00")
(1795467032, 1795470689, 1795470689)
>>> parse_stime("1795467032,15"), parse_stime("2026-11-23T21:51:29Z")
(Stime(sec=1795467032, nsec=15), Stime(sec=1795470689, nsec=0))
"""

from __future__ import annotations

import argparse
import datetime as _dt

from .errors import ConfigError
from .records import Stime

__all__ = ["parse_time", "parse_stime", "time_arg", "stime_arg", "TIME_HELP"]

#: what every ``--help`` says about a time argument
TIME_HELP = "epoch seconds or ISO 8601, UTC unless it carries an offset"


def parse_time(text: str) -> int:
    """Epoch seconds (int) from epoch seconds or an ISO 8601 date/time.

    >>> parse_time("1795467032"), parse_time("2026-11-23T21:51:29Z"), parse_time("2026-11-23")
    (1795467032, 1795470689, 1795392000)
    >>> parse_time("yesterday")
    Traceback (most recent call last):
    ...
    streamsync.errors.ConfigError: not a time: 'yesterday' (epoch seconds or ISO 8601, UTC unless it carries an offset; e.g. 1795467032 or 2026-11-23T21:51:29)
    """
    t = str(text).strip()
    try:
        return int(float(t)) if t.replace(".", "", 1).isdigit() else _iso(t)
    except (ValueError, OverflowError):
        raise ConfigError(f"not a time: {text!r} ({TIME_HELP}; e.g. 1795467032 or "
                          "2026-11-23T21:51:29)") from None


def _iso(t: str) -> int:
    d = _dt.datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return int(d.timestamp())


def parse_stime(text: str) -> Stime:
    """An stime: ``SEC``, ``SEC,NSEC`` or an ISO 8601 time (nanoseconds 0).

    >>> parse_stime("1795467032,500"), parse_stime("2026-11-23T21:51:29+00:00")
    (Stime(sec=1795467032, nsec=500), Stime(sec=1795470689, nsec=0))
    """
    sec, comma, nsec = str(text).strip().partition(",")
    if comma:
        if not (sec.isdigit() and nsec.isdigit() and int(nsec) < 10**9):
            raise ConfigError(f"not an stime: {text!r} (SEC,NSEC with NSEC < 10^9; or "
                              f"{TIME_HELP})")
        return Stime(int(sec), int(nsec))
    return Stime(parse_time(sec), 0)


def time_arg(text: str) -> int:
    """:func:`parse_time` for argparse (its message, not a function name).

    >>> import argparse
    >>> p = argparse.ArgumentParser(prog="demo")
    >>> _ = p.add_argument("--since", type=time_arg)
    >>> p.parse_args(["--since", "2026-11-23T21:51:29"]).since
    1795470689
    """
    try:
        return parse_time(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def stime_arg(text: str) -> Stime:
    """:func:`parse_stime` for argparse.

    >>> stime_arg("1795467032,5")
    Stime(sec=1795467032, nsec=5)
    """
    try:
        return parse_stime(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
