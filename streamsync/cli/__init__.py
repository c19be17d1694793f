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
import re
import sys
from typing import Sequence

from .. import __version__
from ..errors import StreamsyncError

__all__ = ["main", "build_parser"]

#: subcommand modules, in the order ``--help`` lists them
COMMANDS = ("decode", "plan", "replicate", "verify", "status", "failures", "metrics", "serve",
            "analyze", "changes", "whatif")


#: what every command's --help ends with unless it says more precisely itself
_EXIT_CODES = ("exit codes: 0 success, 1 ran but found a difference or an open failure, "
               "2 bad input or usage (a one-line error; the traceback with --debug), "
               "130 interrupted")
_ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|exc|obj):`~?([^`]+)`")


def plain_help(text: str | None) -> str | None:
    """``text`` without reStructuredText markup, for a terminal.

    >>> plain_help("``streamsync plan``: see :mod:`streamsync.remote.protocol`, "
    ...            ":class:`~streamsync.ops.EntryOp`::")
    'streamsync plan: see streamsync.remote.protocol, EntryOp:'
    """
    if not text:
        return text
    text = _ROLE.sub(lambda m: m[1].rsplit(".", 1)[-1] if m[0].count("~") else m[1], text)
    text = text.replace("``", "")
    lines = []
    for line in text.split("\n"):
        stripped = line.rstrip()
        if stripped.strip() == "::":
            continue
        if stripped.endswith("::"):
            line = stripped[:-1]
        lines.append(line)
    return "\n".join(lines)


def _finish_help(p: argparse.ArgumentParser) -> None:
    """Plain text, the exit codes, and ``--debug`` accepted after the command too."""
    p.description = plain_help(p.description)
    p.epilog = plain_help(p.epilog)
    said = (p.description or "") + (p.epilog or "")
    if "exit code" not in said.lower() and "exit status" not in said.lower():
        p.epilog = (p.epilog + "\n\n" if p.epilog else "") + _EXIT_CODES
    if p.formatter_class is argparse.HelpFormatter:
        p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show full tracebacks and debug logging")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every subcommand whose module is present, or ``only``
    that one (what :func:`main` builds for a command line naming its command: a
    command then imports none of the other commands' modules).

    >>> sorted(build_parser("plan")._subparsers._group_actions[0].choices)
    ['plan']
    """
    parser = argparse.ArgumentParser(
        prog="streamsync",
        description=(
            "GlusterFS geo-replication changelog processing: decode brick journals, "
            "plan what a replica needs, replicate a brick to a directory or over SSH, "
            "verify, and analyse changelog history."),
        epilog="Run 'streamsync COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks and debug logging (also after COMMAND)")
    parser.add_argument("--version", action="version", version=f"streamsync {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only else COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    for p in sub.choices.values():
        _finish_help(p)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The command a command line names, when only ``--debug`` comes before it;
    else ``None`` (``-h`` there asks for the list of every command).

    >>> _command_in(["--debug", "plan", "-h"]), _command_in(["-h", "plan"]), _command_in(["x"])
    ('plan', None, None)
    """
    for arg in argv:
        if arg != "--debug":
            return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``streamsync`` console script."""
    parser = build_parser(_command_in(sys.argv[1:] if argv is None else argv))
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
