"""Seeded generator of large synthetic journals (raw and processed) for benchmarks.

The fop mix follows the real corpus workload: mostly file creates with their
data and attribute records, some directories, hard links, symlinks, renames
and deletes, with a sprinkling of hostile names (spaces, newlines, ``%``,
UTF-8). Records are namespace-consistent (every name is created before it is
renamed or removed). Nothing generated is committed: call :func:`make_records`.

>>> recs = make_records(1000, seed=1)
>>> len(recs) >= 1000
True
"""

from __future__ import annotations

import random
import uuid

from streamsync.records import DataRecord, EntryRecord, MetaRecord, Record

ROOT = "00000000-0000-0000-0000-000000000001"
_ODD = ["with space", "new\nline", "100%20sure%", "caf\u00e9", "tab\tname", "\u6587\u4ef6"]


def _gfid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_records(n: int, *, seed: int = 0) -> list[Record]:
    """At least ``n`` records of a plausible workload, deterministic for a seed."""
    rng = random.Random(seed)
    dirs = [ROOT]
    files: list[tuple[str, str, str]] = []  # (gfid, pgfid, name)
    out: list[Record] = []
    k = 0
    while len(out) < n:
        k += 1
        roll = rng.random()
        parent = rng.choice(dirs)
        name = f"f{k}" if rng.random() > 0.02 else f"{rng.choice(_ODD)}{k}"
        if roll < 0.05 or len(dirs) < 4:
            g = _gfid(rng)
            out.append(EntryRecord(g, "MKDIR", parent, f"d{k}", 16877, 0, 0))
            out.append(MetaRecord(g, "SETATTR"))
            dirs.append(g)
        elif roll < 0.70 or not files:
            g = _gfid(rng)
            out.append(EntryRecord(g, "CREATE", parent, name, 33188, 0, 0))
            out.append(DataRecord(g))
            if rng.random() < 0.3:
                out.append(MetaRecord(g, "SETATTR"))
            files.append((g, parent, name))
        elif roll < 0.78:
            g, _, _ = rng.choice(files)
            out.append(EntryRecord(g, "LINK", parent, f"h{k}"))
        elif roll < 0.83:
            out.append(EntryRecord(_gfid(rng), "SYMLINK", parent, f"s{k}"))
        elif roll < 0.90:
            i = rng.randrange(len(files))
            g, p, old = files[i]
            out.append(EntryRecord(g, "RENAME", p, old, pgfid1=parent, bname1=f"r{k}"))
            files[i] = (g, parent, f"r{k}")
        elif roll < 0.96:
            g, p, old = files.pop(rng.randrange(len(files)))
            out.append(EntryRecord(g, "UNLINK", p, old))
        else:
            g, _, _ = rng.choice(files)
            out.append(DataRecord(g))
            out.append(MetaRecord(g, "SETXATTR"))
    return out
