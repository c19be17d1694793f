"""``streamsync failures``: the failure ledger, item by item."""

from __future__ import annotations

import argparse
import datetime as _dt
import errno as E
import sys

import orjson

from ..times import TIME_HELP, time_arg
from ..errors import ConfigError
from ..failures import KINDS, LedgerRow, forget, ledger_rows
from .status import find_state_files, given_or_default

HELP = "list the failure ledger: what the replica could not take, and what it still owes"

DESCRIPTION = """\
List the items of the failure ledger of one or more workers: when it was first
seen (UTC), the journal, the kind (entry, data, meta) and entry op, the gfid and
its path on the source brick (when the brick still has it), the errno by name
and text, what that object is still owed (every open kind of its gfid: a retry
applies entry, then data, then meta) and the attempts so far.

STATE is a replica directory, a state file or a directory holding state files
(default: $STREAMSYNC_STATE, else ~/.local/state/streamsync, where workers with
a remote replica or a GlusterFS volume keep theirs).

--retry re-queues just the listed open items (the state names its brick and
replica; nothing else is replicated). --forget marks them resolved without
applying them (after a repair by hand); it needs --yes. `streamsync replicate
--retry-failed` re-queues every open item.

Exit codes: 0 nothing open among the listed items, 1 open items listed, 2 error.
"""

EPILOG = """\
examples:
  streamsync failures /backup/b1
  streamsync failures --json --kind data ~/.local/state/streamsync
  streamsync failures --errno ENOSPC --since 2026-12-01T00:00 /backup/b1
  streamsync failures --kind data --retry /backup/b1
  streamsync failures --op RENAME --forget --yes /backup/b1
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("failures", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="STATE",
                   help="replica directories, state files or directories holding them")
    p.add_argument("--all", action="store_true", help="also resolved items")
    p.add_argument("--json", action="store_true", help="one JSON object per item (JSON lines)")
    p.add_argument("--since", type=time_arg, metavar="TIME",
                   help=f"items first seen at or after TIME ({TIME_HELP})")
    p.add_argument("--kind", action="append", choices=KINDS, default=[],
                   help="only this kind (repeatable)")
    p.add_argument("--op", action="append", default=[], metavar="OP",
                   help="only entry items of this op, e.g. RENAME (repeatable)")
    p.add_argument("--errno", action="append", type=_errno, default=[], metavar="ERRNO",
                   help="only this errno, by name or number, e.g. ENOSPC or 28 (repeatable)")
    p.add_argument("--retry", action="store_true",
                   help="re-queue just the listed open items (a local or GlusterFS-volume "
                        "replica: its brick and replica are in the state)")
    p.add_argument("--forget", action="store_true",
                   help="mark the listed open items resolved without applying them (needs --yes)")
    p.add_argument("--yes", action="store_true", help="confirm --forget")
    p.set_defaults(func=run)


def _errno(text: str) -> int:
    t = text.strip().upper()
    if t.isdigit():
        return int(t)
    value = getattr(E, t, None)
    if not isinstance(value, int):
        raise argparse.ArgumentTypeError(f"not an errno name or number: {text!r}")
    return value


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _show(text: str | None) -> str:
    return "-" if not text else text.replace("\n", "\\n").replace("\t", "\\t")


def render(rows: list[LedgerRow]) -> str:
    """The text table of :func:`~streamsync.failures.ledger_rows` rows."""
    head = ["ID", "FIRST SEEN (UTC)", "CHANGELOG", "KIND", "OP", "GFID", "PATH", "ERRNO",
            "OWED", "ATTEMPTS"]
    table = [head] + [[str(r.id), _when(r.first_seen), r.changelog or "-", r.kind, r.op or "-",
                       r.gfid, _show(r.path), f"{r.errno_name} ({r.errno_text})",
                       ",".join(r.owed) or "-",
                       str(r.attempts) + ("" if r.resolved is None else " resolved")]
                      for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in table)


def _retry(states: list[str], rows: list[LedgerRow]) -> int:
    """Re-queue the listed open items, state by state; exit 1 while any is still open."""
    from ..remote.spec import parse_replica
    from ..replicate import replicate
    from ..secondary.volume_mount import parse_volume_address
    from ..state.sqlite import SqliteState
    still = 0
    for path in states:
        ids = [r.id for r in rows if r.state == path and r.resolved is None]
        if not ids:
            continue
        st = SqliteState(path)
        try:
            fields = st.status()
        finally:
            st.close()
        source, replica = fields.get("source"), fields.get("replica")
        if not source or not replica:
            raise ConfigError(f"{path}: the state does not name its brick and replica; "
                              f"use 'streamsync replicate --retry-failed BRICK REPLICA'")
        if parse_volume_address(replica) is None and parse_replica(replica).remote:
            raise ConfigError(f"{path}: a remote replica ({replica}): use "
                              f"'streamsync replicate --retry-failed {source} {replica}'")
        summary = replicate(source, replica, state_path=path, retry_failed=ids)
        print(f"{source} -> {replica}: {summary.retried_resolved} of {len(ids)} items "
              f"resolved", file=sys.stderr)
        still += summary.open_failures
    return 1 if still else 0


def run(args: argparse.Namespace) -> int:
    if args.forget and not args.yes:
        raise ConfigError("--forget marks items resolved without applying them: "
                          "add --yes to confirm")
    states = [p for p in find_state_files(given_or_default(list(args.paths)))
              if not p.endswith(".status")]
    from .status import collect, fault_lines
    for line in fault_lines(collect(states)):  # the error a Faulty worker stopped on
        print(line, file=sys.stderr)
    rows: list[LedgerRow] = []
    for path in states:
        rows.extend(ledger_rows(path, include_resolved=args.all, since=args.since,
                                kinds=args.kind, ops=args.op, errnos=args.errno))
    if args.retry and args.forget:
        raise ConfigError("--retry and --forget: choose one")
    if args.retry:
        return _retry(states, rows)
    if args.forget:
        done = 0
        for path in states:
            done += forget(path, [r.id for r in rows if r.state == path and r.resolved is None])
        print(f"forgot {done} open item{'s' if done != 1 else ''}", file=sys.stderr)
        return 0
    out = sys.stdout.buffer
    if args.json:
        out.write(b"".join(orjson.dumps(r.to_dict()) + b"\n" for r in rows))
    elif rows:
        out.write((render(rows) + "\n").encode("utf-8", "surrogateescape"))
    else:
        out.write(b"no failures\n" if not args.all else b"no items\n")
    out.flush()
    return 1 if any(r.resolved is None for r in rows) else 0
