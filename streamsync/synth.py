"""Random but realistic workloads: a namespace history written as processed
changelogs, plus the namespace as it is at the end (a :class:`MemoryView`).

Used by the tests (property tests, the seed-model oracle), the differential
script (``scripts/seed_diff.py``) and the benchmarks. The generator simulates a
brick: inodes with gfids, names, hard links, symlinks, directories, renames
(also over existing names), deletes, data writes and attribute changes, and
journals each operation as libgfchangelog would, split into changelogs with
increasing timestamps. Deterministic for a given seed.

Name styles (``names=``):

* ``"plain"`` - ``[a-z0-9_.]`` names;
* ``"hostile"`` - also spaces, newlines, ``%`` (incl. literal ``%20``), inner
  tabs and UTF-8 text: everything gsyncd itself reads correctly;
* ``"all"`` - also names gsyncd's line handling corrupts: trailing whitespace,
  carriage returns, bytes that are not UTF-8 (see docs/differences.md).

>>> w = synth_workload(1, ops=50, changelogs=3)
>>> len(w.changelogs), w.state.lstat("00000000-0000-0000-0000-000000000001").mode == 0o40755
(3, True)
>>> w2 = synth_workload(1, ops=50, changelogs=3)
>>> [render_processed(r) for _, r in w.changelogs] == [render_processed(r) for _, r in w2.changelogs]
True
"""

from __future__ import annotations

import os
import random
import uuid
from typing import NamedTuple

import orjson

from .parse import render_processed
from .records import ROOT_GFID, DataRecord, EntryRecord, MetaRecord, Record, Stat
from .views.memory import MemoryView

__all__ = ["Workload", "synth_workload", "random_name"]

_PLAIN = "abcdefghijklmnopqrstuvwxyz0123456789_."
_HOSTILE_BITS = [" ", "  ", "\n", "%", "%20", "%25", "%0A", "\t", "é", "日本", "ü", "a b", "x%y",
                 "\\", "'", '"', "*", "?", "#", "-", "~"]
