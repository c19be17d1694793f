"""Where a worker writes: a replica address read once.

Every way of running a worker (``replicate()``'s journal replay and the crawl
worker's history / xsync / live modes) turns its replica argument into one
:class:`Target` here, which decides everything that depends on the kind of
secondary:

========================  ==================  ===============================  ====================
address                   kind                state and lock                   sink, data engine
========================  ==================  ===============================  ====================
``DIR``                   ``replica``         ``DIR/.glusterfs/streamsync/``   ``ReplicaSink``, local
aux-gfid mount directory  ``volume``          this side (:func:`volume_dir`)   ``VolumeSink``, into ``.gfid/``
``HOST::VOLUME``          ``volume``          this side, keyed on the address  mounted by the caller
``[user@]host:/path``     ``remote``          this side (:func:`remote_dir`)   ``streamsync serve`` over ssh
``user@host::VOLUME``     ``remote``          this side                        serve mounts the volume
========================  ==================  ===============================  ====================

>>> t = resolve_target("/bricks/b1", "/backup/b1")
>>> t.kind, t.state_path
('replica', '/backup/b1/.glusterfs/streamsync/bricks-b1.sqlite')
>>> default_state_path("/bricks/b1", "/backup/b1") == t.state_path
True
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import uuid
from typing import Any, NamedTuple

from .errors import ConfigError, SourceError, StateError
from .remote.spec import ReplicaSpec, parse_replica
from .secondary.gfid_mount import is_gfid_mount
from .secondary.volume_mount import parse_volume_address
from .state.lock import WorkerLock

__all__ = ["Target", "resolve_target", "default_state_path", "escape_brick", "brick_lock_name",
           "check_apart", "session_name", "lock_path", "remote_dir", "volume_dir", "make_engine", "ENGINES",
           "GLUSTERFS_DIR"]

#: data engines by CLI name
ENGINES = ("rsync", "tar")
GLUSTERFS_DIR = ".glusterfs"


def escape_brick(path: str) -> str:
    """gsyncd's ``escape()`` of a brick path (slashes to dashes, stripped).

    >>> escape_brick("/bricks/b1")
    'bricks-b1'
    """
    return path.replace("/", "-").strip("-") or "root"


def session_name(source: str, replica: str) -> str:
    """A stable name for one brick's session: ``<escaped source>_<escaped replica>``.

    >>> session_name("/bricks/b1", "geo@h:/srv/r")
    'bricks-b1_geo@h--srv-r'
    """
    return f"{escape_brick(source)}_{escape_brick(replica.replace(':', '-'))}"


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


def remote_lock_name(source: str) -> str:
    """The lock a remote replica's ``serve`` holds for brick ``source``: this
    host's name and :func:`brick_lock_name` (bricks of two hosts may share a
    device and inode number)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:100] or "host"
    return f"{host}-{brick_lock_name(source)}"


def remote_dir(source: str, replica: str, options: Any = None) -> str:
    """This side's working directory for a secondary that is not a local
    directory: ``<working-dir>/<session>/`` when the ``working-dir`` option is
    set (gsyncd's per-brick layout), else the same name under
    ``$XDG_STATE_HOME/streamsync`` (``~/.local/state/streamsync``)."""
    base = ""
    if options is not None:
        base = options.get("working-dir") or ""
    if not base:
        base = os.path.join(os.environ.get("XDG_STATE_HOME")
                            or os.path.join(os.path.expanduser("~"), ".local", "state"),
                            "streamsync")
    return os.path.join(base, session_name(os.path.abspath(source), replica))


def volume_dir(source: str, target: str, options: Any = None) -> str:
    """This side's working directory for a GlusterFS secondary volume: state and
    lock never go onto the volume. ``target`` is the ``HOST::VOLUME`` address
    (stable across runs, unlike the private mount point) or the path of a
    mount the user made."""
    label = target if parse_volume_address(target) is not None else os.path.abspath(target)
    return remote_dir(os.path.abspath(source), label, options)


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


