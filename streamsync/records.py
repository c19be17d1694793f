"""The immutable values that flow through streamsync.

* :class:`Changelog` - one journal file (path, timestamp, size, kind).
* :class:`EntryRecord`, :class:`DataRecord`, :class:`MetaRecord` - one per
  journal line (``E``, ``D``, ``M``).
* :class:`Stat` - what a replica needs of an inode (uid, gid, mode, atime, mtime).
* :class:`Stime` - a sync point ``(sec, nsec)``; :data:`MINUS_INFINITY` is ``(-1, 0)``.

All are ``NamedTuple`` s: cheap, hashable, picklable. Names (basenames, delete
paths, symlink targets) are ``str`` decoded with ``surrogateescape`` like
:func:`os.fsdecode`, so arbitrary bytes survive; they are stored *unescaped*.

Every record converts to a plain dict (and JSON through orjson) and back without
loss; a name that is not valid UTF-8 is written as ``{"b64": "..."}``.

>>> r = EntryRecord("5b1c2d3e-0000-4000-8000-00000000000a", "CREATE",
...                 "00000000-0000-0000-0000-000000000001", "my notes.txt",
...                 mode=33188, uid=0, gid=0)
>>> record_from_dict(r.to_dict()) == r
True
>>> r.entry
'.gfid/00000000-0000-0000-0000-000000000001/my notes.txt'
"""

from __future__ import annotations

import base64
import os
from typing import Any, NamedTuple, Union

import orjson

__all__ = [
    "ROOT_GFID",
    "GFID_PREFIX",
    "AFR_ANON_PREFIX",
    "afr_internal",
    "Stime",
    "MINUS_INFINITY",
    "Stat",
    "Changelog",
    "EntryRecord",
    "DataRecord",
    "MetaRecord",
    "Record",
    "record_from_dict",
    "records_to_jsonl",
    "name_to_json",
    "name_from_json",
    "changelog_ts",
]

#: gfid of every volume's root directory
ROOT_GFID = "00000000-0000-0000-0000-000000000001"
#: the aux-gfid prefix gsyncd puts before gfids (``.gfid/<gfid>``)
GFID_PREFIX = ".gfid/"
#: AFR's directory at a replicated brick's root for inodes a heal sets aside
#: (GlusterFS 10: ``.glusterfs-anonymous-inode-<volume id>``): GlusterFS's own,
#: hidden from clients, journaled like any MKDIR
AFR_ANON_PREFIX = ".glusterfs-anonymous-inode-"


def afr_internal(pgfid: str | None, name: str | None) -> bool:
    """Whether ``name`` in directory ``pgfid`` is AFR's anonymous-inode directory,
    which is not part of the volume's namespace and is never replicated.

    >>> afr_internal(ROOT_GFID, ".glusterfs-anonymous-inode-2f5d0c4e"), afr_internal(ROOT_GFID, "x")
    (True, False)
    """
    return pgfid == ROOT_GFID and bool(name) and name.startswith(AFR_ANON_PREFIX)


def name_to_json(name: str) -> Any:
    """A name as a JSON value: the string itself, or ``{"b64": ...}`` for non-UTF-8 bytes.

    >>> name_to_json("caf\\u00e9"), name_to_json(os.fsdecode(b"\\xff"))
    ('café', {'b64': '/w=='})
    """
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return {"b64": base64.b64encode(os.fsencode(name)).decode("ascii")}


def name_from_json(value: Any) -> str:
    """Inverse of :func:`name_to_json`.

    >>> name_from_json({"b64": "/w=="}) == os.fsdecode(b"\\xff")
    True
    """
    if isinstance(value, dict):
        return os.fsdecode(base64.b64decode(value["b64"]))
    if not isinstance(value, str):
        raise TypeError(f"a name must be a string or {{'b64': ...}}, not {value!r}")
    return value


def _opt_name(value: Any) -> str | None:
    return None if value is None else name_from_json(value)


class Stime(NamedTuple):
    """A sync point: seconds and sub-second part, compared as a tuple.

    >>> Stime(1700000000) > MINUS_INFINITY
    True
    """

    sec: int
    nsec: int = 0


#: ``(-1, 0)``: "never synced"; never written to a store
MINUS_INFINITY = Stime(-1, 0)


