"""Shared fixtures: the bundled real GlusterFS 10.3 corpus (``tests/data/gluster-10.3``)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest


def pytest_configure(config):
    """Worker state and locks a test does not place itself (a volume target's
    default ``$XDG_STATE_HOME/streamsync``) go to a directory of this run, never
    into the home of whoever runs the suite; removed at the end."""
    import tempfile
    config._streamsync_xdg = tempfile.mkdtemp(prefix="streamsync-test-state-")
    config._streamsync_xdg_before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = config._streamsync_xdg


def pytest_unconfigure(config):
    import shutil
    before = getattr(config, "_streamsync_xdg_before", None)
    if before is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = before
    shutil.rmtree(getattr(config, "_streamsync_xdg", ""), ignore_errors=True)

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "gluster-10.3"
SCENARIOS = ("ascii-delpath-on", "ascii-delpath-off", "binary-delpath-on", "binary-delpath-off")
ASCII_SCENARIOS = SCENARIOS[:2]
BINARY_SCENARIOS = SCENARIOS[2:]


def raw_journals(scenario: str) -> list[Path]:
    """Raw ``CHANGELOG.<ts>`` files of a corpus scenario, in stamp order."""
    return sorted((CORPUS / "raw" / scenario).glob("CHANGELOG.*"),
                  key=lambda p: int(p.name.split(".")[1]))


def processed_journals(scenario: str) -> list[Path]:
    """libgfchangelog's processed files of a corpus scenario, in stamp order."""
    return sorted((CORPUS / "processed" / scenario).glob("CHANGELOG.*"),
                  key=lambda p: int(p.name.split(".")[1]))


def handles(scenario: str) -> list[tuple[str, str, str]]:
    """``(gfid, type, path)`` rows of ``handles/<scenario>.tsv`` with names unescaped."""
    rows = []
    table = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
    for line in (CORPUS / "handles" / f"{scenario}.tsv").read_text("utf-8").splitlines():
        gfid, kind, path = line.split("\t")
        out, i = [], 0
        while i < len(path):
            two = path[i:i + 2]
            if two in table:
                out.append(table[two])
                i += 2
            else:
                out.append(path[i])
                i += 1
        rows.append((gfid, kind, "".join(out)))
    return rows


@pytest.fixture(scope="session")
def corpus() -> Path:
    assert CORPUS.is_dir(), "tests/data/gluster-10.3 is missing"
    return CORPUS


def handle_paths(scenario: str) -> dict[str, set[str]]:
    """gfid -> every path it has in ``handles/<scenario>.tsv`` (hard links give several)."""
    out: dict[str, set[str]] = {}
    for gfid, _kind, path in handles(scenario):
        out.setdefault(gfid, set()).add(path)
    return out


DEMO_BRICK = Path(__file__).parent.parent / "examples" / "demo-brick"


def demo_manifest_paths() -> dict[str, set[str]]:
    """gfid -> every path the GlusterFS mount showed for the demo brick (its manifest)."""
    import json
    out: dict[str, set[str]] = {}
    with open(DEMO_BRICK / "demo.manifest.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            out.setdefault(d["gfid"], set()).add(d["path"])
    return out


def replayed_namespace(journals) -> set[tuple[str, str]]:
    """``(gfid, path)`` of every name left after applying the journals' entry records
    to an empty namespace (POSIX rules: a rename replaces what the new name held).

    An independent oracle for decoders: written here, not with streamsync's code.
    Asserts that every create takes a free name and every removal names its gfid.
    """
    from streamsync.decode import decode_file
    from streamsync.records import ROOT_GFID, EntryRecord
    names: dict[tuple[str, str], str] = {}
    for raw in journals:
        for r in decode_file(raw):
            if not isinstance(r, EntryRecord):
                continue
            key = (r.pgfid, r.bname)
            if r.fop in ("CREATE", "MKDIR", "MKNOD", "SYMLINK", "LINK"):
                assert key not in names, (raw.name, r)
                names[key] = r.gfid
            elif r.fop in ("UNLINK", "RMDIR"):
                assert names.pop(key) == r.gfid, (raw.name, r)
            elif r.fop == "RENAME":
                assert names.pop(key) == r.gfid, (raw.name, r)
                names[(r.pgfid1, r.bname1)] = r.gfid
    parent = {gfid: key for key, gfid in names.items()}

    def path_of(pgfid: str, bname: str) -> str:
        parts = [bname]
        while pgfid != ROOT_GFID:
            pgfid, up = parent[pgfid]
            parts.append(up)
        return "/".join(reversed(parts))

    return {(gfid, path_of(*key)) for key, gfid in names.items()}


@contextlib.contextmanager
def tmpfs(where, options: str = "size=16m"):
    """A tmpfs mounted on ``where`` (made if missing) for the block, unmounted
    after it; the test is skipped, with the reason, where none can be mounted."""
    os.makedirs(where, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)