def make_engine(name: str, source: str, replica: str, options: Any, *,
                gfid_dest: bool = False) -> Any:
    """The local data engine ``name`` (rsync, tar/tarssh) from ``source`` into
    ``replica`` (``gfid_dest``: an aux-gfid mount, data into ``.gfid/<gfid>``)."""
    from .sinks.rsync import RsyncEngine
    from .sinks.tar import TarEngine
    if name == "rsync":
        from .sinks.replica import handle_relpath
        from .sinks.smallfiles import lane_for
        root = os.fspath(replica)
        if gfid_dest:
            dest = lambda g: os.path.join(root, ".gfid", g)  # noqa: E731
        else:
            dest = lambda g: os.path.join(root, handle_relpath(g))  # noqa: E731
        return lane_for(RsyncEngine(source, replica, options, gfid_dest=gfid_dest),
                        source, dest, options)
    if name in ("tar", "tarssh"):
        return TarEngine(source, replica, options, gfid_dest=gfid_dest)
    raise ConfigError(f"unknown data engine {name!r} (choose from {', '.join(ENGINES)})")


def _replica_id(replica: str) -> str:
    """The replica's identity, made on first use (``.glusterfs/streamsync/replica-id``).

    Several bricks may start on a fresh replica at once: each writes its own
    temporary file and ``link()``s it into place, which fails for all but the
    first, and the others then read the winner's id.
    """
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


class Target(NamedTuple):
    """One worker's secondary, resolved (see the module docstring).

    ``path``: the local directory or mount (``None`` for a remote one);
    ``spec``: the parsed address; ``display``: how status and logs name it;
    ``working_dir``: this side's directory for xsync journals and, but for a
    brick-layout replica, the state and the lock.
    """

    kind: str
    source: str
    path: str | None
    spec: ReplicaSpec
    display: str
    working_dir: str

    @property
    def state_path(self) -> str:
        """The default state file."""
        if self.kind == "replica":
            assert self.path is not None
            return os.path.join(self.path, GLUSTERFS_DIR, "streamsync",
                                escape_brick(self.source) + ".sqlite")
        return os.path.join(self.working_dir, "state.sqlite")

    def lock(self) -> WorkerLock | None:
        """The per-brick worker lock (``None`` for a remote secondary, whose
        ``serve`` process holds it on its side)."""
        if self.kind == "remote":
            return None
        where = (os.path.join(self.path or "", GLUSTERFS_DIR, "streamsync")
                 if self.kind == "replica" else self.working_dir)
        return WorkerLock(os.path.join(where, brick_lock_name(self.source) + ".lock"),
                          what=f"{self.source} -> {self.display}")

    def prepare(self) -> None:
        """Refuse a local secondary that overlaps the brick (:func:`check_apart`),
        then make this side's directories (a replica's on first use)."""
        if self.path is not None:
            check_apart(self.source, self.path)
        if self.kind == "replica":
            try:
                os.makedirs(os.path.join(self.path or "", GLUSTERFS_DIR, "streamsync"),
                            exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"{self.path}: cannot use as a replica directory: "
                                  f"{exc.strerror or exc}") from None
        else:  # (a replica's working directory is made by the crawl that needs it)
            os.makedirs(self.working_dir, exist_ok=True)

    def check_pairing(self, state: Any) -> None:
        """Refuse a state that belongs to another brick-layout replica (the
        replica directory was recreated while the state kept saying "all done");
        a fresh state is paired with the replica here."""
        if self.kind != "replica":
            return
        assert self.path is not None
        rid = _replica_id(self.path)
        known = state.status().get("replica_id")
        if known and known != rid:
            raise StateError(f"{getattr(state, 'path', 'state')}: belongs to another replica "
                             f"(id {known}); {self.path} has id {rid}. Use a fresh --state for a "
                             f"new replica")
        if not known:
            state.set_status(replica_id=rid)

    def open(self, engine: str, options: Any, *, stop: Any = None,
             remote_command: str | None = None,
             remote_kwargs: dict[str, Any] | None = None) -> tuple[Any, Any, Any]:
        """``(sink, data engine, connection or None)`` for this secondary."""
        if self.kind == "remote":
            from .remote.client import RemoteReplica
            conn = RemoteReplica(self.spec, options=options, stop=stop,
                                 remote_command=remote_command,
                                 lock_name=remote_lock_name(self.source), **(remote_kwargs or {}))
            return conn, conn.data_engine(engine, self.source), conn
        assert self.path is not None
        if self.kind == "volume":
            from .sinks.volume import VolumeSink
            sink: Any = VolumeSink(self.path)
        else:
            from .sinks.replica import ReplicaSink
            try:
                sink = ReplicaSink(self.path)
            except OSError as exc:
                raise ConfigError(f"{self.path}: cannot use as a replica directory: "
                                  f"{exc.strerror or exc}") from None
        try:
            eng = make_engine(engine, self.source, self.path, options,
                              gfid_dest=self.kind == "volume")
        except BaseException:
            sink.close()
            raise
        return sink, eng, None


