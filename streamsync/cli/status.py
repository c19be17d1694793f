"""``streamsync status``: where every worker stands.

Reads worker state stores (SQLite files written by ``streamsync replicate``)
and, for gsyncd compatibility, gsyncd ``brick_*.status`` files. One row (or
one JSON line with ``--json``) per worker, with the columns of
``gluster volume geo-replication ... status detail`` under their own names
(ENTRY, DATA and META are pending counts, shown only for an Active worker,
as gsyncd does; FAILURES counts open items of the failure ledger, listed by
``streamsync failures``), then streamsync's own:

  LAG         how far the secondary is behind: now minus the time of the
              oldest journal not yet applied; 0 once every journal is applied
              (written as 1h02m03s)
  THROUGHPUT  journals and operations (entry + meta + data files) applied per
              second of batch time, over the last 20 batches

A worker holding large files that journal after journal still changes (sent once
they stop: hot-file-size) says so under the table; its LAST_SYNCED stays before
the first journal whose data it holds (--json: held_files, held_since).

Times are local with their zone (--utc: in UTC); --json keeps raw numbers
(epoch seconds, lag in seconds).

Exit status: 0 when every worker was read, 2 when a path is unusable, 1 when
some worker is Faulty.
"""

from __future__ import annotations

import argparse
import glob
import os
import socket
import sys
import time
from typing import Any, Iterable

import orjson

from .. import human
from ..errors import StateError
from ..status import STATUS_DEFAULTS, StatusFile, human_time

