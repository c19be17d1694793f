"""What sinks receive: entry ops, metadata ops, data items, failures, plans.

Entry ops are gsyncd's entry dicts (``edct()`` in the seed) as typed values;
:meth:`EntryOp.to_gsyncd` gives back the exact dict gsyncd sends to a replica,
with the same keys per op:

======================  ==================================================
op                      keys
======================  ==================================================
UNLINK, RMDIR           op, gfid, entry
CREATE, MKDIR, MKNOD    op, gfid, entry, mode, uid, gid
RENAME                  op, gfid, entry, entry1, stat, link
LINK, SYMLINK           op, gfid, entry, stat, link
LINK (sticky MKNOD)     op, gfid, entry, stat
======================  ==================================================

``entry`` is ``.gfid/<pgfid>/<bname>`` with the name unescaped; ``stat`` is
``{uid, gid, mode, atime, mtime}`` with float times, or ``{}`` when the source
had nothing to say.

>>> op = EntryOp("MKDIR", "5b1c2d3e-0000-4000-8000-00000000000a",
...              "00000000-0000-0000-0000-000000000001", "d", mode=16877, uid=0, gid=0)
>>> op.to_gsyncd()["entry"]
'.gfid/00000000-0000-0000-0000-000000000001/d'
>>> entry_op_from_gsyncd(op.to_gsyncd()) == op
True
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

import orjson

from .records import GFID_PREFIX, Changelog, Stat, name_from_json, name_to_json

__all__ = [
    "EntryOp",
    "MetaOp",
    "FailureInfo",
    "EntryFailure",
    "MetaFailure",
    "ChangelogPlan",
    "Batch",
    "entry_op_from_gsyncd",
    "meta_op_from_gsyncd",
    "data_item",
    "split_gfid_entry",
    "ops_to_jsonl",
]

_MODE_OPS = frozenset({"CREATE", "MKDIR", "MKNOD"})
_STAT_OPS = frozenset({"RENAME", "LINK", "SYMLINK"})


def data_item(gfid: str) -> str:
    """gsyncd's data item for a gfid.

    >>> data_item("00000000-0000-0000-0000-000000000001")
    '.gfid/00000000-0000-0000-0000-000000000001'
    """
    return GFID_PREFIX + gfid


def split_gfid_entry(entry: str) -> tuple[str, str]:
    """Split ``.gfid/<pgfid>/<bname>`` into ``(pgfid, bname)``.

    >>> split_gfid_entry(".gfid/00000000-0000-0000-0000-000000000001/a b")
    ('00000000-0000-0000-0000-000000000001', 'a b')
    """
    if not entry.startswith(GFID_PREFIX):
        raise ValueError(f"not a .gfid/<pgfid>/<name> entry: {entry!r}")
    pgfid, sep, bname = entry[len(GFID_PREFIX):].partition("/")
    if not sep:
        raise ValueError(f"not a .gfid/<pgfid>/<name> entry: {entry!r}")
    return pgfid, bname


class EntryOp(NamedTuple):
    """One namespace operation for the replica (gsyncd's entry dict).

    ``stat`` is ``None`` for "``{}``" (source had no stat) on ops that carry a
    stat; ``link`` is the symlink target or ``None``. ``source_fop`` is the
    journal fop when it differs from ``op`` (``"MKNOD"`` for a sticky-bit
    MKNOD sent as LINK, which gsyncd sends without a ``link`` key).
    """

    op: str
    gfid: str
    pgfid: str
    bname: str
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    pgfid1: str | None = None
    bname1: str | None = None
    stat: Stat | None = None
    link: str | None = None
    source_fop: str | None = None

    @property
    def entry(self) -> str:
        """``.gfid/<pgfid>/<bname>``."""
        return f"{GFID_PREFIX}{self.pgfid}/{self.bname}"

    @property
    def entry1(self) -> str | None:
        """``.gfid/<pgfid1>/<bname1>`` for RENAME, else ``None``."""
        if self.pgfid1 is None:
            return None
        return f"{GFID_PREFIX}{self.pgfid1}/{self.bname1}"

    def to_gsyncd(self, *, json_names: bool = False) -> dict[str, Any]:
        """The exact dict the seed's ``edct()`` builds for this op (``json_names``:
        names that are not UTF-8 as ``{"b64": ...}``, see :func:`name_to_json`)."""
        name = _json_name if json_names else _same
        op, gfid, pgfid, bname, mode, uid, gid, pgfid1, bname1, st, link, source_fop = self
        if op in _MODE_OPS:
            return {"op": op, "gfid": gfid, "entry": name(GFID_PREFIX + pgfid + "/" + bname),
                    "mode": mode, "uid": uid, "gid": gid}
        d: dict[str, Any] = {"op": op, "gfid": gfid,
                             "entry": name(GFID_PREFIX + pgfid + "/" + bname)}
        if op in _STAT_OPS:
            if op == "RENAME":
                d["entry1"] = name(f"{GFID_PREFIX}{pgfid1}/{bname1}")
            d["stat"] = st.to_dict() if st is not None else {}
            if not (op == "LINK" and source_fop == "MKNOD"):
                d["link"] = None if link is None else name(link)
        return d

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (names that are not UTF-8 become ``{"b64": ...}``)."""
        d = self.to_gsyncd(json_names=True)
        if self.source_fop is not None:
            d["source_fop"] = self.source_fop
        return d


