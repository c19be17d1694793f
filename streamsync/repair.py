"""Repair drift on the secondary: ``streamsync verify --repair BRICK SECONDARY``.

A file deleted or edited on the secondary behind geo-replication's back is never
repaired by gsyncd (its journals say nothing about it). Repair compares the
primary's brick with the secondary (gfids included), then puts back what differs
through the same sinks replication uses, so every object gets the primary's gfid:

* a name only on the primary: created (MKDIR, CREATE, SYMLINK, MKNOD) with the
  primary's gfid, or hard-linked when the secondary holds the gfid elsewhere;
* different content: the file's bytes sent again (the target's data engine);
* different mode, owner or mtime, and every object made here: the primary's
  attributes applied (after the data, which changes mtimes; a symlink gets its
  owner only, as replication's meta ops give it);
* what cannot be put right without deleting something on the secondary (a name
  holding another gfid or another type, a symlink with another target) and names
  only on the secondary are reported, never removed.

The sync points (stimes) are not touched, and the target's worker lock is held
while it works. :func:`plan_repair` decides (pure); :func:`repair` applies.

>>> src = {".": Node(".", "d", 0o755, 0, 0, gfid=ROOT_GFID),
...        "a": Node("a", "f", 0o644, 0, 0, 1, "x", gfid="5b1c2d3e-0000-4000-8000-00000000000a")}
>>> [(a.kind, a.path) for a in plan_repair(src, {".": src["."]})]
[('create', 'a'), ('data', 'a'), ('meta', 'a')]
"""

from __future__ import annotations

import contextlib
import os
import stat as S
from typing import Any, Iterator, NamedTuple

from .errors import ConfigError, SourceError
from .ops import EntryOp, MetaOp
from .records import ROOT_GFID, Stat
from .verify import Difference, Node, compare, scan_tree

__all__ = ["RepairAction", "RepairReport", "plan_repair", "repair"]

_MAKE = {"d": ("MKDIR", S.S_IFDIR), "f": ("CREATE", S.S_IFREG), "l": ("SYMLINK", S.S_IFLNK),
         "p": ("MKNOD", S.S_IFIFO), "s": ("MKNOD", S.S_IFSOCK), "c": ("MKNOD", S.S_IFCHR),
         "b": ("MKNOD", S.S_IFBLK)}
#: what the report says it would do or did, in the order it is done
KINDS = ("create", "link", "data", "meta", "conflict", "extra")


class RepairAction(NamedTuple):
    """One thing to put right: ``kind`` (see :data:`KINDS`), the path, the
    primary's gfid for it, and a few words on why."""

    kind: str
    path: str
    gfid: str | None
    detail: str = ""

    @property
    def acts(self) -> bool:
        """Whether repair applies it (``extra`` and ``conflict`` are only reported)."""
        return self.kind in ("create", "link", "data", "meta")

    def __str__(self) -> str:
        return f"{self.kind:8} {self.path}" + (f"  ({self.detail})" if self.detail else "")


class RepairReport(NamedTuple):
    """What :func:`repair` did: the actions, those that failed (with why) and the
    differences left after it (a fresh comparison)."""

    actions: tuple[RepairAction, ...]
    failed: tuple[tuple[RepairAction, str], ...]
    remaining: tuple[Difference, ...]


def _under(path: str, subtree: str | None) -> bool:
    return subtree is None or path == subtree or path.startswith(subtree + "/")


