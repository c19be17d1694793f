"""``streamsync serve``: the replica side of a remote replication (run over ssh).

Speaks the JSON-lines protocol of :mod:`streamsync.remote.protocol` on
stdin/stdout; logs go to stderr. Not meant to be run by hand: ``streamsync
replicate BRICK user@host:/path`` starts it as ``ssh user@host streamsync serve``,
and the tar engine as ``streamsync serve --receive-tar /path`` (a replica, or
the aux-gfid mount of a volume that a serve session made). With
``replicate BRICK user@host::VOLUME`` serve mounts the GlusterFS volume VOLUME
of this host for the session (aux-gfid, as gsyncd's secondary side) and
unmounts it when the session ends; a serve confined with --root does not.

Confining a key to replicas under one directory (replica host, in
``~/.ssh/authorized_keys``)::

    command="streamsync serve --root /srv/replicas",no-pty,no-agent-forwarding,no-port-forwarding,no-X11-forwarding ssh-ed25519 AAAA... geo@primary

Every session of that key then lands in ``serve``, the data transfers too:
``serve`` reads ``SSH_ORIGINAL_COMMAND`` and runs the protocol, the tar
receiver, or an rsync receiver (``rsync --server`` without ``--sender``, with
allow-listed options only, into a destination that resolves inside the root;
the administrator's ``rsync``, see ``--rsync``), and refuses anything else.
Replica paths are opened from the root without following symlinks.

Exit status: 0 when the client closed the session, 2 on a refused handshake,
forced command or broken framing, the tar receiver's status with
``--receive-tar`` (2 when a member was refused).

Example (by hand, to check the key works)::

    ssh geo@backup streamsync serve </dev/null   # prints nothing, exits 0
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ..errors import ConfigError

__all__ = ["register", "run"]

_ENV = "SSH_ORIGINAL_COMMAND"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="replica side of an SSH replication (JSON lines on stdin/stdout)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", metavar="DIR",
                   help="only serve replicas inside DIR, opened without following symlinks "
                        "(recommended in authorized_keys command=)")
    p.add_argument("--receive-tar", metavar="REPLICA",
                   help="read a tar data stream on stdin into REPLICA's existing file handles")
    p.add_argument("--rsync", metavar="PATH", default="rsync",
                   help="the rsync run for a forced command's rsync receiver (default: rsync "
                        "on PATH; never the client's)")
    p.set_defaults(func=run)


def _logging(debug: bool) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                            stream=sys.stderr,
                            format="[%(asctime)s] %(levelname)s serve: %(message)s")


def _receive(path: str, root: str | None) -> int:
    from ..remote.receive import receive_tar
    from ..remote.server import open_data_target
    if not os.path.isabs(path):
        raise ConfigError(f"--receive-tar {path}: the replica path must be absolute")
    sink = open_data_target(os.path.abspath(path), root)
    try:
        receipt = receive_tar(sys.stdin.buffer, sink)
    finally:
        sink.close()
    return receipt.returncode


def run(args: argparse.Namespace) -> int:
    from ..remote.forced import decide
    from ..remote.server import serve
    _logging(args.debug)
    receive = args.receive_tar
    original = os.environ.get(_ENV)
    if original is not None:
        decision = decide(original, args.root, rsync=args.rsync)
        if decision.kind == "rsync":
            assert decision.argv is not None
            sys.stdout.flush()
            try:
                os.execvp(decision.argv[0], decision.argv)
            except OSError as exc:
                raise ConfigError(f"cannot run {decision.argv[0]}: {exc.strerror}") from None
        if decision.kind == "receive-tar":
            receive = decision.path
    if receive is not None:
        return _receive(receive, args.root)
    # stdout is the protocol: nothing else may write to it
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout = sys.stderr
    try:
        return serve(sys.stdin.buffer, out, allowed_root=args.root)
    finally:
        out.close()
