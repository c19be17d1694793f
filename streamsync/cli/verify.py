"""``streamsync verify``: compare a source brick (or a manifest) with a replica."""

from __future__ import annotations

import argparse
import os
import sys

import orjson

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

examples:
  streamsync verify /bricks/b1 /backup/b1
  streamsync verify /mnt/primary /mnt/secondary        # two volumes: gfids too

Exit codes: 0 equal, 1 different (a readable diff is printed), 2 error.
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
    p.set_defaults(func=run)


def _gluster(path: str) -> bool:
    """Whether ``path`` is on a GlusterFS mount (its gfid xattr answers)."""
    try:
        os.getxattr(path, "glusterfs.gfid.string")
    except OSError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
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
