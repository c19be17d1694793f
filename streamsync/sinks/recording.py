"""A sink that records every call instead of touching anything.

For dry runs, notebooks and tests: it answers like a replica that accepts
every op, and keeps the calls in :attr:`RecordingSink.calls` in order.

>>> from streamsync.ops import MetaOp
>>> from streamsync.records import ROOT_GFID, Stat
>>> sink = RecordingSink()
>>> sink.apply_meta([MetaOp(ROOT_GFID, Stat(0, 0, 0o40755, 1.0, 2.0))])
[]
>>> [name for name, _ in sink.calls]
['apply_meta']
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Sequence

from .order import EntryOrder
from ..ops import EntryFailure, EntryOp, MetaFailure, MetaOp

__all__ = ["RecordingSink", "RecordingEngine"]


class RecordingSink:
    """Replica stand-in: records ``apply_entries`` / ``apply_meta`` calls.

    ``entry_failures`` (a callable ``op -> EntryFailure | None``) lets a test
    inject failures.
    """

    def __init__(self, *, entry_failures=None, meta_failures=None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._entry_failures = entry_failures
        self._meta_failures = meta_failures
        self._lock = threading.Lock()

    def _record(self, name: str, payload: Any) -> None:
        with self._lock:
            self.calls.append((name, payload))

    def apply_entries(self, ops: Iterable[EntryOp], *,
                      waiting: Iterable[EntryFailure] = ()) -> list[EntryFailure]:
        """Record the call; failures as configured (``waiting`` holds what depends
        on it, as every sink does: :mod:`streamsync.sinks.order`)."""
        ops = tuple(ops)
        self._record("apply_entries", ops)
        order = EntryOrder(waiting)
        out: list[EntryFailure] = []
        for op in ops:
            f = order.held(op)
            if f is None and self._entry_failures is not None:
                f = self._entry_failures(op)
            if f is not None:
                order.failed(f)
                out.append(f)
        return out

    def apply_meta(self, ops: Iterable[MetaOp]) -> list[MetaFailure]:
        ops = tuple(ops)
        self._record("apply_meta", ops)
        if self._meta_failures is None:
            return []
        return [f for f in map(self._meta_failures, ops) if f is not None]

    # replica-like lookups: the recording sink has no namespace of its own
    def lstat(self, gfid: str):
        return None

    def entry_gfid(self, pgfid: str, bname: str):
        return None

    def dir_entry(self, gfid: str):
        return None

    def has_handle(self, gfid: str) -> bool:
        return True

    def close(self) -> None:
        self._record("close", None)

    def of(self, name: str) -> list[Any]:
        """Payloads of every call named ``name``."""
        return [p for n, p in self.calls if n == name]


class RecordingEngine:
    """Data engine stand-in: records each transfer's gfids; returns ``returncode``
    (or the next code of ``codes`` when given)."""

    name = "recording"

    def __init__(self, codes: Sequence[int] | None = None) -> None:
        self.transfers: list[tuple[str, ...]] = []
        self._codes = list(codes or [])
        self._lock = threading.Lock()

    def transfer(self, gfids: Sequence[str]):
        from .engine import TransferResult
        with self._lock:
            self.transfers.append(tuple(gfids))
            code = self._codes.pop(0) if self._codes else 0
        return TransferResult(code, "", len(gfids))

    def is_partial(self, code: int) -> bool:
        return code in (23, 24)
