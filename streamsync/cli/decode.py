"""``streamsync decode``: raw brick journals -> processed text or JSON lines."""

from __future__ import annotations

import argparse
import sys
from itertools import chain
from typing import Iterable, Iterator

import orjson
from more_itertools import chunked

from ..decode import decode_journal, is_raw_journal, iter_journal
from ..discover import discover, read_changelog_bytes
from ..errors import StreamsyncError
from ..times import TIME_HELP, time_arg
from ..parse import parse_processed, render_processed
from ..records import Record

HELP = "decode raw brick journals into processed text (as libgfchangelog) or JSON"

DESCRIPTION = """\
Decode GlusterFS changelog journals.

PATH may be a journal file (raw CHANGELOG.<ts> as the brick writes it, or
already processed text), a changelog directory (flat or YYYY/MM/DD layout), a
brick directory (its .glusterfs/changelogs is used) or a gsyncd archive_*.tar.
Journals are handled in timestamp order.

Default output is the processed text libgfchangelog would publish, byte for
byte (one record per line: "E <gfid> <FOP> ...", "D <gfid>", "M <gfid> <FOP>").
With --json, one JSON object per record, with the journal's name and stamp.

Both ascii and binary journals (v1.1, v1.2) are decoded. A corrupt or
truncated journal stops with exit code 2 and a one-line error naming the file
and the byte offset; with --keep-going it is reported and skipped instead.
"""

EPILOG = """\
examples:
  streamsync decode BRICK/.glusterfs/changelogs/2026/11/24/CHANGELOG.1795467118
  streamsync decode --json BRICK | head
  streamsync decode --since 1795467100 --until 1795467200 CHANGELOG_DIR
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="journal files, changelog directories, bricks or archive_*.tar files")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per record instead of processed text")
    p.add_argument("--since", type=time_arg, metavar="TIME",
                   help=f"only journals with stamp >= TIME ({TIME_HELP})")
    p.add_argument("--until", type=time_arg, metavar="TIME",
                   help=f"only journals with stamp <= TIME ({TIME_HELP})")
    p.add_argument("--keep-going", action="store_true",
                   help="report a bad journal on stderr and go on (exit code 2 at the end)")
    p.set_defaults(func=run)


#: records rendered and written at a time
_WRITE_BATCH = 2048
#: journals up to this size are decoded once into memory; larger ones are validated
# first, then decoded again while written (memory stays near the journal's size)
_IN_MEMORY = 16 << 20


def _validated_records(data: bytes, where: str) -> Iterator[Record]:
    """The records of one journal, raw or processed, after checking every one of them."""
    if len(data) <= _IN_MEMORY:
        if is_raw_journal(data):
            return iter(decode_journal(data, path=where))
        return iter(list(parse_processed(data, path=where)))
    if is_raw_journal(data):
        records = iter_journal(data, path=where)
        first = next(records, None)  # the validation pass: raises before any output
        return records if first is None else chain((first,), records)
    for _ in parse_processed(data, path=where):
        pass
    return parse_processed(data, path=where)


def _json_lines(records: Iterable[Record], name: str, ts: int) -> bytes:
    dumps = orjson.dumps
    out = []
    for r in records:
        d = r.to_dict()
        d["changelog"] = name
        d["ts"] = ts
        out.append(dumps(d))
    return b"\n".join(out) + b"\n" if out else b""


def run(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    failed = 0
    for cl in discover(args.paths, since=args.since, until=args.until):
        where = cl.where
        try:
            records = _validated_records(read_changelog_bytes(cl), where)
        except StreamsyncError as exc:
            if not args.keep_going:
                raise
            failed += 1
            print(f"streamsync decode: skipped: {exc}", file=sys.stderr)
            continue
        for batch in chunked(records, _WRITE_BATCH):
            out.write(_json_lines(batch, cl.name, cl.ts) if args.json
                      else render_processed(batch))
    out.flush()
    if failed:
        print(f"streamsync decode: {failed} journal(s) could not be decoded", file=sys.stderr)
        return 2
    return 0
