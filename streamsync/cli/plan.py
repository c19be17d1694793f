"""``streamsync plan``: what a replica would be sent for each changelog, as JSON lines.

::

    streamsync plan --changelogs DIR (--source-state FILE | --brick DIR | --mount DIR)
                    [--data-stime SEC] [--entry-stime SEC] [-o NAME=VALUE ...]
                    [--config FILE] [--summary]

One JSON object per changelog, in order::

    {"changelog": "CHANGELOG.<ts>", "ts": <int>, "batch": <int|null>, "skipped": <bool>,
     "entries_gated": <bool>, "entry_ops": [<gsyncd entry dicts in order>],
     "meta_ops": [<META dicts sorted by go>], "data": [<".gfid/<gfid>" sorted>],
     "stats": {"<FOP>": <count>, ...}}

``batch`` numbers the batches of non-skipped changelogs from 0 (``null`` for
skipped ones). Metadata ops carry the source's stat now; gfids gone from the
source are dropped. Names that are not UTF-8 appear as ``{"b64": ...}``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Iterator

import orjson

from .._gc import paused
from ..discover import discover
from ..ops import Batch, ChangelogPlan, EntryOp
from ..options import Options
from ..records import GFID_PREFIX
from ..times import stime_arg

__all__ = ["register", "plan_rows", "entry_op_json"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "plan", help="dry run: entry/meta/data ops per changelog as gsyncd would send them",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='examples:\n  streamsync plan --changelogs /bricks/b1/.glusterfs/changelogs --brick /bricks/b1\n  streamsync plan --changelogs journals/ --source-state source.json --data-stime 1700000000\n  streamsync plan --changelogs /bricks/b1 --mount /mnt/aux-gfid --summary\n\nexit codes: 0 planned, 2 bad input (a one-line error naming the journal and line)')
    p.add_argument("--changelogs", required=True, action="append", metavar="DIR",
                   help="directory (or file, archive) of processed or raw journals; repeatable")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--source-state", metavar="FILE",
                     help="JSON namespace of the source now (MemoryView format)")
    src.add_argument("--brick", metavar="DIR", help="a brick directory (.glusterfs handles)")
    src.add_argument("--mount", metavar="DIR", help="an aux-gfid GlusterFS mount")
    p.add_argument("--data-stime", type=stime_arg, metavar="TIME",
                   help="data stime: changelogs with ts < TIME are skipped (SEC, SEC,NSEC, "
                        "or ISO 8601 in UTC unless it has an offset)")
    p.add_argument("--entry-stime", type=stime_arg, metavar="TIME",
                   help="entry stime: entry ops of ts <= max(entry, data stime) are gated "
                        "(once a data stime is known, as in gsyncd)")
    p.add_argument("-o", "--option", action="append", default=[], metavar="NAME=VALUE",
                   help="gsyncd option, e.g. -o changelog-batch-size=727040 "
                        "-o ignore-deletes=true -o sync-method=tarssh -o hot-tier=true")
    p.add_argument("--config", metavar="FILE", help="gsyncd-style config file (before -o)")
    p.add_argument("--summary", action="store_true", help="a readable table instead of JSON")
    p.add_argument("--no-prefetch", action="store_true",
                   help="look names and gfids up one at a time (default: in bulk, concurrently)")
    p.set_defaults(func=run)


def entry_op_json(op: EntryOp) -> dict[str, Any]:
    """The gsyncd entry dict with names made JSON-safe."""
    return op.to_gsyncd(json_names=True)


def _view(args: argparse.Namespace):
    import os

    from ..errors import SourceError
    from ..views import BrickView, MemoryView, MountView
    if args.source_state:
        return MemoryView.from_json(args.source_state)
    if args.brick:
        if not os.path.isdir(os.path.join(args.brick, ".glusterfs")):
            raise SourceError(f"{args.brick}: not a brick directory (no .glusterfs)")
        return BrickView(args.brick)
    if not os.path.isdir(os.path.join(args.mount, ".gfid")):
        raise SourceError(f"{args.mount}: not an aux-gfid mount (no .gfid; mount with "
                          f"-o aux-gfid-mount)")
    return MountView(args.mount)


def plan_rows(batches: Iterator[Batch], view) -> Iterator[dict[str, Any]]:
    """One output object per changelog (meta ops with the view's stat now)."""
    for index, plan in _plans(batches):
        yield _row(plan, index, view)


def _plans(batches: Iterator[Batch]) -> Iterator[tuple[int | None, ChangelogPlan]]:
    """``(batch number or None, plan)`` of every changelog, in order."""
    for batch in batches:
        index = None if batch.index < 0 else batch.index
        for plan in batch.plans:
            yield index, plan


def _meta_stats(plan: ChangelogPlan, view) -> list[tuple[str, Any]]:
    """``(gfid, stat now)`` of the plan's meta gfids the source still has (the META
    ops sent; gone ones are dropped)."""
    if not plan.meta_gfids:
        return []
    v = view.prefetch(plan.meta_gfids)
    return [(g, st) for g in plan.meta_gfids if (st := v.lstat(g)) is not None]


def _row(plan: ChangelogPlan, index: int | None, view) -> dict[str, Any]:
    meta = [{"op": "META", "go": GFID_PREFIX + g, "stat": st.to_dict()}
            for g, st in _meta_stats(plan, view)]
    return {"changelog": plan.changelog.name, "ts": plan.ts, "batch": index,
            "skipped": plan.skipped, "entries_gated": plan.entries_gated,
            "entry_ops": [entry_op_json(op) for op in plan.entry_ops],
            "meta_ops": meta, "data": [GFID_PREFIX + g for g in plan.data_gfids],
            "stats": dict(plan.stats) if not plan.skipped else {}}


def run(args: argparse.Namespace) -> int:
    # planning makes no reference cycles, only many small objects: the collector
    # would only re-scan the loaded source view (about 1.2x of the run). Paused,
    # not switched off: main() also runs inside other programs (and the tests)
    with paused():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..pipeline import batch_plans, plan_changelogs
    opts = Options.from_file(args.config) if args.config else Options()
    opts = Options.from_pairs(args.option, base=opts)
    view = _view(args)
    plans = plan_changelogs(discover(args.changelogs), view=view, options=opts,
                            data_stime=args.data_stime, entry_stime=args.entry_stime,
                            prefetch=not args.no_prefetch)
    batches = batch_plans(plans, batch_size=opts.changelog_batch_size)
    out = sys.stdout.buffer
    if not args.summary:
        dumps = orjson.dumps
        for row in plan_rows(batches, view):
            out.write(dumps(row) + b"\n")
        out.flush()
        return 0
    header = f"{'changelog':<26} {'batch':>5} {'state':<8} {'entry':>6} {'meta':>6} {'data':>6}"
    lines = [header, "-" * len(header)]
    tot = [0, 0, 0, 0]
    for index, plan in _plans(batches):  # counted from the plans: no rows are built
        state = "skipped" if plan.skipped else ("gated" if plan.entries_gated else "")
        batch = "-" if index is None else str(index)
        n = (len(plan.entry_ops), len(_meta_stats(plan, view)), len(plan.data_gfids))
        tot[0] += 1
        for i in range(3):
            tot[i + 1] += n[i]
        lines.append(f"{plan.changelog.name:<26} {batch:>5} {state:<8} {n[0]:>6} {n[1]:>6} "
                     f"{n[2]:>6}")
    lines.append("-" * len(header))
    lines.append(f"{str(tot[0]) + ' changelogs':<26} {'':>5} {'':<8} {tot[1]:>6} {tot[2]:>6} "
                 f"{tot[3]:>6}")
    out.write(("\n".join(lines) + "\n").encode())
    out.flush()
    return 0

