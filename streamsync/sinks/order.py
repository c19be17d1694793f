"""Entry ops apply in journal order: nothing overtakes a failed op it depends on.

The entry ops of a batch are applied in journal order. When one fails (an
immutable directory, ENOSPC, ...) it goes to the ledger; a later op that depends
on it must not be applied before it, or a retry replays them out of order:

* a later op on the **same gfid** (a directory renamed twice whose first rename
  failed would take the second rename's no-op, "source gone: nothing to do",
  and end at the first rename's target once the retry applies that one);
* a later op on a **name the failed op would have used or freed** (a CREATE of
  the name a failed RENAME was to vacate);
* a later RENAME of a directory **into or below a directory whose op failed**
  (moving a subtree under a directory that has not moved yet can put the failed
  op's target inside its own source: the retry then gets EINVAL).

Such an op is *held*: not applied, reported as a failure of its own (with the
errno of the op it waits for), and retried after it, in ledger order; what it
would have touched is held in turn. A gfid or name mismatch holds nothing: the
object is on the replica in some form and conflict resolution settles it.

Used by every sink that applies entry ops, and by the dispatcher for the open
ledger rows of earlier runs.

>>> from streamsync.ops import EntryOp
>>> order = EntryOrder()
>>> g, p = "5b1c2d3e-0000-4000-8000-00000000000a", "00000000-0000-0000-0000-000000000001"
>>> first = EntryOp("RENAME", g, p, "x", pgfid1=p, bname1="y")
>>> order.held(first) is None
True
>>> order.failed(EntryFailure(first, 28, FailureInfo()))
>>> order.held(first._replace(bname="y", bname1="z")).errno
28
>>> order.held(EntryOp("CREATE", "5b1c2d3e-0000-4000-8000-00000000000b", p, "x")).errno
28
"""

from __future__ import annotations

import stat as S
from typing import Callable, Iterable, Sequence

from ..ops import EntryFailure, EntryOp, FailureInfo

__all__ = ["EntryOrder", "create_run_end"]


class EntryOrder:
    """What later entry ops must wait for: gfids and names of failed (or held) ops."""

    __slots__ = ("_gfids", "_names")

    def __init__(self, failed: Iterable[EntryFailure] = ()) -> None:
        self._gfids: dict[str, int] = {}
        self._names: dict[tuple[str, str], int] = {}
        for f in failed:
            self.failed(f)

    def __bool__(self) -> bool:
        return bool(self._gfids)

    def held(self, op: EntryOp, ancestors: Callable[[str], Iterable[str]] | None = None
             ) -> EntryFailure | None:
        """The failure to report for ``op`` when it must wait, else ``None`` (apply it).

        ``ancestors(gfid)``: the directories above ``gfid`` on the target, when the
        caller can tell; a directory moved *below* a directory whose op failed
        waits too (not only one moved directly into it).
        """
        if not self._gfids:
            return None
        err = self._gfids.get(op.gfid)
        if err is None:
            err = self._names.get((op.pgfid, op.bname))
        if err is None and op.pgfid1 is not None:
            err = self._names.get((op.pgfid1, op.bname1 or ""))
            if err is None and op.op == "RENAME" and (op.stat is None or S.S_ISDIR(op.stat.mode)):
                err = self._gfids.get(op.pgfid1)
                if err is None and ancestors is not None:
                    err = next((self._gfids[a] for a in ancestors(op.pgfid1)
                                if a in self._gfids), None)
        if err is None:
            return None
        return EntryFailure(op, err, FailureInfo())

    def failed(self, failure: EntryFailure) -> None:
        """Note a failed (or held) op: what depends on it waits (see the module)."""
        if failure.info.gfid_mismatch or failure.info.name_mismatch:
            return
        op, err = failure.op, failure.errno
        self._gfids.setdefault(op.gfid, err)
        self._names.setdefault((op.pgfid, op.bname), err)
        if op.pgfid1 is not None:
            self._names.setdefault((op.pgfid1, op.bname1 or ""), err)


def create_run_end(ops: Sequence[EntryOp], i: int) -> int:
    """End of the run of CREATEs from ``i`` with distinct names and gfids: ops
    that may be applied in any order (a CREATE only adds a file name, and no
    CREATE makes another's parent).

    >>> c = lambda g, n: EntryOp("CREATE", g, "p", n)
    >>> create_run_end([c("a", "x"), c("b", "y"), c("a", "z"), c("d", "w")], 0)
    2
    """
    names: set[tuple[str, str]] = set()
    gfids: set[str] = set()
    j = i
    while j < len(ops):
        op = ops[j]
        if op.op != "CREATE" or op.gfid in gfids or (op.pgfid, op.bname) in names:
            break
        names.add((op.pgfid, op.bname))
        gfids.add(op.gfid)
        j += 1
    return j
