"""gfid-conflict resolution (``gfid-conflict-resolution``, on by default).

When entry ops come back with failures, the worker runs *fix rounds* that
compare the replica's answer with the source and send corrective ops, then
retries the original ops (spec section 3.5):

* gfid or name mismatch and the replica's gfid is gone from the source: delete
  the replica entry (RMDIR for a directory, else UNLINK), and (newest gsyncd's
  ``skip_entry``) take the MKDIR/MKNOD/CREATE/RENAME ops of that gfid out of the
  retry, or the retry would re-create the very entry just deleted (a file or
  empty directory created and renamed over in one changelog: ``echo > f;
  echo > f.tmp; mv f.tmp f``);
* the replica's gfid is still on the source under that very name: the original
  op is already satisfied, drop it;
* a directory the source has elsewhere: RENAME the replica directory to where
  the source handle says it is (or drop the op when the names already agree);
* another file mismatch: UNLINK the replica name;
* ENOENT (newest gsyncd): drop the op when its parent is gone from the source
  (a dropped RENAME leaves the gfid at its old name: the gfid's next op that
  starts from the new name starts from the old one), otherwise create the
  missing parent on the replica from the source handle.

Like the newest gsyncd, the retry loop stops early when a round neither drops
an op nor reduces the failures.

>>> from streamsync.sinks.recording import RecordingSink
>>> from streamsync.views import MemoryView
>>> resolve_conflicts(RecordingSink(), [], [], view=MemoryView())
([], [])
"""

from __future__ import annotations

import errno as E
import logging
import stat as S
from typing import Any, Sequence

from ..ops import EntryFailure, EntryOp
from ..records import ROOT_GFID

__all__ = ["resolve_conflicts", "fix_round", "MAX_OE_RETRIES", "MAX_EF_RETRIES"]

log = logging.getLogger("streamsync.conflicts")

#: times the whole entry list is retried (newest gsyncd)
MAX_OE_RETRIES = 10
#: fix rounds per retry
MAX_EF_RETRIES = 10


def _remove(ops: list[EntryOp], op: EntryOp) -> bool:
    for i, o in enumerate(ops):
        if o is op:
            del ops[i]
            return True
    try:
        ops.remove(op)
        return True
    except ValueError:
        return False


def _take_out(ops: list[EntryOp], op: EntryOp) -> None:
    """Drop ``op``; when it is a RENAME, the gfid stays at the old name, so the next
    op of that gfid that starts from the new name starts from the old one instead
    (a directory renamed into a directory that is gone, then out of it again, ends
    where the last rename says, not where the first one left it)."""
    at = next((i for i, o in enumerate(ops) if o is op), None)
    if at is None:
        _remove(ops, op)
        return
    del ops[at]
    if op.op != "RENAME" or op.pgfid1 is None:
        return
    for i in range(at, len(ops)):
        o = ops[i]
        if o.gfid == op.gfid and (o.pgfid, o.bname) == (op.pgfid1, op.bname1):
            ops[i] = o._replace(pgfid=op.pgfid, bname=op.bname)
            return