def plan_repair(source: dict[str, Node], replica: dict[str, Node], *,
                subtree: str | None = None) -> list[RepairAction]:
    """The actions that make ``replica`` equal ``source`` (both from
    :func:`~streamsync.verify.scan_tree` with ``gfids=True``), parents before
    children; only paths at or under ``subtree`` (relative) when given."""
    creates: list[RepairAction] = []
    data: list[RepairAction] = []
    meta: list[RepairAction] = []
    report: list[RepairAction] = []
    present = {n.gfid for n in replica.values() if n.gfid}
    by_path: dict[str, list[Difference]] = {}
    for d in _differences(source, replica):
        if _under(d.path, subtree):
            by_path.setdefault(d.path, []).append(d)
    for path, diffs in by_path.items():
        s, fields = source.get(path), {d.field for d in diffs}
        if "extra" in fields:
            report.append(RepairAction("extra", path, replica[path].gfid,
                                       "only on the secondary: left as it is"))
            continue
        assert s is not None
        if "missing" in fields:
            if s.type == "d" and s.gfid in present:
                report.append(RepairAction("conflict", path, s.gfid, "the directory is "
                                           "elsewhere on the secondary: not moved back"))
                continue
            if s.type != "d" and s.gfid in present:
                creates.append(RepairAction("link", path, s.gfid, "the gfid is there elsewhere"))
            else:
                creates.append(RepairAction("create", path, s.gfid, _type_word(s.type)))
                present.add(s.gfid)
                if s.type == "f" and s.size:
                    data.append(RepairAction("data", path, s.gfid, f"{s.size} bytes"))
            meta.append(RepairAction("meta", path, s.gfid, ""))
            continue
        wrong = fields & {"type", "gfid", "target"}
        if wrong:
            r = replica[path]
            what = ", ".join(f"{f} {getattr(r, f)!r} instead of {getattr(s, f)!r}"
                             for f in sorted(wrong))
            report.append(RepairAction("conflict", path, s.gfid,
                                       f"{what}: not changed (it would remove what is there)"))
            continue
        if fields & {"size", "sha256"}:
            data.append(RepairAction("data", path, s.gfid, "content differs"))
        if fields & {"mode", "uid", "gid", "mtime", "size", "sha256"}:
            meta.append(RepairAction("meta", path, s.gfid, ", ".join(sorted(
                fields & {"mode", "uid", "gid", "mtime"})) or "after the data"))
    return creates + data + meta + report


def _differences(source: dict[str, Node], replica: dict[str, Node]) -> list[Difference]:
    """What repair puts right: :func:`~streamsync.verify.compare` with mtimes, but a
    symlink's own mtime, which replication (like gsyncd's meta ops, spec 4.6) does
    not carry, is not a difference."""
    return [d for d in compare(source, replica, mtimes=True)
            if not (d.field == "mtime" and source[d.path].type == "l")]


def _type_word(t: str) -> str:
    return {"d": "directory", "f": "file", "l": "symlink", "p": "fifo", "s": "socket",
            "c": "char device", "b": "block device"}.get(t, t)


def _entry_op(a: RepairAction, source: dict[str, Node], view: Any) -> EntryOp:
    s = source[a.path]
    parent, _, name = a.path.rpartition("/")
    pgfid = source[parent or "."].gfid or ROOT_GFID
    if a.kind == "link":
        return EntryOp("LINK", a.gfid or "", pgfid, name, stat=view.lstat(a.gfid))
    fop, fmt = _MAKE[s.type]
    if fop == "SYMLINK":
        st = view.lstat(a.gfid) or Stat(s.uid, s.gid, S.S_IFLNK | 0o777, 0, 0)
        return EntryOp("SYMLINK", a.gfid or "", pgfid, name, stat=st, link=s.target)
    return EntryOp(fop, a.gfid or "", pgfid, name, mode=fmt | s.mode, uid=s.uid, gid=s.gid)


@contextlib.contextmanager
def _secondary(brick: str, secondary: str) -> Iterator[str]:
    """The secondary as a local path (``HOST::VOLUME`` mounted for the repair)."""
    from .secondary.volume_mount import mounted_volume, parse_volume_address
    address = parse_volume_address(secondary)
    if address is None:
        yield secondary
        return
    with mounted_volume(*address) as mnt:
        yield mnt


