"""The failure ledger, read as an operator reads it.

:func:`ledger_rows` turns a worker state's ledger rows into :class:`LedgerRow`
values: when, the journal, the kind and op, the gfid and its path on the source
brick (when the brick still has it), the errno by name and text, what the
object is still owed (entry, data, meta: every open kind of its gfid) and the
attempts. :func:`forget` marks rows resolved without applying them (the
operator's decision, e.g. after repairing by hand).

>>> import tempfile, os
>>> from streamsync.state import SqliteState
>>> p = os.path.join(tempfile.mkdtemp(), "s.sqlite")
>>> st = SqliteState(p); _ = st.add_failure("data", "5b1c2d3e-0000-4000-8000-00000000000a",
...     changelog="CHANGELOG.1795467001", errno=28); st.close()
>>> [(r.kind, r.errno_name, r.owed) for r in ledger_rows(p)]
[('data', 'ENOSPC', ('data',))]
"""

from __future__ import annotations

import errno as E
import os
from typing import Any, Iterable, NamedTuple

from .errors import StateError
from .records import GFID_PREFIX

__all__ = ["LedgerRow", "ledger_rows", "forget", "KINDS"]

#: the ledger's kinds, in the order a retry applies them
KINDS = ("entry", "data", "meta")


class LedgerRow(NamedTuple):
    """One ledger row as shown to a person (``resolved`` is ``None`` while open)."""

    id: int
    first_seen: float
    changelog: str | None
    kind: str
    op: str | None
    gfid: str
    path: str | None
    errno: int | None
    errno_name: str
    errno_text: str
    owed: tuple[str, ...]
    attempts: int
    resolved: float | None
    state: str

    def to_dict(self) -> dict[str, Any]:
        return self._asdict() | {"owed": list(self.owed)}


def _errno_parts(err: int | None) -> tuple[str, str]:
    if err is None:
        return "retries-exhausted", "the transfer failed every retry"
    return E.errorcode.get(err, str(err)), os.strerror(err)


def _resolver(source: str | None):
    if not source or not os.path.isdir(os.path.join(source, ".glusterfs")):
        return None
    from .analysis.resolve import Resolver
    return Resolver(brick=source)


def ledger_rows(state_path: str, *, include_resolved: bool = False, since: float | None = None,
                kinds: Iterable[str] = (), ops: Iterable[str] = (),
                errnos: Iterable[int] = ()) -> list[LedgerRow]:
    """The ledger rows of the state at ``state_path`` (open ones unless
    ``include_resolved``), oldest first, filtered by first-seen time, kind, entry
    op and errno; paths resolved through the state's source brick."""
    from .state.sqlite import SqliteState
    if not os.path.isfile(state_path):
        raise StateError(f"{state_path}: no such state file")
    st = SqliteState(state_path)
    try:
        rows = st.failures(include_resolved=include_resolved)
        opened = st.failures() if include_resolved else rows
        source = st.status().get("source")
    finally:
        st.close()
    owed: dict[str, set[str]] = {}
    for r in opened:
        owed.setdefault(r.gfid, set()).add(r.kind)
    kinds, ops, errnos = set(kinds), {o.upper() for o in ops}, set(errnos)
    resolver = _resolver(source)
    named = _names_in_ops(rows)
    out = []
    for r in rows:
        op = r.op.get("op") if isinstance(r.op, dict) else None
        if (since is not None and r.first_seen < since) or (kinds and r.kind not in kinds) \
                or (ops and op not in ops) or (errnos and r.errno not in errnos):
            continue
        name, text = _errno_parts(r.errno)
        path = None
        if resolver is not None:
            p = resolver.path(r.gfid)
            if p.startswith(GFID_PREFIX) and r.gfid in named:  # (no gfid2path xattrs)
                p = resolver.path_of(*named[r.gfid])
            path = None if p.startswith(GFID_PREFIX) else p
        out.append(LedgerRow(r.id, r.first_seen, r.changelog, r.kind, op, r.gfid, path,
                             r.errno, name, text,
                             tuple(k for k in KINDS if k in owed.get(r.gfid, ())), r.attempts,
                             r.resolved, state_path))
    return out


def _names_in_ops(rows: Iterable[Any]) -> dict[str, tuple[str, str]]:
    """``gfid -> (pgfid, name)`` from the entry ops of ledger rows (a RENAME's target)."""
    out: dict[str, tuple[str, str]] = {}
    for r in rows:
        if not isinstance(r.op, dict):
            continue
        entry = r.op.get("entry1") or r.op.get("entry")
        if isinstance(entry, str) and entry.startswith(GFID_PREFIX):
            pgfid, sep, name = entry[len(GFID_PREFIX):].partition("/")
            if sep and name:
                out.setdefault(r.gfid, (pgfid, name))
    return out


def forget(state_path: str, ids: Iterable[int]) -> int:
    """Mark the open rows ``ids`` resolved without applying them; how many."""
    from .state.sqlite import SqliteState
    ids = list(ids)
    st = SqliteState(state_path)
    try:
        open_ids = {r.id for r in st.failures()}
        chosen = [i for i in ids if i in open_ids]
        st.resolve_failures(chosen)
    finally:
        st.close()
    return len(chosen)
