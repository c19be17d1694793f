"""The worker side of ``streamsync replicate``: ``--mode``, SSH replicas, many bricks.

``streamsync/cli/replicate.py`` adds these arguments with
:func:`add_worker_arguments` and hands over to :func:`run_worker_cli` when
:func:`wants_worker` says so (a crawl mode was asked for, the replica is
``[user@]host:/path``, or there are several bricks). The worker picks its mode
as gsyncd does (history, else the hybrid crawl, then live) and says which in
its progress and status; ``--mode history|xsync|live`` forces one.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any, NamedTuple

import orjson

from .. import human
from ..errors import ConfigError, StreamsyncError
from ..options import Options
from ..progress import progress_for, showing
from ..records import MINUS_INFINITY, Stime
from ..remote.spec import parse_replica
from ..secondary.volume_mount import parse_volume_address
from .coverage import Coverage, journal_coverage
from .select import MODES, read_brick_entries, run_worker, run_workers

__all__ = ["add_worker_arguments", "wants_worker", "brick_sources", "run_worker_cli",
           "replicate_main", "ModeChoice", "choose_default_mode", "default_mode"]


class ModeChoice(NamedTuple):
    """How ``streamsync replicate`` without ``--mode`` catches up, and why.

    ``mode``: ``"replay"`` (the journals present, from the data stime: exact,
    keeps fifos) or ``"xsync"`` (the worker's automatic path: hybrid crawl of
    the brick, then the journals); ``reason``: one line;
    ``coverage``: the :class:`~streamsync.crawl.coverage.Coverage` when it was
    checked.
    """

    mode: str
    reason: str
    coverage: Coverage | None = None

    def line(self) -> str:
        """The one line printed on stderr."""
        return f"streamsync replicate: mode {self.mode}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "reason": self.reason,
                "coverage": self.coverage.to_dict() if self.coverage is not None else None}


def choose_default_mode(source: str, *, data_stime: Stime | None,
                        changelogs: str | None = None) -> ModeChoice:
    """The default crawl mode of a single local brick (see :class:`ModeChoice`).

    * a data stime -> ``replay`` from it (what a history crawl would do);
    * no stime, and the journals present create every gfid of the brick
      (:func:`~streamsync.crawl.coverage.journal_coverage`) -> ``replay``;
    * no stime, and they do not -> ``xsync``: replaying would silently miss what
      was never journaled.

    >>> choose_default_mode("/nonexistent", data_stime=Stime(5, 0)).mode
    'replay'
    """
    if data_stime is not None and data_stime != MINUS_INFINITY:
        return ModeChoice("replay", f"data stime {human.stime(data_stime)}: replaying the journals "
                                    f"from it (as a history crawl)")
    cov = journal_coverage(source, changelogs=changelogs)
    if cov.covered:
        return ModeChoice("replay", f"no stime, and {cov.reason}: replaying them is exact", cov)
    return ModeChoice("xsync", f"no stime, and {cov.reason}: hybrid crawl of the brick, "
                               f"then the journals", cov)


def _peek_stime(args: argparse.Namespace, source: str) -> Stime | None:
    """The stored data stime, without creating a state file."""
    from ..target import default_state_path
    path = args.state or default_state_path(source, args.replica)
    if getattr(args, "xattr_stime", None):
        from ..state.xattr import XattrState, stime_uuids
        try:
            master, slave = stime_uuids(args.xattr_stime, source, args.replica)
        except StreamsyncError:
            return None  # the replicate path reports the bad value
        st = XattrState(os.path.abspath(source), master, slave, path)
    elif os.path.exists(path):
        from ..state.sqlite import SqliteState
        st = SqliteState(path)
    else:
        return None
    try:
        return st.data_stime()
    finally:
        st.close()


def default_mode(args: argparse.Namespace) -> ModeChoice | None:
    """For ``streamsync replicate`` without ``--mode`` on one local brick: the
    mode to use (:func:`choose_default_mode`); ``None`` when ``--mode`` was
    given, the worker runs anyway (remote replica, several bricks) or the
    source is not a brick (the replicate path reports it)."""
    if getattr(args, "mode", None) == "replay" and not wants_worker(args):
        return ModeChoice("replay", "forced by --mode replay")
    if getattr(args, "mode", None) or wants_worker(args):
        return None
    sources = brick_sources(args)
    source = os.path.abspath(sources[0])
    if not os.path.isdir(os.path.join(source, ".glusterfs")):
        return None
    try:
        choice = choose_default_mode(source, data_stime=_peek_stime(args, source),
                                     changelogs=getattr(args, "changelogs", None))
    except StreamsyncError:
        # a damaged journal (or changelog directory): the replay reports it, with
        # the file and line, exactly as it would have without the check
        return None
    if choice.mode == "xsync" and getattr(args, "archive", False):
        raise ConfigError(f"{choice.reason}; --archive needs the journal replay: run once "
                          f"without --archive (the hybrid crawl) first")
    return choice


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    """``--mode``, ``--bricks``, ``--remote-command``."""
    p.add_argument("--mode", choices=("auto",) + MODES,
                   help="crawl mode. Default for one brick and a local replica: replay the "
                        "journals present when there is a data stime or they create every "
                        "gfid of the brick, else auto (says which and why). auto (default "
                        "with a remote replica or several bricks): history from the stime, "
                        "else the hybrid crawl, then live. Or force replay (the journals "
                        "present, one brick, local replica), history, xsync (hybrid "
                        "filesystem crawl) or live")
    p.add_argument("--bricks", metavar="FILE",
                   help="read more source bricks from FILE (one per line); one worker per "
                        "brick, in parallel processes")
    p.add_argument("--subvol", type=int, metavar="N",
                   help="active/passive (-o use-meta-volume=true): this brick's subvolume "
                        "number; the workers of one subvolume's replica bricks share the lock "
                        "<meta-volume-mnt>/geo-rep/<session>_subvol_<N>.lock (default 1; "
                        "with --bricks, the second word of each line, else 1, 2, ...)")
    p.add_argument("--session", metavar="NAME",
                   help="active/passive session name (default: the replica address)")
    p.add_argument("--remote-command", metavar="CMD",
                   help="how to run streamsync on a [user@]host:/path replica's host "
                        "(default: $STREAMSYNC_REMOTE_COMMAND or 'streamsync')")


def brick_sources(args: argparse.Namespace) -> list[str]:
    """The bricks named on the command line plus those of ``--bricks FILE``."""
    return [b for b, _ in _entries(args)]


def _entries(args: argparse.Namespace) -> list[tuple[str, int | None]]:
    src = args.source if isinstance(args.source, list) else [args.source]
    out: list[tuple[str, int | None]] = [(s, getattr(args, "subvol", None)) for s in src]
    if getattr(args, "bricks", None):
        try:
            out += read_brick_entries(args.bricks)
        except OSError as exc:
            raise ConfigError(f"{args.bricks}: cannot read the brick list: {exc.strerror}") from None
    if not out:
        raise ConfigError("no source brick given")
    return out


def wants_worker(args: argparse.Namespace) -> bool:
    """True when the crawl worker must run this ``replicate`` invocation."""
    mode = getattr(args, "mode", None)
    volume = parse_volume_address(args.replica) is not None
    worker = bool(getattr(args, "bricks", None) or len(brick_sources(args)) > 1
                  or (not volume and parse_replica(args.replica).remote))
    if mode == "replay":
        if worker:
            raise ConfigError("--mode replay works with one brick and a local replica")
        return False
    return bool(mode) or worker


def _line(row: dict[str, Any]) -> str:
    from ..status import human_time
    tp = row.get("throughput") or {}
    return (f"{os.path.basename(row.get('source', '')) or '?'}: {row.get('worker_status')} "
            f"{row.get('crawl_status')} synced {human_time(row.get('last_synced'))} "
            f"{tp.get('changelogs_per_s', 0):g} cl/s")


def run_worker_cli(args: argparse.Namespace, options: Options, *, stop: threading.Event,
                   show: bool, state: Any = None, choice: ModeChoice | None = None) -> int:
    """Run the worker(s) for ``streamsync replicate``; returns the exit status."""
    entries = _entries(args)
    sources = [b for b, _ in entries]
    mode = None if args.mode in (None, "auto") else args.mode
    common: dict[str, Any] = dict(options=options, mode=mode, engine=args.engine,
                                  follow=bool(args.follow),
                                  remote_command=getattr(args, "remote_command", None),
                                  retry_failed=bool(getattr(args, "retry_failed", False)),
                                  allow_deletes=bool(getattr(args, "allow_deletes", False)))
    if getattr(args, "archive", False):
        raise ConfigError("--archive is not supported with the crawl worker (--mode, remote "
                          "replicas, several bricks): history needs the journals in place")
    if getattr(args, "session", None):
        common["session"] = args.session
    if getattr(args, "changelogs", None):
        common["changelogs"] = args.changelogs
    if getattr(args, "status_dir", None):
        common["status_dir"] = args.status_dir
    if len(sources) == 1:
        display = progress_for(sys.stderr, label="replicate") if show else None
        with showing(display):
            summary = run_worker(sources[0], args.replica, state=state, state_path=args.state,
                                 stop=stop, subvol=entries[0][1] or 1, display=display,
                                 **common)
        result = [{"ok": True, "summary": summary.to_dict()}]
    else:
        if args.state or state is not None:
            raise ConfigError("--state/--xattr-stime name one brick's state; with several "
                              "bricks each worker keeps its own")

        def rows(rs: list[dict[str, Any]]) -> None:
            if show and rs:
                sys.stderr.write("\x1b[2K" + " | ".join(_line(r) for r in rs)[:200] + "\r")
                sys.stderr.flush()

        result = run_workers(sources, args.replica, progress=rows, stop=stop,
                             subvols=[sv for _, sv in entries], **common)
        if show:
            sys.stderr.write("\n")
    failed = [r for r in result if not r["ok"]]
    if choice is not None and len(result) == 1:
        result[0]["choice"] = choice.to_dict()
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result if len(result) > 1 else result[0]) + b"\n")
    elif not args.quiet:
        def took(seconds: float | None) -> str:
            return "" if seconds is None else f" in {human.duration(seconds)}"

        for r in result:
            if not r["ok"]:
                print(f"{r['source']}: FAILED: {r['error']}")
                continue
            s = r["summary"]
            totals = {k: sum(x[k] for x in s["results"]) for k in
                      ("changelogs", "entry_ops", "meta_ops", "data_files")}
            how = " -> ".join(s["modes"]) or "none (passive)"
            print(f"{s['source']} -> {s['replica']}: {how}"
                  f"{' (' + s['fallback'] + ')' if s.get('fallback') else ''}; "
                  f"{human.count(totals['changelogs'], 'changelog')}, "
                  f"{human.count(totals['entry_ops'], 'entry op')}, "
                  f"{human.count(totals['meta_ops'], 'meta op')}, "
                  f"{human.count(totals['data_files'], 'file')}"
                  f"{took(s.get('duration'))}; stime {human.stime(s['data_stime'])}")
            if s["open_failures"]:
                print(f"  {human.count(s['open_failures'], 'open failure')} in the ledger; "
                      f"re-queue them with --retry-failed")
    if failed:
        if len(result) == 1 and not args.json:
            raise StreamsyncError(failed[0]["error"])
        return 2
    return 1 if any(r["summary"]["open_failures"] for r in result) else 0


def replicate_main(args: argparse.Namespace, options: Options,
                   choice: ModeChoice | None = None) -> int:
    """The whole worker path of ``streamsync replicate`` (logging, SIGTERM, progress)."""
    import logging
    import signal
    if (args.verbose or args.follow) and not args.quiet and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:  # noqa: ARG001
        stop.set()

    old = signal.signal(signal.SIGTERM, _stop)
    state = None
    try:
        if getattr(args, "xattr_stime", None):
            sources = brick_sources(args)
            volume = parse_volume_address(args.replica) is not None
            if len(sources) != 1 or (not volume and parse_replica(args.replica).remote):
                raise ConfigError("--xattr-stime works with one brick and a local replica "
                                  "or a HOST::VOLUME secondary")
            from ..state.xattr import XattrState, stime_uuids
            master, slave = stime_uuids(args.xattr_stime, sources[0], args.replica)
            from ..target import default_state_path
            state = XattrState(os.path.abspath(sources[0]), master, slave,
                               args.state or default_state_path(sources[0], args.replica))
        show = sys.stderr.isatty() and not args.quiet
        try:
            return run_worker_cli(args, options, stop=stop, show=show, state=state,
                                  choice=choice)
        except KeyboardInterrupt:
            stop.set()
            raise
    finally:
        signal.signal(signal.SIGTERM, old)
        if state is not None:
            state.close()