def resolve_target(source: str | os.PathLike[str], replica: str | os.PathLike[str], *,
                   label: str | None = None, working_dir: str | None = None,
                   options: Any = None) -> Target:
    """Read the replica address ``replica`` for brick ``source``.

    ``label``: the address the user gave when ``replica`` is the mount made for
    it (``HOST::VOLUME``); ``working_dir``: overrides this side's directory.
    A ``HOST::VOLUME`` address itself resolves as a volume whose ``path`` is
    ``None`` until it is mounted (:func:`~streamsync.secondary.volume_mount.
    mounted_volume`), enough to name its state.

    >>> resolve_target("/b1", "gluster2::backup").kind
    'volume'
    """
    source = os.path.abspath(os.fspath(source))
    text = os.fspath(replica)
    if parse_volume_address(text) is not None:
        wd = working_dir or volume_dir(source, text, options)
        return Target("volume", source, None, ReplicaSpec(False, text), text, wd)
    spec = parse_replica(text)
    if spec.remote:
        wd = working_dir or remote_dir(source, spec.display, options)
        return Target("remote", source, None, spec, spec.display, wd)
    path = os.path.abspath(spec.path)
    if is_gfid_mount(path):
        wd = working_dir or volume_dir(source, label or path, options)
        return Target("volume", source, path, spec, label or path, wd)
    wd = working_dir or os.path.join(path, GLUSTERFS_DIR, "streamsync",
                                     "work-" + escape_brick(source))
    return Target("replica", source, path, spec, path, wd)


def default_state_path(source: str | os.PathLike[str], replica: str | os.PathLike[str],
                       working_dir: str | None = None) -> str:
    """Where a worker for brick ``source`` keeps its state by default: in a
    brick-layout replica (``.glusterfs/streamsync/<escaped brick>.sqlite``; several
    bricks of a distributed volume may feed one replica, one worker each), else
    on this side (``state.sqlite`` in the target's working directory).

    >>> default_state_path("/bricks/b1", "/r")
    '/r/.glusterfs/streamsync/bricks-b1.sqlite'
    """
    return resolve_target(source, replica, working_dir=working_dir).state_path


def lock_path(source: str | os.PathLike[str], replica: str | os.PathLike[str]) -> str | None:
    """The worker lock file of brick ``source`` for ``replica`` (``None`` for a
    remote secondary, whose ``serve`` holds the lock on its side).

    >>> lock_path("/", "/r").startswith("/r/.glusterfs/streamsync/brick-")
    True
    """
    lk = resolve_target(source, replica).lock()
    return None if lk is None else lk.path