_BAD_TAILS = ["\t", " \t", "\x0b", "\x0c", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000"]
_BAD_INNER = ["\r", "\r\n", os.fsdecode(b"\xff"), os.fsdecode(b"\xe9t\xe9"), os.fsdecode(b"\xc3")]


def random_name(rng: random.Random, style: str = "hostile") -> str:
    """A valid basename (non-empty, no ``/`` or NUL, not ``.``/``..``).

    >>> random_name(random.Random(3), "plain").isascii()
    True
    """
    while True:
        n = rng.randint(1, 8)
        name = "".join(rng.choice(_PLAIN) for _ in range(n))
        if style != "plain" and rng.random() < 0.45:
            parts = [name]
            for _ in range(rng.randint(1, 3)):
                parts.insert(rng.randint(0, len(parts)), rng.choice(_HOSTILE_BITS))
            name = "".join(parts)
            if name.endswith(("\t",)):
                name += "z"
        if style == "all" and rng.random() < 0.25:
            if rng.random() < 0.5:
                name += rng.choice(_BAD_TAILS)
            else:
                i = rng.randint(0, len(name))
                name = name[:i] + rng.choice(_BAD_INNER) + name[i:]
        if name not in (".", "..") and "/" not in name and "\0" not in name:
            return name


class Workload(NamedTuple):
    """Changelogs ``[(ts, records)]`` in order and the source namespace at the end."""

    changelogs: list[tuple[int, list[Record]]]
    state: MemoryView

    @property
    def lines(self) -> int:
        return sum(len(r) for _, r in self.changelogs)

    def write(self, directory: str | os.PathLike) -> tuple[str, str]:
        """Write ``changelogs/CHANGELOG.<ts>`` (processed text) and ``state.json``;
        return both paths."""
        directory = os.fspath(directory)
        cdir = os.path.join(directory, "changelogs")
        os.makedirs(cdir, exist_ok=True)
        for ts, recs in self.changelogs:
            with open(os.path.join(cdir, f"CHANGELOG.{ts}"), "wb") as fh:
                fh.write(render_processed(recs))
        spath = os.path.join(directory, "state.json")
        with open(spath, "wb") as fh:
            fh.write(orjson.dumps(self.state.to_json()))
        return cdir, spath


class _Sim:
    def __init__(self, rng: random.Random, names: str, delpath: bool, t0: float) -> None:
        self.rng = rng
        self.style = names
        self.delpath = delpath
        self.now = t0
        self.inodes: dict[str, dict] = {ROOT_GFID: {"mode": 0o40755, "uid": 0, "gid": 0,
                                                    "atime": t0, "mtime": t0, "links": 0}}
        self.entries: dict[tuple[str, str], str] = {}
        self.children: dict[str, set[str]] = {ROOT_GFID: set()}
        self.parent: dict[str, tuple[str, str]] = {}
        self.dead: list[str] = []
        self.out: list[Record] = []

    def gfid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def is_dir(self, g: str) -> bool:
        return (self.inodes[g]["mode"] & 0o170000) == 0o040000

    def path_of(self, pgfid: str, name: str) -> str:
        parts = [name]
        while pgfid != ROOT_GFID:
            pgfid, n = self.parent[pgfid]
            parts.append(n)
        return "/".join(reversed(parts))

    def pick_dir(self) -> str:
        return self.rng.choice(list(self.children))

    def fresh_name(self, pgfid: str) -> str:
        for _ in range(20):
            n = random_name(self.rng, self.style)
            if (pgfid, n) not in self.entries:
                return n
        return random_name(self.rng, "plain") + self.gfid()[:8]

    def pick_entry(self, want_dir: bool | None = None) -> tuple[str, str, str] | None:
        if not self.entries:
            return None
        keys = list(self.entries)
        for _ in range(10):
            p, n = self.rng.choice(keys)
            g = self.entries[(p, n)]
            if want_dir is None or self.is_dir(g) == want_dir:
                return p, n, g
        return None

    def add_name(self, p: str, n: str, g: str) -> None:
        self.entries[(p, n)] = g
        self.children[p].add(n)
        self.inodes[g]["links"] += 1
        if self.is_dir(g):
            self.parent[g] = (p, n)

    def drop_name(self, p: str, n: str) -> str:
        g = self.entries.pop((p, n))
        self.children[p].discard(n)
        ino = self.inodes[g]
        ino["links"] -= 1
        if ino["links"] <= 0:
            del self.inodes[g]
            self.children.pop(g, None)
            self.parent.pop(g, None)
            self.dead.append(g)
        return g

    def new_inode(self, mode: int, link: str | None = None) -> str:
        g = self.gfid()
        self.now += self.rng.random()
        self.inodes[g] = {"mode": mode, "uid": self.rng.choice([0, 0, 1000, 33]),
                          "gid": self.rng.choice([0, 0, 1000, 33]), "atime": round(self.now, 6),
                          "mtime": round(self.now, 6), "links": 0}
        if link is not None:
            self.inodes[g]["link"] = link
        if (mode & 0o170000) == 0o040000:
            self.children[g] = set()
        return g

    # ---------------------------------------------------------------- ops
    def step(self) -> None:
        rng = self.rng
        r = rng.random()
        out = self.out
        if r < 0.16:                                   # create (+ data)
            p = self.pick_dir()
            n = self.fresh_name(p)
            mode = 0o100000 | rng.choice([0o644, 0o600, 0o755, 0o664])
            g = self.new_inode(mode)
            self.add_name(p, n, g)
            ino = self.inodes[g]
            out.append(EntryRecord(g, "CREATE", p, n, mode, ino["uid"], ino["gid"]))
            if rng.random() < 0.8:
                out.append(DataRecord(g))
        elif r < 0.24:                                 # mkdir
            p = self.pick_dir()
            n = self.fresh_name(p)
            g = self.new_inode(0o40000 | rng.choice([0o755, 0o700, 0o1777]))
            self.add_name(p, n, g)
            ino = self.inodes[g]
            out.append(EntryRecord(g, "MKDIR", p, n, ino["mode"], ino["uid"], ino["gid"]))
        elif r < 0.28:                                 # mknod: fifo, device or sticky linkto
            p = self.pick_dir()
            n = self.fresh_name(p)
            kind = rng.choice(["fifo", "sticky", "sticky", "chr"])
            mode = {"fifo": 0o010644, "sticky": 0o101000, "chr": 0o020600}[kind]
            g = self.new_inode(mode)
            self.add_name(p, n, g)
            ino = self.inodes[g]
            out.append(EntryRecord(g, "MKNOD", p, n, mode, ino["uid"], ino["gid"]))
        elif r < 0.34:                                 # symlink
            p = self.pick_dir()
            n = self.fresh_name(p)
            target = "/".join(random_name(rng, self.style) for _ in range(rng.randint(1, 3)))
            g = self.new_inode(0o120777, link=target)
            self.add_name(p, n, g)
            out.append(EntryRecord(g, "SYMLINK", p, n))
        elif r < 0.39:                                 # hard link
            e = self.pick_entry(want_dir=False)
            if e is None:
                return
            p = self.pick_dir()
            n = self.fresh_name(p)
            self.add_name(p, n, e[2])
            out.append(EntryRecord(e[2], "LINK", p, n))
        elif r < 0.49:                                 # rename (maybe over an existing name)
            e = self.pick_entry()
            if e is None:
                return
            p0, n0, g = e
            p1 = self.pick_dir()
            if self.is_dir(g):
                q = p1                                 # no directory into itself
                while q != ROOT_GFID:
                    if q == g:
                        return
                    q = self.parent[q][0]
            over = None
            if not self.is_dir(g) and rng.random() < 0.3:
                cand = [k for k in self.entries if not self.is_dir(self.entries[k])]
                if cand:
                    over = rng.choice(cand)
            if over is not None and over != (p0, n0):
                p1, n1 = over
                if self.entries[over] != g:
                    self.drop_name(p1, n1)
                else:
                    return
            else:
                n1 = self.fresh_name(p1)
            self.entries.pop((p0, n0))
            self.children[p0].discard(n0)
            self.entries[(p1, n1)] = g
            self.children[p1].add(n1)
            if self.is_dir(g):
                self.parent[g] = (p1, n1)
            out.append(EntryRecord(g, "RENAME", p0, n0, pgfid1=p1, bname1=n1))
        elif r < 0.56:                                 # unlink
            e = self.pick_entry(want_dir=False)
            if e is None:
                return
            p, n, g = e
            path = self.path_of(p, n) if self.delpath else None
            self.drop_name(p, n)
            out.append(EntryRecord(g, "UNLINK", p, n, path=path))
        elif r < 0.60:                                 # rmdir of an empty directory
            empty = [g for g, kids in self.children.items() if g != ROOT_GFID and not kids]
            if not empty:
                return
            g = rng.choice(empty)
            p, n = self.parent[g]
            path = self.path_of(p, n) if self.delpath else None
            self.drop_name(p, n)
            out.append(EntryRecord(g, "RMDIR", p, n, path=path))
        elif r < 0.78:                                 # data write
            g = self.pick_live(files=True)
            if g is not None:
                out.append(DataRecord(g))
        elif r < 0.88:                                 # setattr
            g = self.pick_live()
            if g is not None:
                ino = self.inodes[g]
                ino["mode"] = (ino["mode"] & 0o170000) | rng.choice([0o644, 0o600, 0o755, 0o700])
                ino["uid"] = rng.choice([0, 1000, 2000])
                self.now += rng.random()
                ino["mtime"] = round(self.now, 6)
                if rng.random() < 0.1:
                    out.append(MetaRecord(g, "SETATTR", Stat(ino["uid"], ino["gid"], ino["mode"],
                                                             ino["atime"], ino["mtime"])))
                else:
                    out.append(MetaRecord(g, rng.choice(["SETATTR", "SETATTR", "FSETATTR"])))
        elif r < 0.96:                                 # xattr records
            g = self.pick_live()
            if g is not None:
                out.append(MetaRecord(g, rng.choice(["SETXATTR", "XATTROP", "FXATTROP",
                                                     "FSETXATTR", "REMOVEXATTR",
                                                     "FREMOVEXATTR"])))
        else:                                          # records about gone or unknown gfids
            g = rng.choice(self.dead) if self.dead and rng.random() < 0.7 else self.gfid()
            p = self.pick_dir()
            k = rng.random()
            if k < 0.3:
                out.append(DataRecord(g))
            elif k < 0.5:
                out.append(MetaRecord(g, "SETATTR"))
            elif k < 0.7:
                out.append(EntryRecord(g, "LINK", p, random_name(rng, self.style)))
            elif k < 0.85:
                out.append(EntryRecord(g, "UNLINK", p, random_name(rng, self.style)))
            else:
                out.append(EntryRecord(g, "RENAME", p, random_name(rng, self.style),
                                       pgfid1=p, bname1=random_name(rng, self.style)))

    def pick_live(self, files: bool = False) -> str | None:
        keys = list(self.inodes)
        for _ in range(10):
            g = self.rng.choice(keys)
            if not files or (self.inodes[g]["mode"] & 0o170000) == 0o100000:
                return g
        return None

    def view(self) -> MemoryView:
        inodes = {g: Stat(d["uid"], d["gid"], d["mode"], d["atime"], d["mtime"])
                  for g, d in self.inodes.items()}
        links = {g: d["link"] for g, d in self.inodes.items() if "link" in d}
        return MemoryView(inodes, dict(self.entries), links, root=ROOT_GFID)


def synth_workload(seed: int, *, ops: int = 300, changelogs: int = 6, names: str = "hostile",
                   delpath: bool | None = None, start_ts: int = 1700000000,
                   empty_ok: bool = True, quiet: int = 0) -> Workload:
    """A random workload of about ``ops`` operations in ``changelogs`` journals.

    ``quiet`` extra journals come first holding only ``D``/``M`` records (no
    entry ops), as when a brick sees only writes for a while.
    """
    rng = random.Random(seed)
    if delpath is None:
        delpath = rng.random() < 0.5
    sim = _Sim(rng, names, delpath, float(start_ts - 1000))
    for _ in range(ops):
        sim.step()
    recs = sim.out
    cuts = sorted(rng.sample(range(1, max(len(recs), changelogs + 1)), changelogs - 1)) \
        if changelogs > 1 else []
    if not empty_ok:
        cuts = sorted(set(cuts))
    bounds = [0] + cuts + [len(recs)]
    out: list[tuple[int, list[Record]]] = []
    ts = start_ts
    for _ in range(quiet):
        ts += rng.randint(1, 20)
        head: list[Record] = []
        for _ in range(rng.randint(0, 6)):
            g = ROOT_GFID if rng.random() < 0.3 else sim.gfid()
            head.append(DataRecord(g) if rng.random() < 0.6 else
                        MetaRecord(g, rng.choice(["SETATTR", "SETXATTR", "FSETATTR"])))
        out.append((ts, head))
    for i in range(changelogs):
        ts += rng.randint(1, 20)
        out.append((ts, recs[bounds[i]:bounds[i + 1]]))
    return Workload(out, sim.view())
