"""gsyncd-compatible sync points in xattrs on the brick root (spec section 4.7).

Keys: ``<ns>.<master-uuid>.<slave-uuid>.stime`` and ``...entry_stime``, each
8 bytes ``struct.pack("!II", sec, nsec)``; ``<ns>`` is ``trusted.glusterfs``
for a privileged process, else ``system.glusterfs``. Everything else (status,
done changelogs, failure ledger) stays in a :class:`SqliteState`.

>>> pack_stime((1795470713, 0)).hex()
'6b04b57900000000'
>>> unpack_stime(bytes.fromhex('6b04b57900000000'))
Stime(sec=1795470713, nsec=0)
"""

from __future__ import annotations

import errno
import os
import struct

from ..errors import StateError
from ..records import MINUS_INFINITY, Stime
from .sqlite import SqliteState

__all__ = ["XattrState", "pack_stime", "unpack_stime", "stime_key", "stime_uuids", "brick_volume_id"]

_FMT = struct.Struct("!II")


def pack_stime(st: tuple[int, int]) -> bytes:
    """8-byte big-endian ``(sec, nsec)``."""
    return _FMT.pack(int(st[0]), int(st[1]))


def unpack_stime(raw: bytes) -> Stime:
    if len(raw) != 8:
        raise StateError(f"stime xattr must be 8 bytes, got {len(raw)}")
    return Stime(*_FMT.unpack(raw))


def stime_key(master_uuid: str, slave_uuid: str, which: str = "stime",
              namespace: str | None = None) -> str:
    """``trusted.glusterfs.<master>.<slave>.stime`` (or ``entry_stime``).

    >>> stime_key("m", "s", "entry_stime", "trusted.glusterfs")
    'trusted.glusterfs.m.s.entry_stime'
    """
    if namespace is None:
        namespace = "trusted.glusterfs" if os.geteuid() == 0 else "system.glusterfs"
    return f"{namespace}.{master_uuid}.{slave_uuid}.{which}"


class XattrState(SqliteState):
    """Sync points in the brick root's gsyncd xattrs; the rest in SQLite."""

    def __init__(self, brick: str, master_uuid: str, slave_uuid: str,
                 path: str = ":memory:", *, namespace: str | None = None) -> None:
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        super().__init__(path)
        self.brick = os.fspath(brick)
        self._keys = {w: stime_key(master_uuid, slave_uuid, w, namespace)
                      for w in ("stime", "entry_stime")}

    def _stime(self, key: str) -> Stime | None:
        try:
            raw = os.getxattr(self.brick, self._keys[key])
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENODATA, errno.ENOTDIR):
                return None
            raise StateError(f"{self.brick}: cannot read {self._keys[key]}: "
                             f"{exc.strerror}") from exc
        return unpack_stime(raw)

    def _set_stime(self, key: str, st: Stime | tuple[int, int]) -> None:
        st = Stime(int(st[0]), int(st[1]))
        if st == MINUS_INFINITY:
            return
        try:
            os.setxattr(self.brick, self._keys[key], pack_stime(st))
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            raise StateError(f"{self.brick}: cannot write {self._keys[key]}: "
                             f"{exc.strerror}") from exc


def brick_volume_id(brick: str) -> str:
    """The volume uuid a brick belongs to (its root's ``trusted.glusterfs.volume-id``)."""
    import uuid
    try:
        raw = os.getxattr(brick, "trusted.glusterfs.volume-id")
    except OSError as exc:
        raise StateError(f"{brick}: no volume id (trusted.glusterfs.volume-id: "
                         f"{exc.strerror}); give --xattr-stime PRIMARY_UUID:SECONDARY_UUID") from None
    if len(raw) != 16:
        raise StateError(f"{brick}: trusted.glusterfs.volume-id is not 16 bytes")
    return str(uuid.UUID(bytes=raw))


def stime_uuids(value: str, source: str, replica: str) -> tuple[str, str]:
    """``(primary uuid, secondary uuid)`` of ``--xattr-stime``: ``M:S`` as given, or
    ``auto``: the brick's own volume id and, for a ``HOST::VOLUME`` replica, the
    secondary volume's id as its glusterd reports it (the keys gsyncd uses, so
    either tool continues from the other's sync point).

    >>> stime_uuids("a:b", "/b", "/r")
    ('a', 'b')
    """
    if value != "auto":
        master, sep, slave = value.partition(":")
        if not sep or not master or not slave:
            raise StateError("--xattr-stime needs PRIMARY_UUID:SECONDARY_UUID or auto")
        return master, slave
    from ..secondary.volume_mount import parse_volume_address, volume_uuid
    address = parse_volume_address(replica)
    if address is None:
        raise StateError(f"--xattr-stime auto needs a HOST::VOLUME replica (got {replica}); "
                         f"give PRIMARY_UUID:SECONDARY_UUID")
    return brick_volume_id(source), volume_uuid(*address)

