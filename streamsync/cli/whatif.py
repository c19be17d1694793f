"""``streamsync whatif``: price a replication of archived journals under different settings."""

from __future__ import annotations

import argparse
import sys

import orjson

from .. import human
from ..analysis._cli_common import source_brick
from ..analysis.whatif import CostModel, compare
from ..errors import ConfigError
from ..options import Options

HELP = "replay journals through the planner and dispatcher with a cost model"

DESCRIPTION = """\
Replay journals through the real planner and dispatcher against a recording
sink and a cost model, once per combination of the settings given, and report
the estimated time and the transfers (files, bytes) each would need.

The source is the brick (--brick, or a PATH that is a brick): real file sizes
and existence. Without one, a view rebuilt from the journals is used and every
file counts as --cost default_file_size bytes.

Settings take comma-separated lists: --batch-size 65536,727040 --sync-jobs 1,3,6
--sync-method rsync,tarssh. --option sets any other gsyncd option for every run;
--cost name=value changes the cost model (seconds and bytes; see
streamsync.analysis.whatif.CostModel: rpc_latency, entry_op, meta_op, lookup,
rsync_startup, rsync_per_file, rsync_per_byte, tar_startup, tar_per_file,
tar_per_byte, batch_overhead, default_file_size).
"""

EPILOG = """\
examples:
  streamsync whatif BRICK --sync-jobs 1,3,6 --sync-method rsync,tarssh
  streamsync whatif --json ARCHIVE_DIR --batch-size 16384,727040 --cost rpc_latency=0.02
"""


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None


def _words(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("whatif", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="journal files, changelog directories, bricks or archive_*.tar files")
    p.add_argument("--brick", metavar="DIR", help="the source brick (sizes, existence)")
    p.add_argument("--batch-size", type=_ints, metavar="N[,N...]",
                   help="changelog-batch-size values to compare")
    p.add_argument("--sync-jobs", type=_ints, metavar="N[,N...]", help="sync-jobs values")
    p.add_argument("--sync-method", type=_words, metavar="M[,M...]",
                   help="sync-method values (rsync, tarssh)")
    p.add_argument("-o", "--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a gsyncd option for every run (repeatable)")
    p.add_argument("--cost", action="append", default=[], metavar="NAME=VALUE",
                   help="a cost-model figure (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per run")
    p.set_defaults(func=run)


def _model(pairs: list[str]) -> CostModel:
    fields = CostModel._fields
    kw = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields:
            raise ConfigError(f"--cost {pair!r}: expected NAME=VALUE with NAME one of "
                              f"{', '.join(fields)}")
        typ = type(CostModel._field_defaults[name])
        try:
            kw[name] = typ(value)
        except ValueError:
            raise ConfigError(f"--cost {pair!r}: not a number") from None
    return CostModel(**kw)


def run(args: argparse.Namespace) -> int:
    base = Options.from_pairs(args.option)
    model = _model(args.cost)
    grid: dict[str, list] = {}
    if args.batch_size:
        grid["changelog-batch-size"] = args.batch_size
    if args.sync_jobs:
        grid["sync-jobs"] = args.sync_jobs
    if args.sync_method:
        grid["sync-method"] = args.sync_method
    if not grid:
        grid = {"changelog-batch-size": [base.changelog_batch_size]}
    brick = source_brick(args.brick, args.paths)
    view = None
    if brick is not None:
        from ..views import BrickView
        view = BrickView(brick)
    results = compare(args.paths, view=view, base=base, grid=grid, model=model)
    out = sys.stdout.buffer
    if args.json:
        out.write(b"".join(orjson.dumps(r.to_dict()) + b"\n" for r in results))
    else:
        out.write(render_table(results).encode())
    out.flush()
    return 0


def render_table(results) -> str:
    """A fixed-width table of :class:`~streamsync.analysis.whatif.WhatIfResult` rows."""
    keys = list(results[0].settings) if results else []
    head = keys + ["batches", "entry_ops", "meta_ops", "transfers", "files", "size", "estimate"]
    rows = [[str(r.settings[k]) for k in keys] +
            [str(r.batches), str(r.entry_ops), str(r.meta_ops), str(r.transfers),
             str(r.files_sent), human.size(r.bytes_sent), human.duration(r.seconds)]
            for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    if results:
        best = min(results, key=lambda r: r.seconds)
        lines.append("")
        lines.append("fastest: " + ", ".join(f"{k}={v}" for k, v in best.settings.items())
                     + f" ({human.duration(best.seconds)} estimated)")
    return "\n".join(lines) + "\n"
