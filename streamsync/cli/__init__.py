"""The ``streamsync`` command: a thin shell over the library's public functions.

Each subcommand lives in its own module ``streamsync/cli/<name>.py`` exposing
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
taking the parsed arguments and returning an exit code.

Exit codes: 0 success, 1 "ran, found a difference/failure" (e.g. ``verify``),
2 bad input or usage (one-line error naming the file and line/offset; the
traceback only with ``--debug``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from ..errors import StreamsyncError

__all__ = ["main", "build_parser"]

#: subcommand modules, in the order ``--help`` lists them
COMMANDS = ("decode", "plan", "replicate", "verify", "status", "failures", "serve", "analyze", "changes",
            "whatif")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every subcommand whose module is present)."""
    parser = argparse.ArgumentParser(
        prog="streamsync",
        description=(
            "GlusterFS geo-replication changelog processing: decode brick journals, "
            "plan what a replica needs, replicate a brick to a directory or over SSH, "
            "verify, and analyse changelog history."),
        epilog="Run 'streamsync COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``streamsync`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.debug:
        import logging
        logging.basicConfig(level=logging.DEBUG,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except StreamsyncError as exc:
        if args.debug:
            raise
        print(f"streamsync {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # output piped into head & co.: not an error of ours
        try:
            sys.stdout = None  # type: ignore[assignment]
        finally:
            return 0
    except OSError as exc:
        # a read-only or unwritable directory, a full disk, ...: the system said
        # no; one line with the path and the cause (the traceback with --debug)
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"streamsync {args.command}: error: {where}{exc.strerror or exc}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"streamsync {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
