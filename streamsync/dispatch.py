"""The dispatcher: drives one batch through the sinks in the seed's order.

Per batch (design section 5, spec 3.3-3.5), for each changelog in order:

1. entry ops -> the replica (with gfid-conflict resolution when enabled);
   remaining failures whose gfid still exists on the source go to the ledger;
2. entry stime = ``ts - 1`` (only when entry ops were sent);
3. meta ops for the gfids still present on the source (fresh ``lstat``);
4. queue the data gfids (a gfid already queued in this batch is not sent again).

After the batch: wait for the data; retry only the data of failed transfers,
minus the gfids that vanished from the source, up to ``max-rsync-retries``
attempts in total; then, in one transaction, data stime = last ``ts - 1``, the
changelogs are marked done and the abandoned items (if retries ran out) are
recorded in the failure ledger. Like gsyncd the stime advances even then, but
nothing is lost silently: ``replicate --retry-failed`` re-queues the ledger.

gsyncd's log lines are kept with the same fields (``Entry Time Taken``,
``Data/Metadata Time Taken``, ``Batch Completed``, ``Sync Time Taken``).

>>> from streamsync.sinks.recording import RecordingSink, RecordingEngine
>>> from streamsync.state import SqliteState
>>> from streamsync.views import MemoryView
>>> from streamsync.ops import Batch, ChangelogPlan
>>> from streamsync.records import Changelog
>>> d = Dispatcher(sink=RecordingSink(), engine=RecordingEngine(), state=SqliteState(":memory:"),
...                view=MemoryView(), retry_delay=0)
>>> r = d.run_batch(Batch(0, (ChangelogPlan(Changelog("CHANGELOG.1700000015", 1700000015, 0)),)))
>>> d.state.data_stime()
Stime(sec=1700000014, nsec=0)
>>> d.close()
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, NamedTuple, Sequence

from .ops import Batch, ChangelogPlan, EntryFailure, EntryOp, MetaFailure, MetaOp, entry_op_from_gsyncd
from .records import Stime
from .sinks.conflicts import resolve_conflicts
from .sinks.engine import DataSyncer

__all__ = ["Dispatcher", "BatchResult"]

log = logging.getLogger("streamsync.dispatch")


def _lf(event: str, **fields: Any) -> str:
    """gsyncd's ``lf()`` log format: ``event [{k=v}, {k=v}]``."""
    return event + " [" + ", ".join("{%s=%s}" % (k, v) for k, v in fields.items()) + "]"


class BatchResult(NamedTuple):
    """What one batch did."""

    index: int
    changelogs: int
    entry_ops: int
    entry_failures: int
    meta_ops: int
    meta_failures: int
    data_files: int
    data_abandoned: int
    attempts: int
    duration: float


def _tuple(st: Stime | None) -> tuple[int, int] | None:
    return None if st is None else (st[0], st[1])


def _opt(options: Any, name: str, default: Any) -> Any:
    if options is None:
        return default
    return options.get(name)