def fix_round(failures: Sequence[EntryFailure], ops: list[EntryOp], *, view: Any,
              round_no: int = 1) -> list[EntryOp]:
    """One fix round: corrective ops for ``failures``; satisfied ops are removed
    from ``ops`` in place. Returns the corrective ops to send."""
    fixes: list[EntryOp] = []
    mkdirs: set[str] = set()
    removed_gfids: set[str] = set()
    for failure in failures:
        op, err, info = failure.op, failure.errno, failure.info
        if info.name_mismatch and info.slave_entry:
            from ..ops import split_gfid_entry
            ppgfid, pbname = split_gfid_entry(info.slave_entry)
        elif info.dst and op.pgfid1 is not None:
            ppgfid, pbname = op.pgfid1, op.bname1  # type: ignore[assignment]
        else:
            ppgfid, pbname = op.pgfid, op.bname
        if info.gfid_mismatch or info.name_mismatch:
            sgfid = info.slave_gfid
            if not sgfid:
                continue
            st = view.lstat(sgfid)
            if st is None:
                log.info("Entry not present on master. Fixing gfid mismatch in slave. "
                         "Deleting the entry [{retry_count=%d}, {entry=%r}]", round_no, op)
                fixes.append(EntryOp("RMDIR" if info.slave_isdir else "UNLINK", sgfid,
                                     ppgfid, pbname))
                removed_gfids.add(sgfid)
            elif view.entry_gfid(ppgfid, pbname) == sgfid:
                log.info("Fixing gfid mismatch in slave. Safe to ignore, take out entry "
                         "[{retry_count=%d}, {entry=%r}]", round_no, op)
                _remove(ops, op)
            elif info.slave_isdir:
                loc = view.dir_entry(sgfid)
                if loc is None:
                    continue
                if loc == (ppgfid, pbname):
                    _remove(ops, op)
                else:
                    log.info("Fixing dir name/gfid mismatch in slave. Renaming "
                             "[{retry_count=%d}, {entry=%r}]", round_no, op)
                    fixes.append(EntryOp("RENAME", sgfid, ppgfid, pbname, pgfid1=loc[0],
                                         bname1=loc[1], stat=st))
            else:
                log.info("Fixing file gfid mismatch in slave. Hardlink/Rename Case. "
                         "Deleting entry [{retry_count=%d}, {entry=%r}]", round_no, op)
                fixes.append(EntryOp("UNLINK", sgfid, ppgfid, pbname))
        elif err == E.ENOENT:
            parent = op.pgfid1 if op.op == "RENAME" and op.pgfid1 else op.pgfid
            pst = view.lstat(parent)
            if pst is None:
                log.info("Fixing ENOENT error in slave. Parent does not exist on master. "
                         "Safe to ignore, take out entry [{retry_count=%d}, {entry=%r}]",
                         round_no, op)
                _take_out(ops, op)
                continue
            if parent == ROOT_GFID or parent in mkdirs:
                continue
            loc = view.dir_entry(parent)
            if loc is None or not S.S_ISDIR(pst.mode):
                continue
            mkdirs.add(parent)
            log.info("Fixing ENOENT error in slave. Create parent directory on slave. "
                     "[{retry_count=%d}, {entry=%r}]", round_no, op)
            fixes.append(EntryOp("MKDIR", parent, loc[0], loc[1], mode=pst.mode,
                                 uid=pst.uid, gid=pst.gid, stat=pst))
    if removed_gfids:
        ops[:] = [o for o in ops
                  if not (o.op in _RECREATING and o.gfid in removed_gfids)]
    return fixes


#: ops the retry must not replay for a gfid a fix round just deleted from the replica
_RECREATING = frozenset(("MKDIR", "MKNOD", "CREATE", "RENAME"))


def resolve_conflicts(sink: Any, ops: Sequence[EntryOp], failures: Sequence[EntryFailure], *,
                      view: Any, max_retries: int = MAX_OE_RETRIES,
                      max_fix_rounds: int = MAX_EF_RETRIES) -> tuple[list[EntryOp],
                                                                     list[EntryFailure]]:
    """Run fix rounds and retries until the ops apply cleanly or no progress is made.

    Returns ``(ops still wanted, remaining failures)``.
    """
    entries = list(ops)
    failures = list(failures)
    count = 0
    while failures and count < max_retries:
        count += 1
        before = (len(entries), len(failures))
        fixed = _handle_failures(sink, failures, entries, view=view,
                                 max_fix_rounds=max_fix_rounds)
        log.info("Retry original entries. count = %s", count)
        failures = sink.apply_entries(entries)
        if not failures:
            log.info("Successfully fixed all entry ops with gfid mismatch")
            break
        if not fixed and len(entries) == before[0] and len(failures) >= before[1]:
            break  # no progress in this round
    return entries, failures


def _handle_failures(sink: Any, failures: list[EntryFailure], entries: list[EntryOp], *,
                     view: Any, max_fix_rounds: int) -> int:
    """Fix rounds; returns how many corrective ops were applied cleanly.

    A corrective op can itself fail for a reason the next round fixes (a
    missing grand-parent); once a round succeeds, the earlier rounds' failed
    ops are replayed, innermost first.
    """
    pending = list(failures)
    current = entries
    rounds = 0
    applied = 0
    stack: list[list[EntryOp]] = []
    while pending and rounds < max_fix_rounds:
        rounds += 1
        fixes = fix_round(pending, current, view=view, round_no=rounds)
        if not fixes:
            break
        pending = sink.apply_entries(fixes)
        applied += len(fixes) - len(pending)
        if pending:
            stack.append([f.op for f in pending])
        current = fixes
        if not pending:
            log.info("Successfully fixed entry ops with gfid mismatch [{retry_count=%d}]",
                     rounds)
            while stack:
                again = stack.pop()
                left = sink.apply_entries(again)
                applied += len(again) - len(left)
                if left:
                    break
    for failure in pending:
        log.debug("Failed to fix entry ops %r", failure)
    return applied