class Stat(NamedTuple):
    """The attributes a replica needs: owner, mode (with type bits) and times.

    >>> Stat(0, 0, 0o100644, 1.5, 2.5).to_dict()
    {'uid': 0, 'gid': 0, 'mode': 33188, 'atime': 1.5, 'mtime': 2.5}
    """

    uid: int
    gid: int
    mode: int
    atime: float
    mtime: float

    def to_dict(self) -> dict[str, Any]:
        """The gsyncd ``stat`` dict (float times)."""
        return {"uid": self.uid, "gid": self.gid, "mode": self.mode,
                "atime": float(self.atime), "mtime": float(self.mtime)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Stat":
        return cls(int(d["uid"]), int(d["gid"]), int(d["mode"]),
                   float(d["atime"]), float(d["mtime"]))

    @classmethod
    def from_os(cls, st: os.stat_result) -> "Stat":
        """From an :func:`os.lstat` result (float times, as gsyncd takes them)."""
        return cls(st.st_uid, st.st_gid, st.st_mode, st.st_atime, st.st_mtime)


def changelog_ts(name: str) -> int:
    """The timestamp of a journal name: the text after the last dot.

    >>> changelog_ts("/b/.glusterfs/changelogs/2026/11/23/CHANGELOG.1795470689")
    1795470689
    """
    return int(name.rsplit(".", 1)[-1])


class Changelog(NamedTuple):
    """One journal file.

    ``kind`` is ``"live"``, ``"history"`` or ``"xsync"``; ``member`` is the
    member name when the journal lives inside a gsyncd ``archive_*.tar``
    (then ``path`` is the archive). ``size`` is the file's size in bytes (what
    ``changelog-batch-size`` counts).

    >>> Changelog("/x/CHANGELOG.1700000000", 1700000000, 120).name
    'CHANGELOG.1700000000'
    """

    path: str
    ts: int
    size: int
    kind: str = "live"
    member: str | None = None

    @property
    def name(self) -> str:
        """The journal's basename, e.g. ``CHANGELOG.1700000000``."""
        return os.path.basename(self.member if self.member is not None else self.path)

    @property
    def where(self) -> str:
        """How errors name the journal: its path, or ``archive.tar[member]``.

        >>> Changelog("/a/archive_1.tar", 1700000000, 120, member="CHANGELOG.1700000000").where
        '/a/archive_1.tar[CHANGELOG.1700000000]'
        """
        return self.path if self.member is None else f"{self.path}[{self.member}]"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": name_to_json(self.path), "ts": self.ts,
                             "size": self.size, "kind": self.kind}
        if self.member is not None:
            d["member"] = name_to_json(self.member)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Changelog":
        return cls(name_from_json(d["path"]), int(d["ts"]), int(d["size"]),
                   d.get("kind", "live"), _opt_name(d.get("member")))


class EntryRecord(NamedTuple):
    """An ``E`` line: a namespace operation.

    ``(pgfid, bname)`` is the entry (for RENAME the old name), ``(pgfid1,
    bname1)`` the RENAME destination, ``mode/uid/gid`` are present for
    CREATE/MKNOD/MKDIR, ``path`` is the captured delete path of UNLINK/RMDIR
    (``None`` when not captured). Names are unescaped.
    """

    gfid: str
    fop: str
    pgfid: str
    bname: str
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    pgfid1: str | None = None
    bname1: str | None = None
    path: str | None = None

    TYPE = "E"

    @property
    def entry(self) -> str:
        """gsyncd's entry name ``.gfid/<pgfid>/<bname>``."""
        return f"{GFID_PREFIX}{self.pgfid}/{self.bname}"

    @property
    def entry1(self) -> str | None:
        """gsyncd's RENAME destination ``.gfid/<pgfid1>/<bname1>`` (else ``None``)."""
        if self.pgfid1 is None:
            return None
        return f"{GFID_PREFIX}{self.pgfid1}/{self.bname1}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "E", "gfid": self.gfid, "fop": self.fop,
                             "pgfid": self.pgfid, "bname": name_to_json(self.bname)}
        if self.mode is not None:
            d["mode"] = self.mode
            d["uid"] = self.uid
            d["gid"] = self.gid
        if self.pgfid1 is not None:
            d["pgfid1"] = self.pgfid1
            d["bname1"] = name_to_json(self.bname1)  # type: ignore[arg-type]
        if self.path is not None:
            d["path"] = name_to_json(self.path)
        return d


class DataRecord(NamedTuple):
    """A ``D`` line: the inode's data changed."""

    gfid: str

    TYPE = "D"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "D", "gfid": self.gfid}


class MetaRecord(NamedTuple):
    """An ``M`` line: the inode's attributes or xattrs changed.

    ``stat`` is the inline stat of xsync-generated SETATTR lines, else ``None``.
    """

    gfid: str
    fop: str
    stat: Stat | None = None

    TYPE = "M"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "M", "gfid": self.gfid, "fop": self.fop}
        if self.stat is not None:
            d["stat"] = self.stat.to_dict()
        return d


Record = Union[EntryRecord, DataRecord, MetaRecord]


def record_from_dict(d: dict[str, Any]) -> Record:
    """Rebuild a record from :meth:`to_dict` output.

    >>> record_from_dict({"type": "D", "gfid": ROOT_GFID})
    DataRecord(gfid='00000000-0000-0000-0000-000000000001')
    """
    t = d.get("type")
    if t == "D":
        return DataRecord(d["gfid"])
    if t == "M":
        st = d.get("stat")
        return MetaRecord(d["gfid"], d["fop"], Stat.from_dict(st) if st else None)
    if t == "E":
        return EntryRecord(
            d["gfid"], d["fop"], d["pgfid"], name_from_json(d["bname"]),
            d.get("mode"), d.get("uid"), d.get("gid"), d.get("pgfid1"),
            _opt_name(d.get("bname1")), _opt_name(d.get("path")))
    raise ValueError(f"not a record dict (type={t!r})")


def records_to_jsonl(records) -> bytes:
    """JSON lines (one object per record) with orjson.

    >>> records_to_jsonl([DataRecord(ROOT_GFID)])
    b'{"type":"D","gfid":"00000000-0000-0000-0000-000000000001"}\\n'
    """
    dumps = orjson.dumps
    return b"".join(dumps(r.to_dict()) + b"\n" for r in records)
