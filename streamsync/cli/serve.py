"""``streamsync serve``: the replica side of a remote replication (run over ssh).

Speaks the JSON-lines protocol of :mod:`streamsync.remote.protocol` on
stdin/stdout; logs go to stderr. Not meant to be run by hand: ``streamsync
replicate BRICK user@host:/path`` starts it as ``ssh user@host streamsync serve``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="replica side of an SSH replication (JSON lines on stdin/stdout)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", metavar="DIR",
                   help="only serve replicas inside DIR (recommended in authorized_keys command=)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..remote.server import serve
    # stdout is the protocol: nothing else may write to it
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout = sys.stderr
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                            stream=sys.stderr,
                            format="[%(asctime)s] %(levelname)s serve: %(message)s")
    inp = sys.stdin.buffer
    try:
        return serve(inp, out, allowed_root=args.root)
    finally:
        out.close()
