"""``streamsync verify``: compare a source brick (or a manifest) with a replica."""

from __future__ import annotations

import argparse
import os
import sys

import orjson

from .. import human
from ..progress import progress_for, showing
from ..verify import compare, format_report, load_manifest, scan_tree

HELP = "compare the namespaces of a source brick and a replica (exit 1 when they differ)"

DESCRIPTION = """\
Compare SOURCE and REPLICA_DIR name by name, excluding .glusterfs (and
.trashcan) at the top: type, permission bits, owner, group, size and SHA-256
of files, symlink targets, hard-link groups and, with --mtimes, modification
times (whole seconds), and with --gfids the gfid of every object (on by
default when both sides are GlusterFS mounts: a differing gfid is a difference,
geo-replication keeps the primary's). SOURCE may also be a manifest (JSON
lines, as examples/demo-brick/demo.manifest.jsonl).

With --repair (SOURCE a brick, REPLICA_DIR a brick-layout replica, an
aux-gfid mount or HOST::VOLUME) what differs is put back through the same
sinks replication uses, so every object gets the primary's gfid: missing names
are created (or hard-linked), differing content is sent again, modes, owners
and mtimes are fixed. Names only on the secondary, and names holding another
gfid, type or symlink target, are reported and left alone. The sync points
(stimes) are not touched; the worker lock of the pair is held meanwhile.
--dry-run lists what it would do; --path limits it to one subtree.

examples:
  streamsync verify /bricks/b1 /backup/b1
  streamsync verify /mnt/primary /mnt/secondary        # two volumes: gfids too
  streamsync verify --repair --dry-run /bricks/b1 gluster2::backupvol
  streamsync verify --repair --path projects/a /bricks/b1 /backup/b1

Exit codes: 0 equal (with --repair: equal after it; with --dry-run: nothing to
do), 1 different (a readable diff, or the repair list, is printed; with
--repair: something could not be put right), 2 error.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="source brick directory or manifest .jsonl")
    p.add_argument("replica", metavar="REPLICA_DIR", help="replica directory")
    p.add_argument("--mtimes", action="store_true", help="also compare mtimes")
    p.add_argument("--no-hash", action="store_true", help="compare sizes only, not content")
    p.add_argument("--gfids", action="store_true",
                   help="also compare gfids (default when both sides are GlusterFS mounts)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per difference, then a summary object")
    p.add_argument("--limit", type=int, default=200, help="differences to print (default 200)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress display (there is none on a pipe either)")
    p.add_argument("--repair", action="store_true",
                   help="put back on the secondary what differs from the primary brick")
    p.add_argument("--dry-run", action="store_true", help="with --repair: only list it")
    p.add_argument("--path", metavar="SUBTREE",
                   help="with --repair: only this relative path and what is under it")
    p.set_defaults(func=run)


def _gluster(path: str) -> bool:
    """Whether ``path`` is on a GlusterFS mount (its gfid xattr answers)."""
    try:
        os.getxattr(path, "glusterfs.gfid.string")
    except OSError:
        return False
    return True


def _repair(args: argparse.Namespace) -> int:
    from ..repair import repair
    r = repair(args.source, args.replica, subtree=args.path, dry_run=args.dry_run)
    failed = {a: why for a, why in r.failed}
    if args.json:
        out = sys.stdout.buffer
        for a in r.actions:
            out.write(orjson.dumps({**a._asdict(), "done": a.acts and not args.dry_run
                                    and a not in failed, "error": failed.get(a)}) + b"\n")
        out.write(orjson.dumps({"dry_run": args.dry_run, "actions": len(r.actions),
                                "failed": len(r.failed), "remaining": len(r.remaining)}) + b"\n")
    else:
        for a in r.actions:
            print(("would " if args.dry_run and a.acts else "") + str(a)
                  + (f": FAILED: {failed[a]}" if a in failed else ""))
        if args.dry_run:
            print(f"dry run: {human.count(len(r.actions), 'action')}, nothing changed")
        else:
            for d in r.remaining:
                print(f"still different: {d}")
            print("equal after the repair" if not r.remaining else
                  f"{human.count(len(r.remaining), 'difference')} left")
    if args.dry_run:
        return 1 if r.actions else 0
    return 1 if r.remaining or r.failed else 0


def run(args: argparse.Namespace) -> int:
    if args.repair:
        return _repair(args)
    if args.dry_run or args.path:
        print("streamsync verify: error: --dry-run and --path go with --repair", file=sys.stderr)
        return 2
    gfids = args.gfids or (not os.path.isfile(args.source) and _gluster(args.source)
                           and _gluster(args.replica))
    display = progress_for(sys.stderr, quiet=args.quiet, label="verify", data="hashed")
    with showing(display):
        if os.path.isfile(args.source):
            src = load_manifest(args.source)
        else:
            src = scan_tree(args.source, hashes=not args.no_hash, gfids=gfids,
                            progress=display)
        if display is not None:  # the replica should hold what the source holds
            display.expect(len(src), 0 if args.no_hash else
                           sum(n.size or 0 for n in src.values() if n.type == "f"))
        rep = scan_tree(args.replica, hashes=not args.no_hash, gfids=gfids, progress=display)
    diffs = compare(src, rep, mtimes=args.mtimes)
    if args.json:
        out = sys.stdout.buffer
        for d in diffs:
            out.write(orjson.dumps(d.to_dict(), option=orjson.OPT_NON_STR_KEYS) + b"\n")
        out.write(orjson.dumps({"equal": not diffs, "differences": len(diffs),
                                "source_names": len(src), "replica_names": len(rep)}) + b"\n")
    else:
        for line in format_report(diffs, limit=args.limit):
            print(line)
        if diffs:
            print(f"{len(diffs)} differences ({len(src)} names in the source, "
                  f"{len(rep)} in the replica)")
        else:
            print(f"equal: {len(src)} names")
    return 1 if diffs else 0
