"""``streamsync replicate``: replicate a GlusterFS brick into a local directory."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

import orjson

from .. import human
from ..options import Options
from ..progress import progress_for, showing
from ..replicate import ENGINES, replicate
from ..target import default_state_path

try:  # the crawl worker (history/xsync/live, remote replicas, several bricks)
    from ..crawl import cli as _worker
except ImportError:  # pragma: no cover - optional part
    _worker = None

HELP = "replicate a brick (its changelogs + .glusterfs handles) into a replica directory"

DESCRIPTION = """\
Replicate the GlusterFS brick SOURCE_BRICK into REPLICA_DIR, as a
geo-replication worker does: the brick's changelogs (SOURCE_BRICK/.glusterfs/
changelogs unless --changelogs) are planned, entry and metadata ops are applied
to the replica, file data is copied by rsync (or tar) from the brick's gfid
handles. The replica has the brick layout (visible tree + .glusterfs handles),
so it can itself be replicated further.

Progress (data stime, entry stime, processed changelogs, status fields and the
failure ledger) is kept in an SQLite file (default, one per brick:
REPLICA_DIR/.glusterfs/streamsync/<escaped brick path>.sqlite): a run that is
interrupted or killed resumes where it stopped. Only one worker per brick may
feed a replica at a time; a second one is refused (several bricks of a
distributed volume may feed one replica, one worker each).

Options take gsyncd's names: -o sync-jobs=4 -o max-rsync-retries=3 ...
A safety limit on deletes: -o max-deletes=500 (or 2%) refuses a batch that
would delete more on the secondary (exit 2, nothing of it applied, the batch
named); --allow-deletes on the next run lets that batch through.

