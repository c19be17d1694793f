"""``streamsync changes``: what changed in a time window, glusterfind style."""

from __future__ import annotations

import argparse
import sys

import orjson

from ..analysis._cli_common import source_brick
from ..times import TIME_HELP, time_arg
from ..analysis._input import iter_journals, read_records
from ..analysis.changes import list_changes
from ..analysis.resolve import Resolver

HELP = "list NEW/MODIFY/RENAME/DELETE paths of a time window (glusterfind style)"

DESCRIPTION = """\
List what changed between two points in time, as glusterfind does:

  NEW <path>            created (and possibly renamed, written) in the window
  MODIFY <path>         existing file or directory whose data or attributes changed
  RENAME <old> <new>    existing name moved (old: path at --since, new: at --until)
  DELETE <path>         existing name removed (also a name replaced by a rename)

SOURCE may be journal files, changelog directories (raw or processed) or a
brick. Journals before --since are replayed only to know the names as they
were at --since. Names older than the journals are resolved through the brick
(--brick, or SOURCE when it is a brick): directory handles and
trusted.gfid2path xattrs. Paths are escaped like glusterfind (% -> %25,
space -> %20, newline -> %0A) unless --no-encode. --json prints one JSON
object per row.
"""

EPILOG = """\
examples:
  streamsync changes BRICK --since 1795470705
  streamsync changes --json CHANGELOG_DIR --since 2026-11-23T21:51:45 --until 2026-11-23T21:51:55
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("changes", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="journal files, changelog directories, bricks or archive_*.tar files")
    p.add_argument("--since", type=time_arg, metavar="TIME",
                   help=f"window start: journals with stamp >= TIME ({TIME_HELP})")
    p.add_argument("--until", type=time_arg, metavar="TIME",
                   help="window end: journals with stamp <= TIME (same syntax)")
    p.add_argument("--brick", metavar="DIR", help="brick used to resolve names older than the journals")
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    p.add_argument("--only-namespace-changes", action="store_true",
                   help="omit MODIFY rows (as glusterfind --only-namespace-changes)")
    p.add_argument("--no-encode", action="store_true", help="print names without %%-escaping")
    p.add_argument("--field-separator", default=" ", metavar="SEP",
                   help="separator between fields (default: a space)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    brick = source_brick(args.brick, args.sources)
    resolver = Resolver(brick=brick) if brick is not None else None
    pairs = ((c, read_records(c)) for c in iter_journals(args.sources, until=args.until))
    rows = list_changes(pairs, since=args.since, until=args.until, resolver=resolver,
                        only_namespace=args.only_namespace_changes)
    out = sys.stdout.buffer
    if args.json:
        dumps = orjson.dumps
        out.write(b"".join(dumps(r.to_dict()) + b"\n" for r in rows))
    else:
        text = "".join(r.line(sep=args.field_separator, encode=not args.no_encode) + "\n"
                       for r in rows)
        out.write(text.encode("utf-8", "surrogateescape"))
    out.flush()
    return 0
