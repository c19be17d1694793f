"""What ``streamsync serve`` runs under an ``authorized_keys`` forced command.

With ``command="streamsync serve --root DIR"`` every ssh session of the key
lands in ``serve``, the data transfers included; sshd puts what the client
asked for in ``SSH_ORIGINAL_COMMAND``. :func:`decide` reads it and says what
to run, refusing anything else:

* ``... serve`` and ``... serve --receive-tar PATH``: the protocol, or the
  confined tar receiver, for a replica inside ``DIR``;
* ``rsync --server ...`` (a receiver: never ``--sender``) with options from an
  allow-list only (none that names a path or follows directory symlinks), into
  a destination whose resolved path lies inside ``DIR``: run as the
  administrator's rsync, never the one the client named.

>>> decide("streamsync serve", "/srv").kind
'serve'
>>> decide("rsync --server -logDtpRe.LsfxCIvu --inplace --existing . /srv/r/", "/srv",
...        check_dest=False).argv
['rsync', '--server', '-logDtpRe.LsfxCIvu', '--inplace', '--existing', '.', '/srv/r/']
>>> decide("rsync --server --sender -logDtpr . /srv/r/", "/srv")
Traceback (most recent call last):
...
streamsync.errors.ConfigError: forced command: rsync --sender (reading from the replica host) is not allowed
"""

from __future__ import annotations

import os
import re
import shlex
from typing import NamedTuple

from ..errors import ConfigError
from .confine import inside

__all__ = ["decide", "Decision", "RSYNC_LONG_OPTIONS"]

#: rsync long options a receiver may be started with (none takes a path)
RSYNC_LONG_OPTIONS = frozenset({
    "--inplace", "--existing", "--super", "--numeric-ids", "--no-implied-dirs", "--xattrs",
    "--acls", "--ignore-missing-args", "--copy-links", "--timeout", "--bwlimit", "--sparse",
    "--whole-file", "--compress", "--compress-level", "--checksum", "--preallocate",
    "--partial", "--from0", "--modify-window", "--size-only", "--ignore-times",
    "--checksum-choice", "--compress-choice", "--fake-super", "--no-whole-file",
    "--append", "--append-verify", "--protect-args", "--secluded-args", "--old-args",
    "--stats", "--no-inc-recursive", "--omit-dir-times", "--omit-link-times",
    # what the client's --out-format makes it send (the value is a marker, "X"):
    # it only shapes lines printed back to the client
    "--log-format",
})
#: a cluster of short options; no K (--keep-dirlinks follows symlinked
#: directories on the receiver), T (--temp-dir), B, b (backups) or f/F (filters)
_SHORT = re.compile(r"-[logDtpRrSxHAXEWIcuvzqnLsOJUN]*(?:e\.[A-Za-z]*)?\Z")
_VALUE = re.compile(r"[A-Za-z0-9.,:_-]*\Z")


class Decision(NamedTuple):
    """``kind`` is ``serve``, ``receive-tar`` or ``rsync``; ``path`` the replica for
    ``receive-tar``; ``argv`` what to exec for ``rsync``."""

    kind: str
    path: str | None = None
    argv: list[str] | None = None


def _refuse(why: str) -> ConfigError:
    return ConfigError(f"forced command: {why}")


def _serve_args(words: list[str], root: str | None) -> Decision:
    if not words:
        return Decision("serve")
    if len(words) == 2 and words[0] == "--receive-tar":
        path = words[1]
        if not os.path.isabs(path) or (root is not None and not inside(root, path)):
            raise _refuse(f"--receive-tar {path}: outside the served root {root}")
        return Decision("receive-tar", path=path)
    raise _refuse(f"serve {shlex.join(words)}: not something a client may ask for")


def _rsync(words: list[str], root: str | None, rsync: str, check_dest: bool) -> Decision:
    if len(words) < 4 or words[1] != "--server":
        raise _refuse("only 'rsync --server' (a receiver) may run")
    if "--sender" in words:
        raise _refuse("rsync --sender (reading from the replica host) is not allowed")
    opts, rest = [], words[2:]
    while rest and rest[0].startswith("-"):
        w = rest.pop(0)
        name, eq, value = w.partition("=")
        if w.startswith("--"):
            if name not in RSYNC_LONG_OPTIONS or (eq and not _VALUE.match(value)):
                raise _refuse(f"rsync option {w} is not allowed")
        elif not _SHORT.match(w):
            raise _refuse(f"rsync option {w} is not allowed")
        opts.append(w)
    if len(rest) != 2 or rest[0] != ".":
        raise _refuse(f"rsync arguments {shlex.join(rest)}: expected '. DESTINATION'")
    dest = rest[1]
    if not os.path.isabs(dest):
        raise _refuse(f"rsync destination {dest} must be absolute")
    if root is not None:
        if not inside(root, dest):
            raise _refuse(f"rsync destination {dest} is outside the served root {root}")
        if check_dest and not inside(os.path.realpath(root), os.path.realpath(dest)):
            raise _refuse(f"rsync destination {dest} resolves outside the served root {root}")
    if check_dest and not os.path.isdir(dest):
        raise _refuse(f"rsync destination {dest} is not a directory")
    return Decision("rsync", argv=[rsync, "--server", *opts, ".", dest])


def decide(original: str, root: str | None, *, rsync: str = "rsync",
           check_dest: bool = True) -> Decision:
    """What to run for ``SSH_ORIGINAL_COMMAND`` ``original`` under ``serve --root root``
    (raises :class:`ConfigError` for anything not allowed)."""
    try:
        words = shlex.split(original)
    except ValueError as exc:
        raise _refuse(f"cannot parse {original!r}: {exc}") from None
    if not words:
        return Decision("serve")
    if os.path.basename(words[0]) == "rsync":
        return _rsync(words, root, rsync, check_dest)
    if "serve" in words:
        return _serve_args(words[words.index("serve") + 1:], root)
    raise _refuse(f"{original!r} is not a streamsync serve, receive or rsync receiver command")
