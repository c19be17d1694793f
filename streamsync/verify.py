"""Compare two namespaces (a source brick and its replica, or a tree and a manifest).

What is compared, per path (``.glusterfs``, ``.trashcan`` and AFR's
``.glusterfs-anonymous-inode-*`` at the top are excluded): the type, permission bits (``st_mode & 0o7777``, not for
symlinks), owner and group, size and SHA-256 of regular files, symlink
targets, hard-link groups (the set of names sharing an inode) and, only when
asked, mtimes (whole seconds).

A manifest is the JSON-lines format of ``examples/demo-brick/demo.manifest.jsonl``
(one object per name: ``path``, ``type``, ``mode`` as 4 octal digits,
``uid``, ``gid``, ``size``, ``sha256``, ``target``, ``mtime``, ``gfid``);
names with the same ``gfid`` form a hard-link group.

>>> import tempfile, os
>>> a, b = tempfile.mkdtemp(), tempfile.mkdtemp()
>>> _ = open(os.path.join(a, "f"), "w").write("x")
>>> [str(d) for d in compare(scan_tree(a), scan_tree(b))]
['f: only in source']
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat as S
from typing import Any, Iterable, Iterator, NamedTuple

import orjson

from .errors import SourceError
from .records import AFR_ANON_PREFIX

__all__ = ["Node", "Difference", "scan_tree", "load_manifest", "compare", "verify",
           "verify_manifest", "EXCLUDED_TOP"]

#: names skipped at the top of a brick
EXCLUDED_TOP = frozenset({".glusterfs", ".trashcan"})

_TYPES = {S.S_IFDIR: "d", S.S_IFREG: "f", S.S_IFLNK: "l", S.S_IFIFO: "p",
          S.S_IFCHR: "c", S.S_IFBLK: "b", S.S_IFSOCK: "s"}


class Node(NamedTuple):
    """One name of a namespace. ``links`` is the sorted hard-link group
    (non-directories with more than one name), else ``()``."""

    path: str
    type: str
    mode: int
    uid: int
    gid: int
    size: int | None = None
    sha256: str | None = None
    target: str | None = None
    mtime: int | None = None
    links: tuple[str, ...] = ()
    #: the object's gfid (``scan_tree(gfids=True)``), ``None`` when not read
    gfid: str | None = None


class Difference(NamedTuple):
    """One difference: ``field`` is ``"missing"``/``"extra"`` or a Node field."""

    path: str
    field: str
    source: Any = None
    replica: Any = None

    def __str__(self) -> str:
        if self.field == "missing":
            return f"{self.path}: only in source"
        if self.field == "extra":
            return f"{self.path}: only in replica"
        return f"{self.path}: {self.field} differs: source={self.source!r} replica={self.replica!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "field": self.field, "source": _jsonable(self.source),
                "replica": _jsonable(self.replica)}


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    return v


def _sha256(dfd: int, name: str, where: str = "") -> str:
    h = hashlib.sha256()
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError as exc:
        if exc.errno in _GONE:
            raise _Vanished(name) from None
        raise SourceError(f"{where or name}: cannot read to compare contents: "
                          f"{exc.strerror} (run as root, or use --no-hash)") from None
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


class _Vanished(Exception):
    """A name listed a moment ago is gone (a tree changing while it is scanned)."""


#: a name gone: removed, or (GlusterFS) its gfid no longer there behind a name
#: still in a client's cache
_GONE = frozenset({errno.ENOENT, errno.ESTALE})


def read_gfid(path: str) -> str | None:
    """The gfid of ``path``: ``glusterfs.gfid.string`` on a GlusterFS mount, else
    ``trusted.gfid`` (a brick, a root-made replica) or ``user.streamsync.gfid``;
    ``None`` when it has none.

    >>> read_gfid("/nonexistent") is None
    True
    """
    try:
        raw = os.getxattr(path, "glusterfs.gfid.string", follow_symlinks=False)
        return raw.rstrip(b"\0").decode("ascii", "replace")
    except OSError:
        pass
    for key in ("trusted.gfid", "user.streamsync.gfid"):
        try:
            raw = os.getxattr(path, key, follow_symlinks=False)
        except OSError:
            continue
        if len(raw) == 16:
            import uuid
            return str(uuid.UUID(bytes=raw))
    return None


def scan_tree(root: str | os.PathLike[str], *, hashes: bool = True,
              exclude_top: Iterable[str] = EXCLUDED_TOP, gfids: bool = False,
              hash_cache: dict[tuple[int, ...], str] | None = None,
              progress: Any = None) -> dict[str, Node]:
    """Every name under ``root`` (``"."`` is the root itself), never following
    symlinks; with ``gfids``, each object's gfid too (:func:`read_gfid`).

    ``hash_cache``: for scanning a tree again and again (polling a live target),
    a dict the scan fills with each regular file's content hash keyed by its
    device, inode, size, mtime and ctime; a file whose key is there is not read
    again (any write changes its ctime). ``progress``: a
    :class:`~streamsync.progress.Progress` told of each name (and the bytes
    hashed) as the walk goes.

    >>> import tempfile
    >>> d, cache = tempfile.mkdtemp(), {}
    >>> _ = open(os.path.join(d, "f"), "w").write("x")
    >>> scan_tree(d, hash_cache=cache) == scan_tree(d), len(cache)
    (True, 1)
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise SourceError(f"{root}: " + ("not a directory" if os.path.lexists(root)
                                         else "no such directory"))
    excluded = frozenset(exclude_top)
    nodes: dict[str, Node] = {}
    inodes: dict[tuple[int, int], list[str]] = {}

    def _hash(dfd: int, name: str, rel: str, st: os.stat_result) -> str:
        if hash_cache is None:
            return _sha256(dfd, name, os.path.join(root, rel))
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        h = hash_cache.get(key)
        if h is None:
            h = hash_cache[key] = _sha256(dfd, name, os.path.join(root, rel))
        return h

    def add(dfd: int, name: str, rel: str, st: os.stat_result) -> None:
        t = _TYPES.get(S.S_IFMT(st.st_mode), "?")
        node = Node(rel, t, S.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                    st.st_size if t == "f" else None,
                    _hash(dfd, name, rel, st) if t == "f" and hashes else None,
                    os.readlink(name, dir_fd=dfd) if t == "l" else None,
                    int(st.st_mtime),
                    gfid=read_gfid(os.path.join(root, rel)) if gfids else None)
        nodes[rel] = node
        if progress is not None:
            progress.scanned(1, st.st_size if t == "f" and hashes else 0)
        if t != "d":
            inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)

    rfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    stack: list[tuple[int, str]] = []
    try:
        nodes["."] = Node(".", "d", *_attrs(os.fstat(rfd)))
        if progress is not None:
            progress.scanned(1)
        stack.append((os.dup(rfd), ""))
        while stack:
            dfd, prefix = stack.pop()
            try:
                try:
                    with os.scandir(dfd) as it:
                        entries = list(it)
                except OSError as exc:
                    if exc.errno in _GONE and prefix:  # removed while we walked it
                        nodes.pop(prefix[:-1], None)
                        continue
                    raise SourceError(f"{os.path.join(root, prefix)}: cannot list: "
                                      f"{exc.strerror}") from None
                for ent in entries:
                    if not prefix and (ent.name in excluded
                                       or ent.name.startswith(AFR_ANON_PREFIX)):
                        continue  # (AFR's own directory on a replicated brick)
                    rel = prefix + ent.name
                    # a name gone between the listing and here (a live replica, a
                    # source still being written) is not in the tree: skipped
                    try:
                        st = os.stat(ent.name, dir_fd=dfd, follow_symlinks=False)
                        add(dfd, ent.name, rel, st)
                    except _Vanished:
                        nodes.pop(rel, None)
                        continue
                    except OSError as exc:
                        if exc.errno not in _GONE:
                            raise
                        nodes.pop(rel, None)
                        continue
                    if S.S_ISDIR(st.st_mode):
                        try:
                            cfd = os.open(ent.name, os.O_RDONLY | os.O_DIRECTORY
                                          | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                        except OSError as exc:
                            if exc.errno in _GONE:
                                nodes.pop(rel, None)
                                continue
                            raise SourceError(f"{os.path.join(root, rel)}: cannot open: "
                                              f"{exc.strerror}") from None
                        stack.append((cfd, rel + "/"))
            finally:
                os.close(dfd)
    finally:
        os.close(rfd)
        for fd, _ in stack:  # left by an error: a descriptor kept open would keep a
            os.close(fd)     # mount busy (its unmount fails)
    for paths in inodes.values():
        if len(paths) > 1:
            group = tuple(sorted(paths))
            for p in paths:
                nodes[p] = nodes[p]._replace(links=group)
    return nodes


def _attrs(st: os.stat_result) -> tuple[int, int, int, None, None, None, int]:
    return (S.S_IMODE(st.st_mode), st.st_uid, st.st_gid, None, None, None, int(st.st_mtime))


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Node]:
    """Nodes of a manifest file (see the module docstring).

    >>> nodes = load_manifest("examples/demo-brick/demo.manifest.jsonl")
    >>> len(nodes), nodes["data"].type, oct(nodes["data"].mode)
    (336, 'd', '0o755')
    """
    nodes: dict[str, Node] = {}
    groups: dict[str, list[str]] = {}
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = orjson.loads(line)
                p = d["path"]
                t = d["type"]
                node = Node(p, t, int(d["mode"], 8) if isinstance(d["mode"], str) else int(d["mode"]),
                            int(d["uid"]), int(d["gid"]), d.get("size"), d.get("sha256"),
                            d.get("target"), d.get("mtime"))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise SourceError(f"{path}:{lineno}: bad manifest line: {exc}") from exc
            nodes[p] = node
            if t != "d" and d.get("gfid"):
                groups.setdefault(d["gfid"], []).append(p)
    for paths in groups.values():
        if len(paths) > 1:
            g = tuple(sorted(paths))
            for p in paths:
                nodes[p] = nodes[p]._replace(links=g)
    return nodes