__all__ = ["register", "collect", "worker_row", "find_state_files", "given_or_default",
           "fault_lines", "table_row", "COLUMNS"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_DEFAULT_ENV = "STREAMSYNC_STATE"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "status", help="show every worker's status (mode, lag, pending, failures, checkpoint)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='examples:\n  streamsync status                         # remote-replica workers of this user\n  streamsync status /backup/b1              # the workers writing that replica\n  streamsync status --json /backup/b1 | jq .status')
    p.add_argument("paths", nargs="*", metavar="STATE",
                   help="replica directories, state files, directories holding them, or gsyncd "
                        "brick_*.status files (default: $STREAMSYNC_STATE, else the states of "
                        "remote-replica workers in ~/.local/state/streamsync)")
    p.add_argument("--state", action="append", default=[], metavar="FILE",
                   help="a state file or directory (repeatable)")
    p.add_argument("--json", action="store_true",
                   help="JSON lines: one object per worker (raw numbers, epoch seconds)")
    p.add_argument("--utc", action="store_true", help="show times in UTC")
    p.set_defaults(func=run)


def _is_sqlite(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == _SQLITE_MAGIC
    except OSError:
        return False


def find_state_files(paths: Iterable[str]) -> list[str]:
    """Expand files and directories (two levels deep) into state / status files."""
    out: list[str] = []
    for p in paths:
        inner = os.path.join(p, ".glusterfs", "streamsync")
        if os.path.isdir(inner):  # a replica directory: its workers' states
            p = inner
        if os.path.isdir(p):
            found = []
            for pattern in ("*", "*/*"):
                for cand in sorted(glob.glob(os.path.join(p, pattern))):
                    base = os.path.basename(cand)
                    if os.path.isfile(cand) and (_is_sqlite(cand) or (
                            base.startswith("brick_") and base.endswith(".status"))):
                        found.append(cand)
            out.extend(found)
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise StateError(f"{p}: no such state file or directory")
    seen: set[str] = set()
    uniq = []
    for p in out:
        a = os.path.abspath(p)
        if a not in seen:
            seen.add(a)
            uniq.append(p)
    return uniq


def _throughput(batches: list[dict[str, Any]]) -> dict[str, float] | None:
    if not batches:
        return None
    secs = sum(float(b.get("seconds") or 0) for b in batches)
    cls = sum(int(b.get("changelogs") or 0) for b in batches)
    ops = sum(int(b.get("entries") or 0) + int(b.get("meta") or 0) + int(b.get("data") or 0)
              for b in batches)
    if secs <= 0:
        return {"batches": len(batches), "changelogs_per_s": 0.0, "ops_per_s": 0.0}
    return {"batches": len(batches), "changelogs_per_s": round(cls / secs, 3),
            "ops_per_s": round(ops / secs, 3)}


def _lag(fields: dict[str, Any], now: float) -> int | None:
    """Seconds behind the source: now minus the time of the oldest journal not yet
    applied, 0 when the worker has applied every journal it knows of. States
    written before pending journals were recorded fall back to now minus the
    last synced time."""
    if "pending_journals" in fields:
        oldest = fields.get("pending_oldest")
        if not fields["pending_journals"] or oldest is None:
            return 0
        return max(0, int(now - int(oldest)))
    last = int(fields.get("last_synced") or 0)
    return None if last <= 0 else max(0, int(now - last))


def worker_row(path: str, *, now: float | None = None) -> dict[str, Any]:
    """The status object of one state (or gsyncd status) file."""
    now = time.time() if now is None else now
    if _is_sqlite(path):
        from ..state.sqlite import SqliteState
        st = SqliteState(path)
        try:
            fields = dict(STATUS_DEFAULTS)
            fields.update(st.status())
            open_rows = st.failures()
            open_failures = len(open_rows)
            by_kind: dict[str, int] = {}
            for r in open_rows:
                by_kind[r.kind] = by_kind.get(r.kind, 0) + 1
            data_stime = st.data_stime()
            entry_stime = st.entry_stime()
            held = st.note("held") or {}
        finally:
            st.close()
        fields["held_files"] = len(held)
        fields["held_since"] = min((v[1] for v in held.values()), default=None)
        fields["open_failures"] = open_failures
        fields["open_failures_by_kind"] = by_kind
        fields["stime"] = None if data_stime is None else list(data_stime)
        fields["entry_stime"] = None if entry_stime is None else list(entry_stime)
        if not fields.get("last_synced") and data_stime is not None:
            fields["last_synced"] = int(data_stime[0])
    else:
        fields = StatusFile(path).read_strict()
        base = os.path.basename(path)
        if "source" not in fields and base.startswith("brick_"):
            from urllib.parse import unquote_plus
            fields["source"] = unquote_plus(base[len("brick_"):-len(".status")])
    fields.setdefault("source", "")
    fields.setdefault("replica", "")
    fields.setdefault("mode", fields.get("crawl_mode") or "N/A")
    fields["state_file"] = os.path.abspath(path)
    fields["lag"] = _lag(fields, now)
    fields["throughput"] = _throughput(list(fields.get("batches") or []))
    # gsyncd's status CLI also shows each time as text, local and UTC
    for k in ("last_synced", "last_synced_entry", "checkpoint_time",
              "checkpoint_completion_time"):
        fields[k + "_local"] = human_time(fields.get(k))
        fields[k + "_utc"] = human_time(fields.get(k), utc=True)
    fields.pop("batches", None)
    return fields


def collect(paths: Iterable[str], *, now: float | None = None) -> list[dict[str, Any]]:
    """Status objects of every worker found under ``paths``. A gsyncd status
    file next to the state store of the same brick is that worker's mirror and
    is not listed twice."""
    rows = [worker_row(p, now=now) for p in find_state_files(paths)]
    stores = {(os.path.dirname(r["state_file"]), r["source"]) for r in rows
              if r.get("stime", "absent") != "absent" and _is_sqlite(r["state_file"])}
    return [r for r in rows if _is_sqlite(r["state_file"])
            or (os.path.dirname(r["state_file"]), r["source"]) not in stores]


def _endpoints(f: dict[str, Any]) -> tuple[str, str, str, str, str, str]:
    """gsyncd's PRIMARY NODE / VOL / BRICK and SECONDARY USER / SECONDARY / NODE."""
    source = str(f.get("source") or "")
    pnode, _, pbrick = source.rpartition(":") if ":" in source else ("", "", source)
    pnode = pnode or socket.gethostname()
    pvol = str(f.get("primary_volume") or "N/A")
    replica = str(f.get("replica") or "N/A")
    user, host = "root" if os.geteuid() == 0 else os.environ.get("USER", "N/A"), ""
    if "::" in replica:
        host = replica.split("::", 1)[0]
        if "@" in host:
            user, host = host.split("@", 1)
    elif ":" in replica and not replica.startswith("/"):
        host = replica.split(":", 1)[0]
        if "@" in host:
            user, host = host.split("@", 1)
    snode = str(f.get("slave_node") or "N/A")
    if snode == "N/A" and host:
        snode = host
    return pnode, pvol, pbrick or "N/A", user, replica, snode


def _throughput_text(tp: dict[str, float] | None) -> str:
    if not tp:
        return "N/A"
    return f"{tp['changelogs_per_s']:g} journals/s, {tp['ops_per_s']:g} ops/s"


def held_lines(rows: Iterable[dict[str, Any]], *, utc: bool = False) -> list[str]:
    """One line per worker holding hot files back (:mod:`streamsync.hold`)."""
    out = []
    for f in rows:
        n = int(f.get("held_files") or 0)
        if n:
            out.append(f"{f.get('source') or f.get('state_file')}: {human.count(n, 'large file')} "
                       f"still changing, held since the journal of "
                       f"{human.when(f.get('held_since'), utc=utc)} (sent once they stop)")
    return out


def fault_lines(rows: Iterable[dict[str, Any]], *, utc: bool = False) -> list[str]:
    """One line per Faulty worker: its error and the journal it was on."""
    out = []
    for f in rows:
        if f.get("worker_status") != "Faulty":
            continue
        where = f" on {f['fault_journal']}" if f.get("fault_journal") else ""
        when = human_time(f.get("fault_time"), utc=utc)
        out.append(f"{f.get('source') or f.get('state_file')}: Faulty since {when}{where}: "
                   f"{f.get('fault') or 'no reason recorded'}")
    return out


#: gsyncd's ``status detail`` columns, then streamsync's own
COLUMNS = ("PRIMARY NODE", "PRIMARY VOL", "PRIMARY BRICK", "SECONDARY USER", "SECONDARY",
           "SECONDARY NODE", "STATUS", "CRAWL STATUS", "LAST_SYNCED", "ENTRY", "DATA", "META",
           "FAILURES", "CHECKPOINT TIME", "CHECKPOINT COMPLETED", "CHECKPOINT COMPLETION TIME",
           "LAG", "THROUGHPUT")


def table_row(f: dict[str, Any], *, utc: bool = False) -> list[str]:
    """One worker as the text columns of :data:`COLUMNS`."""
    active = f.get("worker_status") == "Active"
    fails = int(f.get("failures") or 0)
    if f.get("open_failures"):
        fails = max(fails, int(f["open_failures"]))
    configured = int(f.get("checkpoint") or f.get("checkpoint_time") or 0)
    done = f.get("checkpoint_completed") == "Yes"
    return [*_endpoints(f), str(f.get("worker_status")), str(f.get("crawl_status")),
            human.when(f.get("last_synced"), utc=utc),
            str(f.get("entry")) if active else "N/A", str(f.get("data")) if active else "N/A",
            str(f.get("meta")) if active else "N/A", str(fails),
            human.when(configured, utc=utc) if configured else "N/A",
            ("Yes" if done else "No") if configured else "N/A",
            human.when(f.get("checkpoint_completion_time"), utc=utc) if done else "N/A",
            human.duration(f.get("lag")), _throughput_text(f.get("throughput"))]


def _render(rows: list[dict[str, Any]], utc: bool) -> str:
    table = [list(COLUMNS)] + [table_row(f, utc=utc) for f in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _remote_states() -> str:
    """Where workers with remote replicas keep their states by default."""
    return os.path.join(os.environ.get("XDG_STATE_HOME")
                        or os.path.join(os.path.expanduser("~"), ".local", "state"),
                        "streamsync")


def given_or_default(paths: list[str]) -> list[str]:
    """``paths``, or where states are when none is given: ``$STREAMSYNC_STATE``, else
    the states of workers whose replica is remote or a volume (``~/.local/state``)."""
    if paths:
        return paths
    env = os.environ.get(_DEFAULT_ENV)
    if env:
        return env.split(os.pathsep)
    if os.path.isdir(_remote_states()):
        return [_remote_states()]
    raise StateError("no state given: pass replica directories, STATE files or "
                     f"directories, --state FILE, or set ${_DEFAULT_ENV}")


def run(args: argparse.Namespace) -> int:
    rows = collect(given_or_default(list(args.paths) + list(args.state)))
    if args.json:
        sys.stdout.buffer.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        sys.stdout.flush()
    else:
        if not rows:
            print("no workers found")
        else:
            print(_render(rows, args.utc))
            for line in held_lines(rows, utc=args.utc) + fault_lines(rows, utc=args.utc):
                print(line)
    return 1 if any(r.get("worker_status") == "Faulty" for r in rows) else 0