def _same(name: str) -> str:
    return name


def _json_name(name: str) -> Any:
    """:func:`name_to_json`, with ASCII (nearly every name) let through at once."""
    return name if name.isascii() else name_to_json(name)


def entry_op_from_gsyncd(d: dict[str, Any]) -> EntryOp:
    """Rebuild an :class:`EntryOp` from :meth:`EntryOp.to_gsyncd` / ``to_dict`` output."""
    pgfid, bname = split_gfid_entry(name_from_json(d["entry"]))
    pgfid1 = bname1 = None
    if d.get("entry1") is not None:
        pgfid1, bname1 = split_gfid_entry(name_from_json(d["entry1"]))
    st = d.get("stat")
    link = d.get("link")
    source_fop = d.get("source_fop")
    if d["op"] == "LINK" and "stat" in d and "link" not in d and source_fop is None:
        source_fop = "MKNOD"
    return EntryOp(d["op"], d["gfid"], pgfid, bname, d.get("mode"), d.get("uid"),
                   d.get("gid"), pgfid1, bname1, Stat.from_dict(st) if st else None,
                   None if link is None else name_from_json(link), source_fop)


class MetaOp(NamedTuple):
    """Set owner, mode and times of an inode on the replica.

    >>> MetaOp("00000000-0000-0000-0000-000000000001", Stat(0, 0, 16877, 1.0, 2.0)).to_gsyncd()["go"]
    '.gfid/00000000-0000-0000-0000-000000000001'
    """

    gfid: str
    stat: Stat

    @property
    def go(self) -> str:
        return GFID_PREFIX + self.gfid

    def to_gsyncd(self) -> dict[str, Any]:
        """``{"op": "META", "go": ".gfid/<gfid>", "stat": {...}}``."""
        return {"op": "META", "go": self.go, "stat": self.stat.to_dict()}

    to_dict = to_gsyncd


def meta_op_from_gsyncd(d: dict[str, Any]) -> MetaOp:
    """Inverse of :meth:`MetaOp.to_gsyncd`."""
    go = d["go"]
    if not go.startswith(GFID_PREFIX):
        raise ValueError(f"not a .gfid/<gfid> target: {go!r}")
    return MetaOp(go[len(GFID_PREFIX):], Stat.from_dict(d["stat"]))


class FailureInfo(NamedTuple):
    """The info dict of a replica's entry failure (spec 4.5, seed key names)."""

    gfid_mismatch: bool = False
    name_mismatch: bool = False
    dst: bool = False
    slave_isdir: bool = False
    slave_name: str | None = None
    slave_gfid: str | None = None
    slave_entry: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"gfid_mismatch": self.gfid_mismatch,
                             "name_mismatch": self.name_mismatch, "dst": self.dst,
                             "slave_isdir": self.slave_isdir, "slave_name": self.slave_name,
                             "slave_gfid": self.slave_gfid}
        if self.slave_entry is not None:
            d["slave_entry"] = self.slave_entry
        return d


class EntryFailure(NamedTuple):
    """``(entry, errno, info)`` as a replica reports a failed entry op."""

    op: EntryOp
    errno: int
    info: FailureInfo = FailureInfo()

    def to_dict(self) -> dict[str, Any]:
        return {"entry": self.op.to_dict(), "errno": self.errno, "info": self.info.to_dict()}


class MetaFailure(NamedTuple):
    """``(meta entry, errno, 'chmod'|'utime')`` as a replica reports a failed meta op."""

    op: MetaOp
    errno: int
    what: str

    def to_dict(self) -> dict[str, Any]:
        return {"entry": self.op.to_dict(), "errno": self.errno, "what": self.what}


class ChangelogPlan(NamedTuple):
    """What one changelog asks of the replica, decided without touching it.

    * ``skipped``: already processed per data stime; nothing to apply, only mark done.
    * ``entries_gated``: entry ops were applied before a restart; ``entry_ops`` is empty.
    * ``entry_ops``: in journal order.
    * ``meta_gfids``: gfids whose attributes to copy (sorted); the dispatcher
      takes a fresh stat from the source view when it applies them.
    * ``data_gfids``: gfids whose data to transfer (sorted).
    * ``stats``: fop counters as sorted ``(name, count)`` pairs.
    """

    changelog: Changelog
    skipped: bool = False
    entries_gated: bool = False
    entry_ops: tuple[EntryOp, ...] = ()
    meta_gfids: tuple[str, ...] = ()
    data_gfids: tuple[str, ...] = ()
    stats: tuple[tuple[str, int], ...] = ()

    @property
    def ts(self) -> int:
        return self.changelog.ts

    @property
    def stats_dict(self) -> dict[str, int]:
        return dict(self.stats)


class Batch(NamedTuple):
    """Consecutive changelogs processed together; stime advances after each batch."""

    index: int
    plans: tuple[ChangelogPlan, ...]

    @property
    def last_ts(self) -> int:
        return self.plans[-1].changelog.ts


def ops_to_jsonl(ops: Iterable[Any]) -> bytes:
    """JSON lines of ops (anything with ``to_dict``) through orjson."""
    dumps = orjson.dumps
    return b"".join(dumps(o.to_dict()) + b"\n" for o in ops)