_FIELDS = ("type", "mode", "uid", "gid", "size", "sha256", "target", "links", "gfid")


def compare(source: dict[str, Node], replica: dict[str, Node], *,
            mtimes: bool = False, ignore: Iterable[str] = ()) -> list[Difference]:
    """Differences between two namespaces, sorted by path (``ignore``: field
    names not to compare, e.g. ``("uid", "gid")``).

    >>> import tempfile
    >>> a, b = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> _ = open(os.path.join(a, "f"), "w").write("xy"), open(os.path.join(b, "f"), "w").write("x")
    >>> [str(d) for d in compare(scan_tree(a), scan_tree(b), ignore=("sha256",))]
    ['f: size differs: source=2 replica=1']
    """
    out: list[Difference] = []
    skip = frozenset(ignore)
    fields = tuple(f for f in _FIELDS + (("mtime",) if mtimes else ()) if f not in skip)
    for p in sorted(source.keys() | replica.keys()):
        a, b = source.get(p), replica.get(p)
        if b is None:
            out.append(Difference(p, "missing"))
            continue
        if a is None:
            out.append(Difference(p, "extra"))
            continue
        for f in fields:
            va, vb = getattr(a, f), getattr(b, f)
            if f == "mode" and a.type == "l":
                continue
            if f == "sha256" and (va is None or vb is None):
                continue
            if f in ("mtime", "gfid") and (va is None or vb is None):
                continue
            if va != vb:
                if f in ("mode",):
                    va, vb = f"{va:04o}", f"{vb:04o}"
                out.append(Difference(p, f, va, vb))
                if f == "type":
                    break
    return out