class Dispatcher:
    """Apply batches of plans to ``sink`` (entry/meta) and ``engine`` (data),
    recording progress in ``state``; facts come from the source ``view``.

    ``archive`` (optional callable taking the batch's changelogs) runs after a
    batch is marked done, when streamsync owns the journals' directory.
    """

    def __init__(self, *, sink: Any, engine: Any, state: Any, view: Any, options: Any = None,
                 mode: str = "live_changelog", retry_delay: float = 0.5,
                 archive: Callable[[Sequence[Any]], Any] | None = None,
                 data_filter: Callable[[str], bool] | None = None,
                 sync_times: bool = True) -> None:
        self.sink = sink
        self.state = state
        self.view = view
        self.options = options
        self.mode = mode
        self.retry_delay = retry_delay
        self.archive = archive
        self.data_filter = data_filter
        self.sync_times = sync_times and hasattr(sink, "set_times")
        self.syncer = DataSyncer(engine, jobs=_opt(options, "sync-jobs", 3))
        self.max_tries = max(1, int(_opt(options, "max-rsync-retries", 10)))
        self.conflict_resolution = bool(_opt(options, "gfid-conflict-resolution", True))

    def close(self) -> None:
        self.syncer.close()

    # --------------------------------------------------------------- entries
    def _entries(self, plan: ChangelogPlan) -> tuple[int, int]:
        ops = list(plan.entry_ops)
        if not ops:
            return 0, 0
        self.state.add_status("entry", len(ops))
        failures = self.sink.apply_entries(ops)
        if failures and self.conflict_resolution:
            ops, failures = resolve_conflicts(self.sink, ops, failures, view=self.view)
        recorded = self._ledger_entries(plan, failures)
        self.state.add_status("entry", -len(plan.entry_ops))
        return len(plan.entry_ops), recorded

    def _ledger_entries(self, plan: ChangelogPlan, failures: Sequence[EntryFailure]) -> int:
        n = 0
        for f in failures:
            if self.view.lstat(f.op.gfid) is None:
                log.debug("entry failure for a gfid gone from the source: %r", f)
                continue
            log.error(_lf("ENTRY FAILED", data=repr(f.to_dict())))
            self.state.add_failure("entry", f.op.gfid, changelog=plan.changelog.name,
                                   op=f.op.to_dict(), errno=f.errno, info=f.info.to_dict())
            n += 1
        if n:
            self.state.add_status("failures", n)
        return n

    # ------------------------------------------------------------------ meta
    def _meta(self, plan: ChangelogPlan, gfids: Iterable[str]) -> tuple[int, int]:
        ops = []
        for g in gfids:
            st = self.view.lstat(g)
            if st is None:
                log.debug(_lf("file got purged in the interim", file=g))
                continue
            ops.append(MetaOp(g, st))
        if not ops:
            return 0, 0
        self.state.add_status("meta", len(ops))
        failures: list[MetaFailure] = self.sink.apply_meta(ops)
        for f in failures:
            log.error(_lf("META FAILED", data=repr(f.to_dict())))
            self.state.add_failure("meta", f.op.gfid, changelog=plan.changelog.name,
                                   errno=f.errno, info=f.what)
        if failures:
            self.state.add_status("failures", len(failures))
        self.state.add_status("meta", -len(ops))
        return len(ops), len(failures)

    # ------------------------------------------------------------------ data
    def _wanted(self, gfids: Iterable[str]) -> list[str]:
        if self.data_filter is None:
            return list(gfids)
        return [g for g in gfids if self.data_filter(g)]

    def _vanished(self, gfid: str) -> bool:
        return self.view.lstat(gfid) is None or self.view.data_path(gfid) is None

    def _sync_data(self, first_results: list[Any]) -> tuple[int, list[str]]:
        """Retry failed transfers; return (attempts, abandoned gfids)."""
        results = first_results
        tries = 1
        while True:
            failed: list[str] = []
            for r in results:
                if not r.ok:
                    failed.extend(r.gfids)
            if not failed:
                return tries, []
            retry = [g for g in dict.fromkeys(failed) if not self._vanished(g)]
            if not retry:
                return tries, []
            if tries >= self.max_tries:
                for r in results:
                    if not r.ok and r.result.stderr:
                        log.error(_lf("data transfer failed", returncode=r.result.returncode,
                                      stderr=r.result.stderr.strip()[-500:]))
                return tries, retry
            tries += 1
            if self.retry_delay:
                time.sleep(self.retry_delay)
            self.syncer.submit(retry, force=True)
            results = self.syncer.wait()

    # ----------------------------------------------------------------- batch
    def run_batch(self, batch: Batch) -> BatchResult:
        """Process one batch completely (see the module docstring)."""
        start = time.monotonic()
        plans = batch.plans
        self.syncer.new_batch()
        totals: dict[str, int] = {}
        entry_time = meta_time = 0.0
        data_start = None
        n_entry = n_efail = n_meta = n_mfail = 0
        skipped_first = skipped_last = None
        n_skipped_entries = 0
        queued: dict[str, None] = {}
        n_sent = 0
        for plan in plans:
            if plan.skipped:
                continue
            for k, v in plan.stats:
                totals[k] = totals.get(k, 0) + v
            t0 = time.monotonic()
            if plan.entries_gated:
                n_skipped_entries += 1
                skipped_first = skipped_first or plan.ts
                skipped_last = plan.ts
            elif plan.entry_ops:
                a, b = self._entries(plan)
                n_entry += a
                n_efail += b
                if self.mode in ("live_changelog", "history_changelog"):
                    st = Stime(plan.ts - 1, 0)
                    cur = self.state.entry_stime()
                    if cur is None or st > cur:
                        with self.state.transaction():
                            self.state.set_entry_stime(st)
                            self.state.set_status(last_synced_entry=st.sec)
            t1 = time.monotonic()
            entry_time += t1 - t0
            a, b = self._meta(plan, plan.meta_gfids)
            n_meta += a
            n_mfail += b
            t2 = time.monotonic()
            meta_time += t2 - t1
            if data_start is None:
                data_start = t2
            wanted = self._wanted(g for g in plan.data_gfids if g not in queued)
            for g in plan.data_gfids:
                queued[g] = None
            n_sent += len(wanted)
            if wanted:
                self.state.add_status("data", len(wanted))
                self.syncer.submit(wanted)
        attempts, abandoned = self._sync_data(self.syncer.wait())
        if self.sync_times:
            self._times(plans, queued)
        if abandoned:
            log.error(_lf("changelogs could not be processed completely - moving on...",
                          files=[p.changelog.name for p in plans]))
        last = plans[-1].changelog
        with self.state.transaction():
            for g in abandoned:
                self.state.add_failure("data", g, changelog=last.name, errno=None,
                                       info={"attempts": attempts})
            if self.mode in ("live_changelog", "history_changelog"):
                st = Stime(last.ts - 1, 0)
                cur = self.state.data_stime()
                if cur is None or st > cur:  # a batch of skipped journals never moves it back
                    self.state.set_data_stime(st)
                    self.state.set_status(last_synced=st.sec)
                self.state.set_status(data=0)
            self.state.mark_done([p.changelog for p in plans])
        if self.archive is not None:
            self.archive([p.changelog for p in plans])
        if skipped_first is not None:
            log.info(_lf("Skipping already processed entry ops", from_changelog=skipped_first,
                         to_changelog=skipped_last, num_changelogs=n_skipped_entries))
        now = time.monotonic()
        g = totals.get
        log.info(_lf("Entry Time Taken", UNL=g("UNLINK", 0), RMD=g("RMDIR", 0),
                     CRE=g("CREATE", 0), MKN=g("MKNOD", 0), MKD=g("MKDIR", 0),
                     REN=g("RENAME", 0), LIN=g("LINK", 0), SYM=g("SYMLINK", 0),
                     duration="%.4f" % entry_time))
        log.info(_lf("Data/Metadata Time Taken", SETA=g("SETATTR", 0),
                     meta_duration="%.4f" % meta_time, SETX=g("SETXATTR", 0),
                     XATT=g("XATTROP", 0), DATA=g("DATA", 0),
                     data_duration="%.4f" % (now - (data_start or now))))
        log.info(_lf("Batch Completed", mode=self.mode, duration="%.4f" % (now - start),
                     changelog_start=plans[0].ts, changelog_end=plans[-1].ts,
                     num_changelogs=len(plans), stime=_tuple(self.state.data_stime()),
                     entry_stime=_tuple(self.state.entry_stime())))
        return BatchResult(batch.index, len(plans), n_entry, n_efail, n_meta, n_mfail,
                           n_sent, len(abandoned), attempts, now - start)

    def _times(self, plans: Sequence[ChangelogPlan], data: dict[str, None]) -> None:
        """Beyond gsyncd: after the data, give the directories whose entries
        changed, and the new objects that got no data transfer (directories,
        symlinks, empty files), the source's current times, so ``verify
        --mtimes`` converges too."""
        want: dict[str, None] = {}
        for plan in plans:
            for op in plan.entry_ops:
                want[op.pgfid] = None
                if op.pgfid1 is not None:
                    want[op.pgfid1] = None
                if op.op in ("MKDIR", "SYMLINK", "MKNOD", "CREATE", "LINK", "RENAME") \
                        and op.gfid not in data:
                    want[op.gfid] = None
        items = []
        for g in want:
            st = self.view.lstat(g)
            if st is not None:
                items.append((g, st.atime, st.mtime))
        if items:
            self.sink.set_times(items)

    # ---------------------------------------------------------- retry failed
    def retry_failed(self) -> tuple[int, int]:
        """Re-queue every open ledger item; returns ``(resolved, still failing)``."""
        rows = self.state.failures()
        resolved: list[int] = []
        still = 0
        entry_rows = [r for r in rows if r.kind == "entry"]
        if entry_rows:
            ops: list[EntryOp] = [entry_op_from_gsyncd(r.op) for r in entry_rows]
            failures = self.sink.apply_entries(ops)
            if failures and self.conflict_resolution:
                _, failures = resolve_conflicts(self.sink, ops, failures, view=self.view)
            bad_keys = {(f.op.op, f.op.gfid, f.op.entry) for f in failures}
            for r, op in zip(entry_rows, ops):
                if (op.op, op.gfid, op.entry) in bad_keys and self.view.lstat(op.gfid) is not None:
                    still += 1
                else:
                    resolved.append(r.id)
        meta_rows = [r for r in rows if r.kind == "meta"]
        for r in meta_rows:
            st = self.view.lstat(r.gfid)
            if st is None or not self.sink.apply_meta([MetaOp(r.gfid, st)]):
                resolved.append(r.id)
            else:
                still += 1
        data_rows = [r for r in rows if r.kind == "data"]
        if data_rows:
            self.syncer.new_batch()
            gfids = [r.gfid for r in data_rows]
            self.syncer.submit(self._wanted(gfids), force=True)
            _, abandoned = self._sync_data(self.syncer.wait())
            left = set(abandoned)
            for r in data_rows:
                if r.gfid in left:
                    still += 1
                else:
                    resolved.append(r.id)
        self.state.resolve_failures(resolved)
        return len(resolved), still
