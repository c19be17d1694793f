"""The worker: mode choice, hand-over history -> xsync -> live, active/passive.

As gsyncd's worker start and ``crawlwrap`` (spec section 3.1):

1. ``change-detector=xsync`` -> hybrid crawl only (repeated every 60 s when
   following);
2. otherwise a history crawl from the data stime (once). When it cannot cover
   the gap - no stime yet (fresh replica), no HTIME covering the stime, or
   history ending before the registration time twice - the hybrid crawl runs
   instead, its stimes capped at the registration time;
3. then the live changelog crawl: one scan (``follow=False``) or forever.

``mode="history"|"xsync"|"live"`` forces one mode and runs only that one;
``mode="replay"`` replays the journals present from the stimes
(:mod:`~streamsync.crawl.replay`, what :func:`streamsync.replicate.replicate`
runs), once or every ``change-interval`` when following.

Every phase runs inside :func:`crawlwrap`: every ``replica-failover-interval``
the worker re-checks whether it is active
(:class:`~streamsync.activepassive.ActivePassive`); a passive worker raises its
stime to the cluster stime, marks what is older done and sleeps, and takes
over (history from the raised stime, then live) once it gets the lock.

:func:`run_worker` wires a brick, a secondary (resolved once by
:func:`streamsync.target.resolve_target`: the sink, data engine, state path
and lock follow from it), the state store, the status file and the dispatcher;
:func:`run_workers` runs one worker per brick in parallel processes.

>>> choose_mode(None, Options.from_pairs(["change-detector=xsync"]))
'xsync'
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from typing import Any, Callable, Iterable, NamedTuple, Sequence

from ..activepassive import ActivePassive
from ..deletelimit import brick_objects
from ..errors import ConfigError, LockHeld, SourceError, StateError
from ..options import Options
from ..records import MINUS_INFINITY, Stime
from ..stamps import check_stored_stimes
from ..secondary.volume_mount import mounted_volume, parse_volume_address
from ..state.sqlite import require_state_dir
from ..target import escape_brick, resolve_target
from . import CrawlFallback, CrawlResult, WorkerContext, open_failures, send_held
from .history import history_crawl
from .live import live_turn
from .replay import ReplayWatch, replay_turn
from .xsync import xsync_crawl

__all__ = ["MODES", "choose_mode", "run_worker", "run_workers",
           "WorkerSummary", "lock_session", "read_brick_entries", "read_brick_list"]

log = logging.getLogger("streamsync.worker")

MODES = ("replay", "history", "xsync", "live")
#: seconds a passive worker sleeps between catch-ups (gsyncd: 5)
PASSIVE_SLEEP = 5.0
#: seconds between hybrid crawls when change-detector=xsync (gsyncd: 60)
XSYNC_INTERVAL = 60.0


def choose_mode(state: Any, options: Any) -> str:
    """``xsync`` when forced by ``change-detector`` or without a data stime,
    else ``history`` (which may still fall back to xsync).

    >>> from streamsync.options import Options
    >>> from streamsync.state import SqliteState
    >>> state = SqliteState(":memory:")
    >>> choose_mode(state, Options())
    'xsync'
    >>> state.set_data_stime(Stime(1795467032, 0))
    >>> choose_mode(state, Options())
    'history'
    """
    if options.get("change-detector") == "xsync":
        return "xsync"
    st = None if state is None else state.data_stime()
    if st is None or st == MINUS_INFINITY:
        return "xsync"
    return "history"


class WorkerSummary(NamedTuple):
    """What one worker run did."""

    source: str
    replica: str
    modes: tuple[str, ...]
    results: tuple[dict[str, Any], ...]
    data_stime: Stime | None
    entry_stime: Stime | None
    open_failures: int
    duration: float
    fallback: str | None = None
    #: ledger items a ``retry_failed`` run resolved
    retried_resolved: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["data_stime"] = list(self.data_stime) if self.data_stime else None
        d["entry_stime"] = list(self.entry_stime) if self.entry_stime else None
        return d


def crawlwrap(ctx: WorkerContext, crawl_once: Callable[[], Any], *, ap: ActivePassive | None,
              oneshot: bool, interval: float, passive_sleep: float = PASSIVE_SLEEP,
              on_active: Callable[[], bool] | None = None,
              on_passive: Callable[[], Any] | None = None,
              passive_once: bool = False) -> list[Any]:
    """gsyncd's ``crawlwrap``: run ``crawl_once`` while active (once when
    ``oneshot``, else every ``interval`` s until stopped); while passive, run
    ``on_passive`` every ``passive_sleep`` s (only once with ``passive_once``:
    a one-shot run of a passive worker has nothing else to do). ``on_active()``
    may refuse (return False) and the turn counts as passive."""
    out: list[Any] = []
    t0 = time.monotonic()
    active = ap.should_crawl() if ap is not None else True
    while not ctx.stop.is_set():
        now = time.monotonic()
        if ap is not None and now - t0 >= ap.interval:
            active = ap.should_crawl()
            t0 = now
        if active and on_active is not None and not on_active():
            active = False
        if not active:
            if ctx.status is not None:
                ctx.status.set_passive()
            if on_passive is not None:
                on_passive()
            if passive_once or ctx.sleep(passive_sleep):
                break
            continue
        if ctx.status is not None:
            ctx.status.set_active()
        out.append(crawl_once())
        if oneshot or ctx.stop.is_set():
            break
        if ctx.sleep(interval):
            break
    return out


def run_crawls(ctx: WorkerContext, *, mode: str | None = None, follow: bool = False,
               ap: ActivePassive | None = None, passive_sleep: float = PASSIVE_SLEEP,
               on_active: Callable[[], bool] | None = None,
               on_passive: Callable[[], Any] | None = None,
               xsync_kwargs: dict[str, Any] | None = None) -> tuple[list[CrawlResult], str | None]:
    """The worker's crawl sequence (module docstring). Returns the results of
    each phase and the fallback reason when history handed over to xsync."""
    if mode is not None and mode not in MODES:
        raise ConfigError(f"unknown crawl mode {mode!r} (choose from {', '.join(MODES)})")
    xkw = dict(xsync_kwargs or {})
    results: list[CrawlResult] = []
    fallback: str | None = None
    wrap = dict(ap=ap, passive_sleep=passive_sleep, on_active=on_active, on_passive=on_passive,
                passive_once=not follow)
    change_interval = float(ctx.options.get("change-interval"))

    def xsync_once() -> CrawlResult:
        return xsync_crawl(ctx, **xkw)

    def live_once() -> CrawlResult:
        ctx.set_crawl_mode("live")
        return live_turn(ctx)

    if mode == "replay":
        ctx.set_crawl_mode("live")
        watch = ReplayWatch(ctx.changelog_dir)
        replayed = CrawlResult("replay")
        turns = crawlwrap(ctx, lambda: replay_turn(ctx, watch, replayed), oneshot=not follow,
                          interval=change_interval, **wrap)
        return ([replayed] if turns else []), None

    if mode == "xsync" or (mode is None and ctx.options.get("change-detector") == "xsync"):
        results += crawlwrap(ctx, xsync_once, oneshot=not follow or mode == "xsync",
                             interval=XSYNC_INTERVAL, **wrap)
        return results, None
    if mode == "history":
        results += crawlwrap(ctx, lambda: history_crawl(ctx), oneshot=True, interval=0, **wrap)
        return results, None
    if mode == "live":
        if follow:
            results += crawlwrap(ctx, live_once, oneshot=False, interval=change_interval, **wrap)
        else:
            results += crawlwrap(ctx, live_once, oneshot=True, interval=0, **wrap)
        return results, None

    # automatic: history (or xsync when it cannot cover the gap), then live
    def history_or_xsync() -> CrawlResult:
        nonlocal fallback
        try:
            return history_crawl(ctx)
        except CrawlFallback as exc:
            fallback = f"{type(exc).__name__}: {exc}"
            log.info("history crawl not possible (%s): starting the hybrid crawl", fallback)
            return xsync_once()

    results += crawlwrap(ctx, history_or_xsync, oneshot=True, interval=0, **wrap)
    if ctx.stop.is_set():
        return results, fallback
    results += crawlwrap(ctx, live_once, oneshot=not follow, interval=change_interval, **wrap)
    return results, fallback


def lock_session(replica: str) -> str:
    """Default active/passive session: the escaped replica address. Workers of
    replica bricks (peers on other nodes) that feed the same replica share a
    lock per ``subvol``, as gsyncd's ``<mastervol>_<slavevol>_subvol_<n>``.

    >>> lock_session("geo@backup:/srv/vol")
    'geo@backup--srv-vol'
    """
    return escape_brick(replica.replace(":", "/"))


def _refused(state: Any) -> int | None:
    """The last journal stamp of the batch ``max-deletes`` refused, for --allow-deletes."""
    note = getattr(state, "note", None)
    until = note("deletes_refused") if note is not None else None
    if until is None:
        log.warning("--allow-deletes: no batch was refused for its deletes here; the "
                    "max-deletes limit applies as usual")
    return until


def run_worker(source: str | os.PathLike[str], replica: str, **kwargs: Any) -> WorkerSummary:
    """Run one worker for brick ``source`` into ``replica`` (see :func:`_run_worker`);
    a ``HOST::VOLUME`` replica is mounted for the run and unmounted after it.

    A first sync of the bundled demo brick: no stime yet, so the hybrid crawl
    (xsync), then the live crawl finds nothing new and the one-shot run ends:

    >>> from streamsync.snapshot import demo_brick
    >>> from streamsync.verify import verify
    >>> brick = demo_brick()
    >>> s = run_worker(brick, brick + "-replica")
    >>> s.modes, s.results[0]["entry_ops"], s.open_failures, verify(brick, brick + "-replica")
    (('xsync', 'live'), 335, 0, [])
    """
    address = parse_volume_address(replica)
    if address is None:
        return _run_worker(source, replica, **kwargs)
    with mounted_volume(*address) as mnt:
        return _run_worker(source, mnt, label=replica, **kwargs)


def _run_worker(source: str | os.PathLike[str], replica: str, *, state: Any = None,
               state_path: str | None = None, options: Options | None = None,
               mode: str | None = None, engine: str | None = None, follow: bool = False,
               stop: threading.Event | None = None, status_dir: str | None = None,
               register_time: int | None = None, clock: Callable[[], float] = time.time,
               sleep: Callable[[float], Any] | None = None,
               progress: Callable[[str, CrawlResult], Any] | None = None,
               session: str | None = None, subvol: int | str = 1,
               working_dir: str | None = None, changelogs: str | None = None,
               passive_sleep: float = PASSIVE_SLEEP, retry_delay: float = 0.5,
               xsync_kwargs: dict[str, Any] | None = None,
               remote_command: str | None = None,
               remote_kwargs: dict[str, Any] | None = None,
               retry_failed: bool | Iterable[int] = False, archive: Callable[[Any], Any] | None = None,
               label: str | None = None, display: Any = None,
               allow_deletes: bool = False) -> WorkerSummary:
    """Run one worker for brick ``source`` into ``replica`` (see the module docstring).

    * ``replica``: any address :func:`~streamsync.target.resolve_target` reads
      (a brick-layout directory, an aux-gfid mount, ``[user@]host:/path``,
      ``user@host::VOLUME``); ``label``: the ``HOST::VOLUME`` a mount was made for;
    * ``state``/``state_path``: the state store (default:
      :func:`~streamsync.target.default_state_path`);
    * ``status_dir``: where the gsyncd ``brick_*.status`` file is written
      (default: the state file's directory);
    * ``mode``: ``replay`` (the journals present, from the stimes), or force
      ``history``, ``xsync`` or ``live`` (default: gsyncd's choice);
      ``follow``: keep following new journals until ``stop`` is set;
    * ``session``/``subvol``: the active/passive lock
      ``<session>_subvol_<subvol>.lock`` (with ``use-meta-volume=true``; the
      default session is :func:`lock_session` of the replica, so the workers of
      one subvolume's replica bricks, on any node, share it);
    * ``remote_command``: how ``streamsync`` is run on the replica host
      (default ``$STREAMSYNC_REMOTE_COMMAND`` or ``streamsync``);
      ``remote_kwargs``: more :class:`~streamsync.remote.client.RemoteReplica`
      arguments (``connect_attempts``, ``backoff``);
    * ``retry_failed``: once active, first re-queue the open items of the
      failure ledger (``True``), or only the rows with these ids (then that is
      the whole run: no journal is read);
    * ``archive(changelogs)``: called with the journals of every batch applied;
    * ``allow_deletes``: let the batch that ``max-deletes`` refused last time
      through (:mod:`streamsync.deletelimit`);
    * ``progress(mode, result)``: called after every batch; ``display``: a
      :class:`~streamsync.progress.Progress` told of journals and files as they
      are done, during each batch.
    """
    from ..dispatch import Dispatcher
    from ..state.sqlite import SqliteState
    from ..status import WorkerStatus
    from ..views import BrickView

    started = time.monotonic()
    source = os.path.abspath(os.fspath(source))
    if not os.path.isdir(os.path.join(source, ".glusterfs")):
        raise SourceError(f"{source}: not a brick (no .glusterfs directory)")
    if mode is not None and mode not in MODES:
        raise ConfigError(f"unknown crawl mode {mode!r} (choose from {', '.join(MODES)})")
    options = options or Options()
    engine = engine or ("tar" if options.get("sync-method") == "tarssh" else "rsync")
    only = None if retry_failed in (True, False) else sorted(retry_failed)  # type: ignore[arg-type]
    target = resolve_target(source, replica, label=label, working_dir=working_dir,
                            options=options)
    if changelogs is not None and not os.path.isdir(changelogs):
        raise SourceError(f"{changelogs}: no changelog directory")
    if state is None and state_path is not None and state_path != target.state_path:
        require_state_dir(state_path)  # a path the user gave: never created for them
    target.prepare()
    own_state = state is None
    if state is None:
        state = SqliteState(state_path or target.state_path)
    try:
        target.check_pairing(state)
        check_stored_stimes(state, now=clock())
    except StateError:
        if own_state:
            state.close()
        raise
    if status_dir is None:
        sp = getattr(state, "path", ":memory:")
        status_dir = os.path.dirname(os.path.abspath(sp)) if sp != ":memory:" else None
    ws = WorkerStatus(state, source=source, replica=target.display, status_dir=status_dir,
                      clock=clock)
    mstate = ws.mirrored()
    ws.start(mode=mode, checkpoint=int(options.get("checkpoint") or 0))
    ws.set_slave_node(target.spec.host or "localhost")
    stop = stop or threading.Event()
    ap = ActivePassive.from_options(options, session=session or lock_session(target.display),
                                    subvol=subvol)
    view = BrickView(source)
    sink: Any = None
    dispatcher: Any = None
    held: Any = None
    conn: Any = None
    retried = 0
    active = False
    try:
        sink, eng, conn = target.open(engine, options, stop=stop, remote_command=remote_command,
                                      remote_kwargs=remote_kwargs)
        dispatcher = Dispatcher(sink=sink, engine=eng, state=mstate, view=view, options=options,
                                retry_delay=retry_delay, data_filter=sink.is_data_target,
                                data_filter_many=getattr(sink, "data_targets", None),
                                archive=archive,
                                source_objects=lambda: brick_objects(source),
                                allow_deletes_until=_refused(mstate) if allow_deletes else None,
                                clock=clock)
        if display is not None:
            dispatcher.set_progress(display)
        ctx = WorkerContext(source=source, view=view, options=options, state=mstate,
                            dispatcher=dispatcher, changelog_dir=changelogs,
                            working_dir=target.working_dir, status=ws,
                            register_time=register_time, stop=stop, clock=clock, sleep=sleep,
                            progress=progress)
        ctx.stime_listeners.append(ap.publish_stime)
        to_retry = retry_failed is not False

        def on_active() -> bool:
            nonlocal held, to_retry, retried, active
            if held is None:
                lk = target.lock()  # (a remote replica's lock is held by its serve process)
                if lk is not None:
                    try:
                        lk.acquire()
                    except LockHeld as exc:
                        if ap.lock_path is None:
                            raise  # no active/passive: a second worker is refused outright
                        log.warning("%s", exc)
                        return False
                    held = lk
            if to_retry:
                to_retry = False
                resolved, still = dispatcher.retry_failed(only)
                retried += resolved
                log.info("retried the failure ledger: %d resolved, %d still failing",
                         resolved, still)
                ws.set_failures(open_failures(state))
            active = True
            return True

        def on_passive() -> None:
            nonlocal held, active
            active = False
            if conn is not None:
                conn.disconnect()
            if held is not None:
                held.release()
                held = None

            def journals() -> list[Any]:
                from .live import scan_new
                cluster = ap.cluster_stime()  # older journals are skipped by the stime anyway
                return scan_new(ctx.changelog_dir, done=(),
                                since=None if cluster is None else cluster[0])

            if ap.passive_catch_up(mstate, journals=journals,
                                   processing_dir=os.path.join(target.working_dir, ".processing")):
                ctx.root_stime_updated(publish=False)

        if only is not None:  # re-queue the chosen ledger items: the whole run
            results: list[CrawlResult] = []
            fallback = None
            if on_active():
                ws.set_active()
        else:
            results, fallback = run_crawls(ctx, mode=mode, follow=follow, ap=ap,
                                           passive_sleep=passive_sleep, on_active=on_active,
                                           on_passive=on_passive, xsync_kwargs=xsync_kwargs)
            if active and not stop.is_set():  # a one-shot run ends with nothing held
                send_held(ctx, idle=False)
        ws.set_stopped()
        return WorkerSummary(source, target.display, tuple(r.mode for r in results),
                             tuple(r.to_dict() for r in results), state.data_stime(),
                             state.entry_stime(), open_failures(state),
                             time.monotonic() - started, fallback, retried)
    except BaseException as exc:
        if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            try:
                ws.set_faulty(f"{type(exc).__name__}: {exc}",
                              journal=getattr(dispatcher, "current", None))
            except Exception:  # pragma: no cover - state itself broken
                pass
        raise
    finally:
        if dispatcher is not None:
            dispatcher.close()
        if sink is not None:
            sink.close()
        if held is not None:
            held.release()
        ap.release()
        if own_state:
            state.close()


def _worker_proc(kwargs: dict[str, Any], in_child: bool = True) -> dict[str, Any]:
    import signal
    stop = kwargs.pop("stop", None) or threading.Event()
    old = None
    if in_child:
        def _term(signum: int, frame: Any) -> None:  # noqa: ARG001
            stop.set()

        old = signal.signal(signal.SIGTERM, _term)
    try:
        return {"ok": True, "summary": run_worker(stop=stop, **kwargs).to_dict()}
    except Exception as exc:  # reported to the parent, which decides the exit code
        return {"ok": False, "source": kwargs.get("source"),
                "error": f"{type(exc).__name__}: {exc}"}
    finally:
        if old is not None:  # an idle pool process must die on the pool's SIGTERM
            signal.signal(signal.SIGTERM, old)


def run_workers(sources: Sequence[str], replica: str, *,
                progress: Callable[[list[dict[str, Any]]], Any] | None = None,
                poll: float = 1.0, stop: threading.Event | None = None,
                **kwargs: Any) -> list[dict[str, Any]]:
    """One worker per brick, in parallel processes, each with its own state,
    lock and status file (the per-brick defaults of :func:`run_worker`).

    ``progress(rows)`` is called every ``poll`` seconds with one status row per
    worker (the objects ``streamsync status --json`` prints), for one combined
    display. Setting ``stop`` sends SIGTERM to the workers, which stop after
    their current batch. Returns one ``{"ok", "summary"|"error"}`` per brick, in
    ``sources`` order. ``subvols`` (one per brick, ``None`` for "not given")
    names each brick's subvolume for the active/passive lock; by default the
    bricks get distinct subvolumes 1, 2, ...

    >>> from streamsync.snapshot import demo_brick
    >>> brick = demo_brick()
    >>> [r["ok"] for r in run_workers([brick], brick + "-replica")]
    [True]
    """
    if len(sources) > 1 and kwargs.get("state_path"):
        raise ConfigError("one state file per brick: do not give state_path with several bricks")
    if len(sources) > 1 and kwargs.get("state") is not None:
        raise ConfigError("one state store per brick: do not give state with several bricks")
    jobs = []
    subvols = list(kwargs.pop("subvols", None) or [None] * len(sources))
    for i, src in enumerate(sources):
        job = dict(kwargs, source=src, replica=replica)
        if subvols[i] is not None:
            job["subvol"] = subvols[i]
        elif len(sources) > 1 and "subvol" not in kwargs:
            job["subvol"] = i + 1  # distinct subvolumes unless told otherwise
        if not job.get("state_path") and job.get("state") is None:
            job["state_path"] = resolve_target(src, replica, working_dir=job.get("working_dir"),
                                               options=job.get("options")).state_path
        jobs.append(job)
    paths = [j["state_path"] for j in jobs if j.get("state_path")]
    first = resolve_target(sources[0], replica, options=kwargs.get("options")) if jobs else None
    if first is not None and first.kind == "replica" and len(jobs) > 1:
        # set the replica root up once, before the workers race to do it
        from ..sinks.replica import ReplicaSink
        ReplicaSink(first.path or "").close()

    def rows() -> list[dict[str, Any]]:
        from ..cli.status import worker_row
        out = []
        for p in paths:
            if os.path.exists(p):
                try:
                    out.append(worker_row(p))
                except Exception:  # a store being created right now
                    continue
        return out

    if len(jobs) == 1 and progress is None:
        return [_worker_proc(dict(jobs[0], stop=stop), in_child=False)]
    out = _monitor(jobs, follow=bool(kwargs.get("follow")), stop=stop, poll=poll,
                   tick=(lambda: progress(rows())) if progress is not None else None)
    if progress is not None:
        progress(rows())
    return out


#: how often a following worker that died (kill -9, the OOM killer) is started again
MAX_RESTARTS = 20
#: seconds before it is: time for a Passive worker of its replica set to take the
#: lock over (it re-checks every replica-failover-interval), as gsyncd's monitor waits
RESTART_DELAY = 5.0


def _child(kwargs: dict[str, Any], conn: Any) -> None:
    """A worker process: run, then hand the result to the monitor."""
    conn.send(_worker_proc(kwargs))
    conn.close()


def _monitor(jobs: list[dict[str, Any]], *, follow: bool, stop: threading.Event | None,
             poll: float, tick: Callable[[], Any] | None) -> list[dict[str, Any]]:
    """Run one process per job until each has a result, as gsyncd's monitor: a
    following worker that dies without one is started again (another worker of
    its replica set has taken over meanwhile, if any; the new one waits as
    Passive), a one-shot worker that dies is reported. ``stop`` sends SIGTERM to
    every worker, which stops after its current batch."""
    from multiprocessing.connection import wait
    ctx = multiprocessing.get_context("spawn")

    def start(job: dict[str, Any]) -> tuple[Any, Any]:
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(job, writer))
        proc.start()
        writer.close()
        return proc, reader

    slots = [start(j) for j in jobs]
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    restarts = [0] * len(jobs)
    due: dict[int, float] = {}  # slot -> when its dead worker is started again
    stopping = False
    while any(r is None for r in results):
        live = [x for i, slot in enumerate(slots) if results[i] is None and i not in due
                for x in slot]
        wait([x if not hasattr(x, "sentinel") else x.sentinel for x in live], timeout=poll)
        for i in [i for i, t in due.items() if time.monotonic() >= t or stopping]:
            del due[i]
            if stopping:
                results[i] = {"ok": False, "source": jobs[i]["source"],
                              "error": f"WorkerDied: the worker for {jobs[i]['source']} died "
                                       f"and was not started again (stopping)"}
            else:
                slots[i] = start(jobs[i])
        for i, (proc, reader) in enumerate(slots):
            if results[i] is not None or i in due:
                continue
            try:
                if reader.poll():
                    results[i] = reader.recv()
                    continue
            except (EOFError, OSError):
                pass
            if proc.exitcode is None:
                continue
            src = jobs[i]["source"]
            code = proc.exitcode
            why = f"signal {-code}" if code < 0 else f"exit status {code}"
            if follow and not stopping and restarts[i] < MAX_RESTARTS:
                restarts[i] += 1
                log.warning("the worker for %s died (%s); starting it again in %g s (%d/%d)",
                            src, why, RESTART_DELAY, restarts[i], MAX_RESTARTS)
                reader.close()
                due[i] = time.monotonic() + RESTART_DELAY
            else:
                results[i] = {"ok": False, "source": src,
                              "error": f"WorkerDied: the worker for {src} died ({why})"}
        if tick is not None:
            tick()
        if stop is not None and stop.is_set() and not stopping:
            stopping = True
            for i, (proc, _) in enumerate(slots):
                if results[i] is None and proc.is_alive() and proc.pid:
                    os.kill(proc.pid, 15)
    for proc, reader in slots:
        proc.join(timeout=60)
        with contextlib.suppress(OSError):
            reader.close()
    return [r for r in results if r is not None]


def read_brick_list(path: str) -> list[str]:
    """Bricks listed in a file, one per line (``#`` comments and blanks ignored);
    an optional second word is the brick's subvolume number (see
    :func:`read_brick_entries`).

    >>> import tempfile
    >>> path = tempfile.mktemp()
    >>> _ = open(path, "w").write("# bricks of vol1\\n/bricks/b1 1\\n/bricks/b2\\n")
    >>> read_brick_list(path)
    ['/bricks/b1', '/bricks/b2']
    """
    return [b for b, _ in read_brick_entries(path)]


def read_brick_entries(path: str) -> list[tuple[str, int | None]]:
    """``(brick, subvol or None)`` per line of a brick list file.

    >>> import tempfile
    >>> path = tempfile.mktemp()
    >>> _ = open(path, "w").write("/bricks/b1 1\\n/bricks/b2\\n")
    >>> read_brick_entries(path)
    [('/bricks/b1', 1), ('/bricks/b2', None)]
    """
    out: list[tuple[str, int | None]] = []
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            brick, _, rest = line.partition(" ")
            rest = rest.strip()
            if rest and not rest.isdigit():
                raise ConfigError(f"{path}:{n}: expected 'BRICK [SUBVOL]', got {line!r}")
            out.append((brick, int(rest) if rest else None))
    return out