def verify(source: str | os.PathLike[str], replica: str | os.PathLike[str], *,
           mtimes: bool = False, hashes: bool = True, gfids: bool = False) -> list[Difference]:
    """Differences between the namespaces of ``source`` and ``replica`` (``gfids``:
    also each object's gfid, as geo-replication keeps the primary's).

    >>> import tempfile
    >>> a, b = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> _ = open(os.path.join(a, "f"), "w").write("x")
    >>> [str(d) for d in verify(a, b)]
    ['f: only in source']
    >>> _ = open(os.path.join(b, "f"), "w").write("x")
    >>> verify(a, b)
    []
    """
    return compare(scan_tree(source, hashes=hashes, gfids=gfids),
                   scan_tree(replica, hashes=hashes, gfids=gfids), mtimes=mtimes)


def verify_manifest(manifest: str | os.PathLike[str], replica: str | os.PathLike[str], *,
                    mtimes: bool = False) -> list[Difference]:
    """Differences between a manifest (as the source) and the tree ``replica``.

    >>> import tempfile
    >>> empty = tempfile.mkdtemp()
    >>> [str(d) for d in verify_manifest("examples/demo-brick/demo.manifest.jsonl", empty)][1:3]
    ['data: only in source', 'data/archive: only in source']
    """
    return compare(load_manifest(manifest), scan_tree(replica), mtimes=mtimes)


def format_report(diffs: list[Difference], *, limit: int = 200) -> Iterator[str]:
    """Readable lines for a list of differences."""
    for d in diffs[:limit]:
        yield str(d)
    if len(diffs) > limit:
        yield f"... and {len(diffs) - limit} more differences"