Exit codes: 0 done (no open failures), 1 done but the failure ledger has open
items (see --retry-failed), 2 error.
"""

EPILOG = """\
examples:
  streamsync replicate /bricks/b1 /backup/b1
  streamsync replicate --follow -o change-interval=2 /bricks/b1 /backup/b1
  streamsync replicate --engine tar --state /var/lib/ss/b1.sqlite /bricks/b1 /backup/b1
  streamsync replicate --retry-failed /bricks/b1 /backup/b1
  streamsync replicate -o max-deletes=2% /bricks/b1 gluster2::backupvol
  streamsync replicate --follow -o hot-file-size=67108864 /bricks/b1 /backup/b1  # hold >= 64 MiB files while they grow
  streamsync replicate /bricks/b1 /bricks/b2 /backup/vol        # one worker per brick
  streamsync replicate --mode auto /bricks/b1 backup@host:/backup/b1
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replicate", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE_BRICK", nargs="+",
                   help="brick directory (with .glusterfs); several bricks run one worker each")
    p.add_argument("replica", metavar="REPLICA_DIR", help="replica directory (created if missing)")
    p.add_argument("--state", metavar="FILE", help="SQLite state file (default: inside the replica)")
    p.add_argument("--xattr-stime", metavar="MASTER_UUID:SLAVE_UUID|auto",
                   help="keep the data/entry stimes in gsyncd's xattrs on the source brick root "
                        "(trusted.glusterfs.<master>.<slave>.stime / .entry_stime) instead of "
                        "the state file; 'auto' reads both uuids from the volumes (the brick's "
                        "volume id, and the HOST::VOLUME replica's as its glusterd says)")
    p.add_argument("--status-dir", metavar="DIR",
                   help="also write gsyncd's brick_<brick>.status file in DIR")
    p.add_argument("-o", "--option", action="append", default=[], metavar="NAME=VALUE",
                   help="gsyncd option (repeatable)")
    p.add_argument("--config", metavar="FILE", help="read options from a file first")
    p.add_argument("--engine", choices=ENGINES, help="data engine (default: sync-method, rsync)")
    p.add_argument("--changelogs", metavar="DIR", help="journal directory to read instead")
    p.add_argument("--archive", action="store_true",
                   help="archive processed journals (only for a --changelogs directory you own)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="process the journals present, then exit (default)")
    mode.add_argument("--follow", action="store_true",
                      help="keep following new journals every change-interval seconds (stop with Ctrl-C/SIGTERM)")
    if _worker is not None:
        _worker.add_worker_arguments(p)
    p.add_argument("--metrics", metavar="HOST:PORT",
                   help="serve Prometheus metrics of these workers on http://HOST:PORT/metrics "
                        "while running (see 'streamsync metrics --help' for the names)")
    p.add_argument("--retry-failed", action="store_true",
                   help="first re-queue every open item of the failure ledger")
    p.add_argument("--allow-deletes", action="store_true",
                   help="let through the batch that -o max-deletes refused last time (later "
                        "batches are checked again)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, no log lines")
    p.add_argument("-v", "--verbose", action="store_true", help="log gsyncd's lines to stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``-q``: not one log line, whatever its level (errors still end in the CLI's
    one-line message and the exit status)."""
    if not args.quiet:
        return _run(args)
    lg = logging.getLogger("streamsync")
    before = lg.level
    lg.setLevel(logging.CRITICAL + 1)
    try:
        return _run(args)
    finally:
        lg.setLevel(before)


def run_metrics(args: argparse.Namespace) -> Any:
    """Start ``--metrics HOST:PORT`` for the states of this run's workers (their
    files are read on each scrape, so a state made later is shown once it is
    there); returns the server, or None without ``--metrics``."""
    if not getattr(args, "metrics", None):
        return None
    from ..metrics import serve_metrics, state_rows
    sources = _worker.brick_sources(args) if _worker is not None else list(args.source)
    paths = [args.state or default_state_path(s, args.replica) for s in sources]

    def rows() -> list[dict[str, Any]]:
        there = [p for p in paths if os.path.exists(p)]
        return state_rows(there)() if there else []

    server, _ = serve_metrics(args.metrics, rows)
    if not args.quiet:
        print(f"metrics on http://{args.metrics.rpartition(':')[0] or '0.0.0.0'}:"
              f"{server.server_port}/metrics", file=sys.stderr, flush=True)
    return server


def _run(args: argparse.Namespace) -> int:
    server = run_metrics(args)
    try:
        return _run_one(args)
    finally:
        if server is not None:
            server.shutdown()


def _run_one(args: argparse.Namespace) -> int:
    # without --mode: replay the journals when they are exact (a stime, or they cover
    # the brick), else the worker's hybrid crawl; says which and why
    choice = _worker.default_mode(args) if _worker is not None else None
    if choice is not None:
        if not args.quiet:
            print(choice.line(), file=sys.stderr)
        if choice.mode == "xsync":
            args.mode = "auto"
    if _worker is not None and _worker.wants_worker(args):
        # crawl modes (history/xsync/live), [user@]host:/path replicas, several bricks:
        # the crawl worker built on the same dispatcher, sinks and state
        if args.archive:
            print("streamsync replicate: error: --archive applies to a local "
                  "replica of one brick without --mode", file=sys.stderr)
            return 2
        options = Options.from_file(args.config) if args.config else Options()
        return _worker.replicate_main(args, Options.from_pairs(args.option, base=options),
                                      choice=choice)
    args.source = args.source[0]
    if args.archive and not args.changelogs:
        print("streamsync replicate: error: --archive needs --changelogs DIR "
              "(a brick's own journals are never archived)", file=sys.stderr)
        return 2
    options = Options.from_file(args.config) if args.config else Options()
    options = Options.from_pairs(args.option, base=options)
    if args.verbose or args.follow:
        if not args.quiet and not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                                format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def _stop(signum, frame):  # noqa: ARG001
        stop.set()

    old = signal.signal(signal.SIGTERM, _stop)
    display = progress_for(sys.stderr, quiet=args.quiet, label="replicate")
    state = None
    if args.xattr_stime:
        from ..state.xattr import XattrState, stime_uuids
        master, slave = stime_uuids(args.xattr_stime, args.source, args.replica)
        state = XattrState(os.path.abspath(args.source), master, slave,
                           args.state or default_state_path(args.source, args.replica))
    try:
        with showing(display):
            summary = replicate(args.source, args.replica, state=state, state_path=args.state,
                                options=options, engine=args.engine, changelogs=args.changelogs,
                                follow=args.follow, retry_failed=args.retry_failed,
                                allow_deletes=args.allow_deletes,
                                archive=args.archive, status_dir=args.status_dir,
                                stop=stop, display=display)
    except KeyboardInterrupt:
        stop.set()
        raise
    finally:
        signal.signal(signal.SIGTERM, old)
        if state is not None:
            state.close()
    if args.json:
        out = summary.to_dict()
        if choice is not None:
            out["choice"] = choice.to_dict()
        sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    elif not args.quiet:
        print(f"replicated {human.count(summary.changelogs, 'changelog')} in "
              f"{human.count(summary.batches, 'batch')} ({human.duration(summary.duration)}): "
              f"{human.count(summary.entry_ops, 'entry op')} ({summary.entry_failures} failed), "
              f"{human.count(summary.meta_ops, 'meta op')} ({summary.meta_failures} failed), "
              f"{human.count(summary.data_files, 'file')} synced "
              f"({summary.data_abandoned} abandoned)")
        where = summary.state_path or args.state or default_state_path(
            args.source, args.replica)
        print(f"stime {human.stime(summary.data_stime)}; state in {where}")
        if summary.open_failures:
            print(f"{human.count(summary.open_failures, 'open failure')} in the ledger; "
                  f"re-queue them with --retry-failed")
    return 1 if summary.open_failures else 0
