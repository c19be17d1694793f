"""``[user@]host:/path`` replica addresses.

>>> parse_replica("/backup/b1").remote
False
>>> s = parse_replica("geo@backup.example:/srv/rep")
>>> s.remote, s.user, s.host, s.path, s.target
(True, 'geo', 'backup.example', '/srv/rep', 'geo@backup.example')
>>> parse_replica("[::1]:/srv/rep").host
'::1'
>>> parse_replica("geo@gluster2::backup").volume
'backup'
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from ..errors import ConfigError

__all__ = ["ReplicaSpec", "parse_replica"]

_REMOTE = re.compile(r"\A(?:(?P<user>[^@/:\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^@/:\s\[\]]+):(?P<path>.*)\Z",
                     re.S)


_VOLUME = re.compile(r"\A(?P<user>[^@/:\s]+)@(?P<host>\[[0-9A-Fa-f:.]+\]|[^@/:\s\[\]]+)"
                     r"::(?P<volume>[A-Za-z0-9._-]+)\Z")


class ReplicaSpec(NamedTuple):
    """Where a replica lives: a local directory, a path on an ssh host, or a
    GlusterFS volume that ``streamsync serve`` on an ssh host mounts
    (``user@host::volume``; ``path`` is empty then)."""

    remote: bool
    path: str
    host: str | None = None
    user: str | None = None
    volume: str | None = None

    @property
    def target(self) -> str | None:
        """``user@host`` (or ``host``) for ssh, ``None`` when local."""
        if not self.remote:
            return None
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def display(self) -> str:
        if not self.remote:
            return self.path
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        if self.volume:
            return f"{self.user + '@' if self.user else ''}{host}::{self.volume}"
        return f"{self.user + '@' if self.user else ''}{host}:{self.path}"


def parse_replica(text: str | os.PathLike[str]) -> ReplicaSpec:
    """Parse a replica argument. A path containing ``/`` before any ``:`` is
    local (so ``./a:b`` is a local directory)."""
    t = os.fspath(text)
    if not t:
        raise ConfigError("empty replica address")
    m = _VOLUME.match(t)
    if m is not None:
        return ReplicaSpec(True, "", m["host"].strip("[]"), m["user"], m["volume"])
    head = t.split("/", 1)[0]
    if ":" in head or head.startswith("["):
        m = _REMOTE.match(t)
        if m is None:
            raise ConfigError(f"{t!r}: not a replica address (expected DIR or [user@]host:/path)")
        path = m["path"]
        if not path.startswith("/"):
            raise ConfigError(f"{t!r}: the remote path must be absolute")
        return ReplicaSpec(True, path, m["host"].strip("[]"), m["user"])
    return ReplicaSpec(False, t)
