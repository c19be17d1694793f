"""Replicate a brick: the library function behind ``streamsync replicate``.

Reads the journals of a GlusterFS brick (``<brick>/.glusterfs/changelogs``
unless told otherwise), plans them with the pure pipeline against a
:class:`~streamsync.views.BrickView` of the brick, and drives the batches
through a :class:`~streamsync.sinks.replica.ReplicaSink` and a data engine with
the :class:`~streamsync.dispatch.Dispatcher`, keeping progress in a state store
so a killed run resumes where it stopped.

>>> import tempfile
>>> replicate(tempfile.mkdtemp(), tempfile.mkdtemp())
Traceback (most recent call last):
...
streamsync.errors.SourceError: ...: not a brick (no .glusterfs directory)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Iterable, NamedTuple

from .archive import archive_and_purge
from .discover import HtimeWatch, changelog_dir_of, discover
from .dispatch import Dispatcher
from .errors import ConfigError, SourceError, StateError
from .options import Options
from .pipeline import batch_plans, plan_changelogs
from .records import Stime
from .stamps import check_stored_stimes, refuse_future
from .sinks.replica import GLUSTERFS_DIR, ReplicaSink
from .sinks.rsync import RsyncEngine
from .sinks.tar import TarEngine
from .sinks.volume import VolumeSink
from .secondary.gfid_mount import is_gfid_mount
from .secondary.volume_mount import mounted_volume, parse_volume_address
from .state.lock import WorkerLock
from .state.sqlite import SqliteState, require_state_dir
from .status import WorkerStatus
from .views import BrickView

__all__ = ["replicate", "ReplicateSummary", "default_state_path", "lock_path", "escape_brick",
           "make_engine", "check_apart", "brick_lock_name",
           "ENGINES"]

log = logging.getLogger("streamsync.replicate")

#: data engines by CLI name
ENGINES = ("rsync", "tar")


class ReplicateSummary(NamedTuple):
    """Totals of one ``replicate`` run."""

    batches: int = 0
    changelogs: int = 0
    entry_ops: int = 0
    entry_failures: int = 0
    meta_ops: int = 0
    meta_failures: int = 0
    data_files: int = 0
    data_abandoned: int = 0
    retried_resolved: int = 0
    open_failures: int = 0
    data_stime: Stime | None = None
    entry_stime: Stime | None = None
    duration: float = 0.0
    #: where the state was kept (``None``: a state object the caller passed)
    state_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["data_stime"] = list(self.data_stime) if self.data_stime else None
        d["entry_stime"] = list(self.entry_stime) if self.entry_stime else None
        return d


def _open_failures(state: Any) -> int:
    count = getattr(state, "count_failures", None)
    return int(count()) if count is not None else len(state.failures())


def _replica_id(replica: str) -> str:
    """The replica's identity, made on first use (``.glusterfs/streamsync/replica-id``).

    Several bricks may start on a fresh replica at once: each writes its own
    temporary file and ``link()``s it into place, which fails for all but the
    first, and the others then read the winner's id.
    """
    import tempfile
    import uuid
    path = os.path.join(replica, GLUSTERFS_DIR, "streamsync", "replica-id")
    for _ in range(50):
        try:
            with open(path) as fh:
                rid = fh.read().strip()
            if rid:
                return rid
        except FileNotFoundError:
            pass
        else:
            # link() publishes a complete file: an empty one was made by hand
            raise StateError(f"{path}: empty replica id; remove it to make a new one")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".replica-id.", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(str(uuid.uuid4()) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                continue  # another brick won: read its id
        finally:
            os.unlink(tmp)
    raise StateError(f"{path}: cannot settle the replica id")  # pragma: no cover


def _check_pairing(state: Any, source: str, replica: str) -> None:
    """Refuse a state that belongs to another replica (e.g. the replica directory
    was recreated while the state file kept saying "all done")."""
    rid = _replica_id(replica)
    cur = state.status()
    known = cur.get("replica_id")
    if known and known != rid:
        raise StateError(f"{getattr(state, 'path', 'state')}: belongs to another replica "
                         f"(id {known}); {replica} has id {rid}. Use a fresh --state for a "
                         f"new replica")
    if not known:
        state.set_status(replica_id=rid)


def escape_brick(path: str) -> str:
    """gsyncd's ``escape()`` of a brick path (slashes to dashes, stripped).

    >>> escape_brick("/bricks/b1")
    'bricks-b1'
    """
    return path.replace("/", "-").strip("-") or "root"


def default_state_path(replica: str, source: str) -> str:
    """Per brick: ``<replica>/.glusterfs/streamsync/<escaped brick>.sqlite`` (several
    bricks of a distributed volume may replicate into one replica, one worker each);
    for a GlusterFS secondary volume (``HOST::VOLUME`` or an aux-gfid mount) the
    state stays on this side: :func:`volume_working_dir`.

    >>> default_state_path("/r", "/bricks/b1")
    '/r/.glusterfs/streamsync/bricks-b1.sqlite'
    """
    if parse_volume_address(replica) is not None or is_gfid_mount(replica):
        return os.path.join(volume_working_dir(source, replica), "state.sqlite")
    return os.path.join(replica, GLUSTERFS_DIR, "streamsync",
                        escape_brick(os.path.abspath(source)) + ".sqlite")


def brick_lock_name(source: str) -> str:
    """The worker-lock name of brick ``source``: keyed on what the path *is*
    (device and inode), not how it is spelled, so the brick reached through a
    symlink or a bind mount still finds the lock of the worker already running.

    >>> brick_lock_name("/").startswith("brick-")
    True
    """
    try:
        st = os.stat(source)
    except OSError as exc:
        raise SourceError(f"{source}: {exc.strerror}") from None
    return f"brick-{st.st_dev:x}-{st.st_ino:x}"


def lock_path(replica: str, source: str) -> str:
    """The per-brick worker lock in the replica (next to the state file), named
    by :func:`brick_lock_name`."""
    return os.path.join(replica, GLUSTERFS_DIR, "streamsync", brick_lock_name(source) + ".lock")


def _ancestry(path: str) -> list[tuple[int, int]]:
    """``(st_dev, st_ino)`` of ``path`` (resolved) and every existing ancestor."""
    out = []
    p = os.path.realpath(path)
    while True:
        try:
            st = os.stat(p)
            out.append((st.st_dev, st.st_ino))
        except OSError:
            pass
        parent = os.path.dirname(p)
        if parent == p:
            return out
        p = parent


def check_apart(source: str, replica: str) -> None:
    """Refuse a local replica that is the source brick, lies inside it (the next
    crawl would replicate the replica into itself), or holds the brick. Compared
    by device and inode, so symlinks and bind mounts are seen through.

    >>> check_apart("/", "/tmp/replica")
    Traceback (most recent call last):
    ...
    streamsync.errors.ConfigError: /tmp/replica: the replica cannot lie inside the source brick /
    """
    try:
        src = os.stat(source)
    except OSError as exc:
        raise SourceError(f"{source}: {exc.strerror}") from None
    key = (src.st_dev, src.st_ino)
    mine = _ancestry(replica)  # starts with the replica itself when it exists
    exists = os.path.exists(replica)
    if exists and mine[0] == key:
        raise ConfigError(f"{replica}: the replica cannot be the source brick itself")
    if key in mine:
        raise ConfigError(f"{replica}: the replica cannot lie inside the source brick {source}")
    if exists and mine[0] in _ancestry(source):
        raise ConfigError(f"{replica}: the replica cannot hold the source brick {source}")


def _warn_overwritten(watch: HtimeWatch, cl_dir: str, state: Any, warned: set[int]) -> None:
    """Say, once per journal, when the brick overwrote a journal not yet synced:
    its changes are in no journal, only a crawl brings them over."""
    st = state.data_stime()
    for ts in watch.overwritten(since=st[0] if st else 0):
        if ts not in warned:
            warned.add(ts)
            log.warning("%s/CHANGELOG.%d was written twice by the brick (HTIME lists it "
                        "twice): the changes of the first are in no journal; re-crawl with "
                        "'streamsync replicate --mode xsync' to bring them over, and set "
                        "changelog.rollover-time to 2 s or more", cl_dir, ts)


def _open_replica(replica: str) -> ReplicaSink:
    """The brick-layout replica sink, with its state directory made."""
    try:
        sink = ReplicaSink(replica)
    except OSError as exc:
        raise ConfigError(f"{replica}: cannot use as a replica directory: "
                          f"{exc.strerror or exc}") from None
    try:
        os.makedirs(os.path.join(replica, GLUSTERFS_DIR, "streamsync"), exist_ok=True)
    except OSError:
        sink.close()  # (a read-only replica: nothing stays open on it)
        raise
    return sink


def volume_working_dir(source: str, target: str) -> str:
    """Where a worker replicating ``source`` into a secondary volume keeps its state
    and lock: on this side, never on the volume (``$XDG_STATE_HOME/streamsync/
    <brick>_<target>``, as for remote replicas). ``target`` is the ``HOST::VOLUME``
    address (stable across runs, unlike the private mount point) or the path of
    a mount the user made."""
    from .crawl.select import remote_working_dir
    label = target if parse_volume_address(target) is not None else os.path.abspath(target)
    return remote_working_dir(os.path.abspath(source), label)


def make_engine(name: str, source: str, replica: str, options: Options, *,
                gfid_dest: bool = False) -> Any:
    """The data engine ``name`` (rsync, tar/tarssh) from ``source`` into ``replica``
    (``gfid_dest``: an aux-gfid mount, data into ``.gfid/<gfid>``)."""
    if name == "rsync":
        return RsyncEngine(source, replica, options, gfid_dest=gfid_dest)
    if name in ("tar", "tarssh"):
        return TarEngine(source, replica, options, gfid_dest=gfid_dest)
    raise ConfigError(f"unknown data engine {name!r} (choose from {', '.join(ENGINES)})")


def replicate(source: str | os.PathLike[str], replica: str | os.PathLike[str],
              **kwargs: Any) -> ReplicateSummary:
    """Bring ``replica`` up to date with the brick ``source`` (see :func:`_replicate`
    for the options). ``replica`` is a directory (a brick-layout replica), an
    aux-gfid mount of a GlusterFS volume, or ``HOST::VOLUME``, which is mounted
    for the run (:func:`~streamsync.secondary.volume_mount.mounted_volume`) and
    unmounted after it."""
    address = parse_volume_address(os.fspath(replica))
    if address is None:
        return _replicate(source, replica, **kwargs)
    with mounted_volume(*address) as mnt:
        return _replicate(source, mnt, label=os.fspath(replica), **kwargs)


def _replicate(source: str | os.PathLike[str], replica: str | os.PathLike[str], *,
              state: Any = None, state_path: str | None = None,
              options: Options | None = None, engine: str | None = None,
              changelogs: str | os.PathLike[str] | None = None, follow: bool = False,
              retry_failed: bool | Iterable[int] = False, archive: bool = False,
              progress: Callable[[int, int], None] | None = None,
              stop: threading.Event | None = None, retry_delay: float = 0.5,
              status_dir: str | os.PathLike[str] | None = None,
              label: str | None = None) -> ReplicateSummary:
    """Bring ``replica`` up to date with the brick ``source``.

    * ``state``: a state store (default: :class:`SqliteState` at ``state_path``
      or :func:`default_state_path`);
    * ``engine``: ``"rsync"`` (default, or the ``sync-method`` option) or ``"tar"``;
    * ``changelogs``: journal directory (default ``<source>/.glusterfs/changelogs``);
    * ``follow``: keep scanning every ``change-interval`` seconds until ``stop`` is set;
    * ``retry_failed``: first re-queue the open items of the failure ledger (``True``),
      or only the rows with these ids (then nothing else is done: no journal is read);
    * ``archive``: archive processed journals (only for a directory we own);
    * ``progress(done, total)``: called after every batch;
    * ``status_dir``: also keep gsyncd's ``brick_<brick>.status`` file there.

    Status fields (gsyncd's, plus source/replica/throughput) live in the state;
    ``streamsync status`` reads them.

    Raises :class:`~streamsync.errors.LockHeld` when another worker owns the replica.
    """
    start = time.monotonic()
    source = os.path.abspath(os.fspath(source))
    replica = os.path.abspath(os.fspath(replica))
    if not os.path.isdir(os.path.join(source, GLUSTERFS_DIR)):
        raise SourceError(f"{source}: not a brick (no {GLUSTERFS_DIR} directory)")
    check_apart(source, replica)
    if state_path is not None and state is None:
        require_state_dir(state_path)
    options = options or Options()
    engine = engine or ("tar" if options.get("sync-method") == "tarssh" else "rsync")
    cl_dir = os.fspath(changelogs) if changelogs is not None else changelog_dir_of(source)
    if not os.path.isdir(cl_dir):
        raise SourceError(f"{cl_dir}: no changelog directory")

    volume = is_gfid_mount(replica)
    if volume:  # a GlusterFS secondary volume: progress stays on this side
        sink: Any = VolumeSink(replica)
        where = volume_working_dir(source, label or replica)
        os.makedirs(where, exist_ok=True)
        if state_path is None and state is None:
            state_path = os.path.join(where, "state.sqlite")
        lock = WorkerLock(os.path.join(where, brick_lock_name(source) + ".lock"),
                          what=f"{source} -> {replica}")
    else:
        sink = _open_replica(replica)
        lock = WorkerLock(lock_path(replica, source), what=f"{source} -> {replica}")
    own_state = state is None
    try:
        lock.acquire()
        if state is None:
            state = SqliteState(state_path or default_state_path(replica, source))
        if not volume:
            _check_pairing(state, source, replica)
        check_stored_stimes(state)
        view = BrickView(source)
        eng = make_engine(engine, source, replica, options, gfid_dest=volume)
        fmt = options.get("changelog-archive-format")
        status = WorkerStatus(state, source=source, replica=label or replica, status_dir=status_dir)
        checkpoint = int(options.get("checkpoint") or 0)
        status.start(mode="live" if follow else "once", checkpoint=checkpoint)
        status.set_active()
        status.set_crawl_mode("live")
        status.set_slave_node("localhost")
        dispatcher = Dispatcher(
            sink=sink, engine=eng, state=status.mirrored(), view=view, options=options,
            retry_delay=retry_delay, data_filter=sink.is_data_target,
            archive=(lambda cls: archive_and_purge([c.path for c in cls if c.member is None],
                                                   fmt=fmt)) if archive else None)
        totals = dict.fromkeys(("batches", "changelogs", "entry_ops", "entry_failures",
                                "meta_ops", "meta_failures", "data_files", "data_abandoned",
                                "retried_resolved"), 0)
        try:
            only = None if retry_failed in (True, False) else list(retry_failed)
            if retry_failed is not False:
                resolved, still = dispatcher.retry_failed(only)
                totals["retried_resolved"] = resolved
                log.info("retried the failure ledger: %d resolved, %d still failing",
                         resolved, still)
            batch_size = options.get("changelog-batch-size")
            warned: set[int] = set()
            watch = HtimeWatch(cl_dir)
            while only is None:  # (a retry of chosen items is the whole run)
                _warn_overwritten(watch, cl_dir, state, warned)
                done = state.done_names()
                todo = [c for c in refuse_future(discover(cl_dir, allow_empty=True)) if c.name not in done]
                total = len(todo)
                n = 0
                if todo:
                    plans = plan_changelogs(todo, view=view, options=options,
                                            data_stime=state.data_stime(),
                                            entry_stime=state.entry_stime())
                    for batch in batch_plans(plans, batch_size=batch_size):
                        r = dispatcher.run_batch(batch)
                        totals["batches"] += 1
                        totals["changelogs"] += r.changelogs
                        totals["entry_ops"] += r.entry_ops
                        totals["entry_failures"] += r.entry_failures
                        totals["meta_ops"] += r.meta_ops
                        totals["meta_failures"] += r.meta_failures
                        totals["data_files"] += r.data_files
                        totals["data_abandoned"] += r.data_abandoned
                        n += r.changelogs
                        status.record_batch(changelogs=r.changelogs,
                                            first_ts=batch.plans[0].ts, last_ts=batch.last_ts,
                                            entries=r.entry_ops, meta=r.meta_ops,
                                            data=r.data_files, seconds=r.duration)
                        st = state.data_stime()
                        if st is not None:
                            status.set_last_synced(st, checkpoint=checkpoint)
                        status.set_failures(_open_failures(state))
                        if progress is not None:
                            progress(n, total)
                        if stop is not None and stop.is_set():
                            break
                if not follow or (stop is not None and stop.is_set()):
                    break
                interval = max(0.2, float(options.get("change-interval")))
                if stop is not None:
                    if stop.wait(interval):
                        break
                else:
                    time.sleep(interval)
        except BaseException as exc:
            if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
                status.set_faulty(str(exc) or type(exc).__name__, journal=dispatcher.current)
            raise
        else:
            status.set_stopped()
        finally:
            dispatcher.close()
        return ReplicateSummary(**totals, open_failures=_open_failures(state),
                                data_stime=state.data_stime(), entry_stime=state.entry_stime(),
                                duration=time.monotonic() - start,
                                state_path=getattr(state, "path", None))
    finally:
        if own_state and state is not None:
            state.close()
        lock.release()
        sink.close()
