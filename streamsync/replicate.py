"""Replicate a brick: the library function behind ``streamsync replicate``.

Reads the journals of a GlusterFS brick (``<brick>/.glusterfs/changelogs``
unless told otherwise) and replays them into a secondary: a brick-layout
replica directory, an aux-gfid mount of a GlusterFS volume, ``HOST::VOLUME``,
or a remote one. It is the worker of :mod:`streamsync.crawl.select` in its
``replay`` mode: the same target choice (:mod:`streamsync.target`), state,
lock, dispatcher and status, so a killed run resumes where it stopped.

>>> import tempfile
>>> replicate(tempfile.mkdtemp(), tempfile.mkdtemp())
Traceback (most recent call last):
...
streamsync.errors.SourceError: ...: not a brick (no .glusterfs directory)
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterable, NamedTuple

from .archive import archive_and_purge
from .crawl.select import run_worker
from .errors import SourceError
from .options import Options
from .records import Stime
from .target import ENGINES, GLUSTERFS_DIR

__all__ = ["replicate", "ReplicateSummary", "ENGINES"]


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


def replicate(source: str | os.PathLike[str], replica: str | os.PathLike[str], *,
              state: Any = None, state_path: str | None = None,
              options: Options | None = None, engine: str | None = None,
              changelogs: str | os.PathLike[str] | None = None, follow: bool = False,
              retry_failed: bool | Iterable[int] = False, archive: bool = False,
              progress: Callable[[int, int], None] | None = None,
              stop: threading.Event | None = None, retry_delay: float = 0.5,
              status_dir: str | os.PathLike[str] | None = None,
              display: Any = None, allow_deletes: bool = False) -> ReplicateSummary:
    """Bring ``replica`` up to date with the brick ``source`` by replaying its journals.

    * ``replica``: a directory (brick-layout replica), an aux-gfid mount of a
      GlusterFS volume, ``HOST::VOLUME`` (mounted for the run and unmounted
      after it), or a remote address (:func:`~streamsync.target.resolve_target`);
    * ``state``: a state store (default: :class:`~streamsync.state.sqlite.SqliteState`
      at ``state_path`` or :func:`~streamsync.target.default_state_path`);
    * ``engine``: ``"rsync"`` (default, or the ``sync-method`` option) or ``"tar"``;
    * ``changelogs``: journal directory (default ``<source>/.glusterfs/changelogs``);
    * ``follow``: keep scanning every ``change-interval`` seconds until ``stop`` is set;
    * ``retry_failed``: first re-queue the open items of the failure ledger (``True``),
      or only the rows with these ids (then nothing else is done: no journal is read);
    * ``archive``: archive processed journals (only for a directory we own);
    * ``allow_deletes``: let through the batch ``max-deletes`` refused last time;
    * ``progress(done, total)``: journals, called after every batch; ``display``:
      a :class:`~streamsync.progress.Progress` told of journals and files during
      each batch (what ``streamsync replicate`` draws on a terminal);
    * ``status_dir``: where gsyncd's ``brick_<brick>.status`` file goes
      (default: next to the state file).

    Status fields (gsyncd's, plus source/replica/throughput) live in the state;
    ``streamsync status`` reads them. Raises :class:`~streamsync.errors.LockHeld`
    when another worker owns the replica.

    The bundled demo brick (a real GlusterFS 10.3 brick with its journals),
    replayed into a fresh replica, which then equals the brick:

    >>> from streamsync.snapshot import demo_brick
    >>> from streamsync.verify import verify
    >>> brick = demo_brick()
    >>> s = replicate(brick, brick + "-replica")
    >>> s.changelogs, s.entry_ops, s.data_files, s.open_failures
    (11, 404, 294, 0)
    >>> verify(brick, brick + "-replica")
    []
    >>> replicate("/no/such/brick", "/tmp/r")
    Traceback (most recent call last):
    ...
    streamsync.errors.SourceError: /no/such/brick: not a brick (no .glusterfs directory)
    """
    source = os.path.abspath(os.fspath(source))
    if not os.path.isdir(os.path.join(source, GLUSTERFS_DIR)):
        raise SourceError(f"{source}: not a brick (no {GLUSTERFS_DIR} directory)")
    options = options or Options()
    fmt = options.get("changelog-archive-format")
    summary = run_worker(
        source, os.fspath(replica), mode="replay", state=state, state_path=state_path,
        options=options, engine=engine, follow=follow, stop=stop, retry_delay=retry_delay,
        changelogs=os.fspath(changelogs) if changelogs is not None else None,
        retry_failed=retry_failed, allow_deletes=allow_deletes,
        status_dir=os.fspath(status_dir) if status_dir is not None else None,
        archive=(lambda cls: archive_and_purge([c.path for c in cls if c.member is None],
                                               fmt=fmt)) if archive else None,
        progress=(lambda _mode, r: progress(r.changelogs, r.total)) if progress else None,
        display=display)
    done = summary.results[0] if summary.results else {}
    return ReplicateSummary(
        batches=done.get("batches", 0), changelogs=done.get("changelogs", 0),
        entry_ops=done.get("entry_ops", 0), entry_failures=done.get("entry_failures", 0),
        meta_ops=done.get("meta_ops", 0), meta_failures=done.get("meta_failures", 0),
        data_files=done.get("data_files", 0), data_abandoned=done.get("data_abandoned", 0),
        retried_resolved=summary.retried_resolved, open_failures=summary.open_failures,
        data_stime=summary.data_stime, entry_stime=summary.entry_stime,
        duration=summary.duration,
        state_path=getattr(state, "path", None) if state is not None else
        (state_path or _default_state(source, os.fspath(replica), options)))


def _default_state(source: str, replica: str, options: Options) -> str:
    from .target import resolve_target
    return resolve_target(source, replica, options=options).state_path