def repair(brick: str | os.PathLike[str], secondary: str | os.PathLike[str], *,
           subtree: str | None = None, dry_run: bool = False, options: Any = None,
           engine: str = "rsync") -> RepairReport:
    """Put back on ``secondary`` what differs from the primary ``brick`` (module
    text). ``secondary``: a brick-layout replica, an aux-gfid mount or
    ``HOST::VOLUME``; ``subtree``: only this relative path and what is under it;
    ``dry_run``: decide only.

    >>> from streamsync.snapshot import demo_brick
    >>> from streamsync.replicate import replicate
    >>> brick = demo_brick()
    >>> _ = replicate(brick, brick + "-replica")
    >>> os.unlink(brick + "-replica/data/archive/moved_sub/subsub/note0.txt")
    >>> [str(a) for a in repair(brick, brick + "-replica", dry_run=True).actions]
    ['create   data/archive/moved_sub/subsub/note0.txt  (file)', 'data     data/archive/moved_sub/subsub/note0.txt  (98 bytes)', 'meta     data/archive/moved_sub/subsub  (mtime)', 'meta     data/archive/moved_sub/subsub/note0.txt']
    >>> r = repair(brick, brick + "-replica")
    >>> r.failed, r.remaining
    ((), ())
    """
    from .target import resolve_target
    from .views import BrickView
    source = os.path.abspath(os.fspath(brick))
    if not os.path.isdir(os.path.join(source, ".glusterfs")):
        raise SourceError(f"{source}: --repair needs the primary's brick directory (its "
                          f".glusterfs handles give the gfids and the bytes)")
    if subtree is not None:
        subtree = os.path.normpath(subtree).strip("/")
        if subtree.startswith("..") or subtree in ("", "."):
            raise ConfigError(f"--path {subtree!r}: a relative path inside the volume")
    with _secondary(source, os.fspath(secondary)) as where:
        target = resolve_target(source, where, label=os.fspath(secondary), options=options)
        if target.kind == "remote":
            raise ConfigError(f"{secondary}: --repair works on a local replica, a mounted "
                              f"volume or HOST::VOLUME")
        src = _with_brick_gfids(source, scan_tree(source, gfids=True))
        rep = scan_tree(where, gfids=True)
        actions = plan_repair(src, rep, subtree=subtree)
        if dry_run:
            return RepairReport(tuple(actions), (), ())
        target.prepare()
        lock = target.lock()
        if lock is not None:
            lock.acquire()
        failed: list[tuple[RepairAction, str]] = []
        try:
            sink, eng, _ = target.open(engine, options)
            try:
                failed = _apply(actions, src, sink, eng, BrickView(source))
            finally:
                sink.close()
        finally:
            if lock is not None:
                lock.release()
        after = _differences(_with_brick_gfids(source, scan_tree(source, gfids=True)),
                             scan_tree(where, gfids=True))
        left = tuple(d for d in after if _under(d.path, subtree) and d.field != "extra")
        return RepairReport(tuple(actions), tuple(failed), left)


def _with_brick_gfids(brick: str, nodes: dict[str, Node]) -> dict[str, Node]:
    """Every node with its gfid: a brick restored without xattrs (a tar of one)
    still names them through its ``.glusterfs`` handles."""
    from .views import BrickView
    view = BrickView(brick)
    return {p: n if n.gfid else n._replace(gfid=view.path_gfid(p)) for p, n in nodes.items()}


def _key(op: EntryOp) -> tuple[str, str, str | None, str | None]:
    return op.op, op.gfid, op.pgfid, op.bname


def _apply(actions: list[RepairAction], src: dict[str, Node], sink: Any, eng: Any,
           view: Any) -> list[tuple[RepairAction, str]]:
    from .sinks.engine import DataSyncer
    failed: list[tuple[RepairAction, str]] = []
    entries = [a for a in actions if a.kind in ("create", "link")]
    # a gfid the target still holds without this name (a replica keeps its handle
    # when a name is deleted behind its back) is linked, never made a second time
    forget = getattr(sink, "forget_orphan", lambda g: False)
    held = getattr(sink, "has_handle", lambda g: False)
    ops = []
    for a in entries:
        if a.kind == "create" and a.gfid:
            forget(a.gfid)
        relink = a.kind == "create" and src[a.path].type != "d" and a.gfid and held(a.gfid)
        ops.append(_entry_op(a._replace(kind="link") if relink else a, src, view))
    by_op = {_key(op): a for op, a in zip(ops, entries)}  # (failures name the action)
    for f in sink.apply_entries(ops) if ops else []:
        a = by_op.get(_key(f.op)) or RepairAction("create", f.op.bname or "?", f.op.gfid)
        failed.append((a, f"{f.op.op} failed: {os.strerror(f.errno)}"))
    data = [a for a in actions if a.kind == "data"]
    if data:
        syncer = DataSyncer(eng)
        try:
            syncer.submit([a.gfid for a in data if a.gfid])
            bad = {g for r in syncer.wait() for g in r.failed}
        finally:
            syncer.close()
        failed += [(a, "its data did not arrive") for a in data if a.gfid in bad]
    metas = [a for a in actions if a.kind == "meta" and a.gfid]
    ops_m = [MetaOp(a.gfid, st) for a in metas if (st := view.lstat(a.gfid)) is not None]
    by_gfid = {a.gfid: a for a in metas}
    for f in sink.apply_meta(ops_m) if ops_m else []:
        failed.append((by_gfid[f.op.gfid], f"{f.what} failed: {os.strerror(f.errno)}"))
    return failed
