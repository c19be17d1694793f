"""``streamsync metrics``: Prometheus metrics of workers, from their states.

Serves /metrics (prometheus-client's exposition) for the workers whose state
stores or gsyncd brick_*.status files are given, read afresh on every scrape:
workers this process does not run (a replicate started elsewhere, a gsyncd
session). A running "streamsync replicate --follow --metrics HOST:PORT"
serves the same metrics for its own workers.

Metrics (labels source, replica, session): streamsync_worker_status{status},
streamsync_crawl_mode{mode}, streamsync_lag_seconds,
streamsync_last_synced_timestamp_seconds, streamsync_pending_journals,
streamsync_pending_ops{kind}, streamsync_ops_applied_total{kind},
streamsync_entry_ops_applied_total{op}, streamsync_files_transferred_total,
streamsync_bytes_transferred_total, streamsync_journals_applied_total,
streamsync_open_failures{kind}, streamsync_held_files,
streamsync_batch_duration_seconds (histogram),
streamsync_checkpoint_timestamp_seconds, streamsync_checkpoint_completed,
streamsync_checkpoint_completion_timestamp_seconds. Example alert rules:
examples/prometheus/streamsync-alerts.yml.

Exit status: 0 after Ctrl-C/SIGTERM (or --once), 2 on a bad address, a port in
use or an unusable path.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "metrics", help="serve Prometheus metrics of workers from their state files",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  streamsync metrics --listen 127.0.0.1:9101 /backup/b1\n"
               "  streamsync metrics --listen :9101 ~/.local/state/streamsync\n"
               "  streamsync metrics --once /backup/b1 > /var/lib/node_exporter/streamsync.prom")
    p.add_argument("paths", nargs="*", metavar="STATE",
                   help="replica directories, state files, directories holding them, or gsyncd "
                        "brick_*.status files (default: as 'streamsync status')")
    listen = p.add_mutually_exclusive_group(required=True)
    listen.add_argument("--listen", metavar="HOST:PORT",
                        help="serve http://HOST:PORT/metrics until Ctrl-C/SIGTERM")
    listen.add_argument("--once", action="store_true",
                        help="print the metrics once to stdout (node_exporter textfile format)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, generate_latest

    from ..metrics import StateCollector, serve_metrics, state_rows
    from .status import find_state_files, given_or_default
    paths = given_or_default(list(args.paths))
    find_state_files(paths)  # an unusable path is an error now, not at the first scrape
    rows = state_rows(paths)
    if args.once:
        reg = CollectorRegistry()
        StateCollector(rows, registry=reg)
        sys.stdout.buffer.write(generate_latest(reg))
        return 0
    stop = threading.Event()
    old = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server, _ = serve_metrics(args.listen, rows)
    host = args.listen.rpartition(":")[0] or "0.0.0.0"
    print(f"serving http://{host}:{server.server_port}/metrics (Ctrl-C to stop)",
          file=sys.stderr, flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
        server.shutdown()
    return 0
