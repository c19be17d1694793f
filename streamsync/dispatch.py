"""The dispatcher: drives one batch through the sinks in the seed's order.

Per batch (design section 5, spec 3.3-3.5), for each changelog in order:

1. entry ops -> the replica (with gfid-conflict resolution when enabled);
   remaining failures whose gfid still exists on the source go to the ledger;
2. entry stime = ``ts - 1`` (only when entry ops were sent);
3. meta ops for the gfids still present on the source (fresh ``lstat``);
4. queue the data gfids (a gfid already queued in this batch is not sent again).
   A sink that makes files on threads and reports them as it goes (a volume:
   ``on_created``) has their data started during step 1, as each chunk of
   CREATEs is done; the files are data targets by then.

A large file the batch's last journal still changes is *held* instead of sent
(:mod:`streamsync.hold`): kept in the state with the batch, sent once it stops
changing (a later batch, or :meth:`Dispatcher.send_held` when the worker is
idle), and the data stime stops before its first held journal meanwhile.

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

import collections
import errno
import logging
import os
import stat as S
import threading
import time
from typing import Any, Callable, Iterable, NamedTuple, Sequence

from .ops import (Batch, ChangelogPlan, EntryFailure, EntryOp, FailureInfo, MetaFailure, MetaOp,
                  entry_op_from_gsyncd)
from .deletelimit import DeleteLimit, batch_deletes
from .hold import Held, HoldRule, held_from_json, held_to_json, stime_floor
from .errors import DeleteLimitExceeded
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
    data_bytes: int = 0
    #: hot files whose data waits after this batch (:mod:`streamsync.hold`)
    held: int = 0


def _errname(err: int | None) -> str:
    if err is None:
        return "retries-exhausted"
    return errno.errorcode.get(err, str(err))


def _tuple(st: Stime | None) -> tuple[int, int] | None:
    return None if st is None else (st[0], st[1])


def _opt(options: Any, name: str, default: Any) -> Any:
    if options is None:
        return default
    return options.get(name)


#: dispatch modes that move the stimes (and so may hold hot files back)
_STIME_MODES = ("live_changelog", "history_changelog")

#: entry ops whose failure leaves a name on the replica that the source no longer has
_REMOVES_A_NAME = frozenset({"UNLINK", "RMDIR", "RENAME"})


class _Behind:
    """The sink, every ``apply_entries`` call of which also waits behind ``waiting``
    (also the calls conflict resolution makes)."""

    def __init__(self, sink: Any, waiting: list[EntryFailure]) -> None:
        self._sink, self._waiting = sink, waiting

    def apply_entries(self, ops: Iterable[EntryOp]) -> list[EntryFailure]:
        return self._sink.apply_entries(ops, waiting=self._waiting)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)


def _failure_info(info: Any) -> FailureInfo:
    """The :class:`FailureInfo` of a ledger row's info dict (mismatch flags only)."""
    if not isinstance(info, dict):
        return FailureInfo()
    return FailureInfo(gfid_mismatch=bool(info.get("gfid_mismatch")),
                       name_mismatch=bool(info.get("name_mismatch")))


class _Holding:
    """The hold decisions of one batch: which data gfids wait (the rule is
    :class:`~streamsync.hold.HoldRule`; sizes and ctimes from ``stat``)."""

    def __init__(self, rule: HoldRule | None, held: dict[str, Held], hot: frozenset[str],
                 now: float, stat: Callable[[str], tuple[int, int] | None]) -> None:
        self.rule, self.held, self.hot, self.now, self._stat = rule, held, hot, now, stat
        #: what stays held after this batch
        self.keep: dict[str, Held] = {}

    def pass_through(self, gfids: Iterable[str], ts: int) -> list[str]:
        """``gfids`` minus those held (recorded in :attr:`keep`, as of journal ``ts``)."""
        out: list[str] = []
        for g in gfids:
            if g in self.keep:
                continue
            if self.rule is not None and g in self.hot:
                st = self._stat(g)
                prev = self.held.get(g)
                if st is not None and self.rule.hold(size=st[0], hot=True, held=prev,
                                                     now=self.now):
                    self.keep[g] = (Held(self.now, ts, st[1]) if prev is None
                                    else prev._replace(ctime=st[1]))
                    continue
            out.append(g)
        return out


def _owed(rows: Iterable[Any], made: Iterable[str]) -> dict[str, list[Any]]:
    """Open ledger rows by gfid, then the gfids a re-applied entry op now owes
    (no row of their own yet: an empty list)."""
    out: dict[str, list[Any]] = {}
    for r in rows:
        out.setdefault(r.gfid, []).append(r)
    for g in made:
        out.setdefault(g, [])
    return out


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
                 data_filter_many: Callable[[Sequence[str]], Sequence[bool]] | None = None,
                 sync_times: bool = True,
                 source_objects: Callable[[], int] | None = None,
                 allow_deletes_until: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.sink = sink
        self.state = state
        self.view = view
        self.options = options
        self.mode = mode
        self.retry_delay = retry_delay
        self.archive = archive
        #: which gfids the replica can take bytes for; asked for many at once (a
        #: volume asks them concurrently), one by one when only ``data_filter`` is given
        self._targets: Callable[[Sequence[str]], Iterable[bool]] | None = (
            data_filter_many or (data_filter and (lambda gs: map(data_filter, gs))))
        self.sync_times = sync_times and hasattr(sink, "set_times")
        self.syncer = DataSyncer(engine, jobs=_opt(options, "sync-jobs", 3))
        self.max_tries = max(1, int(_opt(options, "max-rsync-retries", 10)))
        self.conflict_resolution = bool(_opt(options, "gfid-conflict-resolution", True))
        #: the journals of the batch being (or last) applied, for a Faulty reason
        self.current: str | None = None
        #: failures recorded since the last :meth:`failure_summary`, by (kind, errno)
        self.failed: collections.Counter[tuple[str, int | None]] = collections.Counter()
        #: ``max-deletes``: a batch deleting more is refused (:mod:`streamsync.deletelimit`)
        self.delete_limit = DeleteLimit.parse(_opt(options, "max-deletes", ""))
        self.source_objects = source_objects or (lambda: 0)
        #: batches ending at or before this journal stamp pass the limit (--allow-deletes)
        self.allow_deletes_until = allow_deletes_until
        #: when a hot large file's data waits (:mod:`streamsync.hold`); ``None``: never
        self.hold = HoldRule.from_options(options)
        self.clock = clock
        #: where journals and files done are reported (:mod:`streamsync.progress`)
        self.progress: Any = None
        self._pending_bytes: dict[str, int] = {}
        self._plock = threading.Lock()

    def set_progress(self, progress: Any) -> None:
        """Report journals applied and files landed, during each batch, to
        ``progress`` (a :class:`~streamsync.progress.Progress`; ``None``: nothing)."""
        self.progress = progress
        self.syncer.on_landed(None if progress is None else self._landed)

    def _send(self, gfids: Sequence[str], sent: list[str], *, force: bool = False) -> None:
        """Send the data of ``gfids`` in this batch: counted in ``sent`` and the
        status, then queued."""
        if gfids:
            sent.extend(gfids)
            self.state.add_status("data", len(gfids))
            self._queue(gfids, force=force)

    def _queue(self, gfids: Sequence[str], *, force: bool = False) -> None:
        """Hand ``gfids`` to the data syncer (and their sizes to the progress)."""
        if self.progress is not None:
            sizes = {g: self._size_of((g,)) for g in gfids}
            with self._plock:
                fresh = {g: n for g, n in sizes.items() if g not in self._pending_bytes}
                self._pending_bytes.update(fresh)
            self.progress.queued(len(fresh), sum(fresh.values()))
        self.syncer.submit(gfids, force=force)

    def _landed(self, gfids: Sequence[str]) -> None:
        with self._plock:
            sizes = [self._pending_bytes.pop(g) for g in gfids if g in self._pending_bytes]
        if sizes:
            self.progress.sent(len(sizes), sum(sizes))

    def _note(self, kind: str, err: int | None, gfid: str, changelog: str | None,
              detail: Any = None) -> None:
        """Count a recorded failure; its detail is an INFO line (``-v``), the
        per-batch :meth:`failure_summary` is what a user sees by default."""
        self.failed[(kind, err)] += 1
        log.info(_lf(f"{kind.upper()} FAILED", gfid=gfid, changelog=changelog,
                     errno=_errname(err), data=repr(detail) if detail is not None else None))

    def failure_summary(self) -> str | None:
        """One line for the failures noted since the last call (then reset), e.g.
        ``3 failures recorded in the ledger: entry EEXIST 2, data ENOENT 1``."""
        if not self.failed:
            return None
        parts = ", ".join(f"{k} {_errname(e)} {n}" for (k, e), n in sorted(
            self.failed.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1] or 0)))
        total = sum(self.failed.values())
        self.failed.clear()
        return (f"{total} failure{'s' if total != 1 else ''} recorded in the ledger: {parts} "
                f"(details: -v; re-queue: --retry-failed)")

    def close(self) -> None:
        self.syncer.close()

    # --------------------------------------------------------------- entries
    def _entries(self, plan: ChangelogPlan, *,
                 early: Callable[[list[str]], None] | None = None,
                 fill: Callable[[str, int], None] | None = None) -> tuple[int, int]:
        ops = list(plan.entry_ops)
        if not ops:
            return 0, 0
        self.state.add_status("entry", len(ops))
        waiting = self._waiting()
        sink = _Behind(self.sink, waiting) if waiting else self.sink
        hooked = early is not None and hasattr(self.sink, "on_created")
        if hooked:
            self.sink.on_created = early
        if fill is not None:
            self.sink.fill = fill
        try:
            failures = sink.apply_entries(ops)
        finally:
            if hooked:
                self.sink.on_created = None
            if fill is not None:
                self.sink.fill = None
        if failures and self.conflict_resolution:
            ops, failures = resolve_conflicts(sink, ops, failures, view=self.view)
        recorded = self._ledger_entries(plan, failures)
        self.state.add_status("entry", -len(plan.entry_ops))
        return len(plan.entry_ops), recorded

    def _early_data(self, plan: ChangelogPlan, queued: dict[str, None], sent: list[str],
                    holding: _Holding | None) -> Callable[[list[str]], None] | None:
        """For a sink that makes files on threads and says so as it goes (a volume):
        start the data of this changelog's files as soon as their CREATE is done,
        while the rest of its entry ops are still being applied. Each file made is
        a data target by construction; one removed again before its bytes land is
        missed, then found gone from the source (or retried), as after a batch."""
        if not plan.data_gfids or not hasattr(self.sink, "on_created"):
            return None
        want = {g for g in plan.data_gfids if g not in queued}

        def created(gfids: list[str]) -> None:
            go = [g for g in gfids if g in want and g not in queued]
            queued.update(dict.fromkeys(go))
            self._send(go if holding is None else holding.pass_through(go, plan.ts), sent)
        return created

    def _filling(self, plan: ChangelogPlan, queued: dict[str, None],
                 filled: dict[str, int]) -> Callable[[str, int], None] | None:
        """For a sink that can hand over each regular file it creates, open (a local
        replica's ``fill``) and a data engine that copies small files in-process:
        write the bytes of this changelog's new small files into them as they are
        created, in the same pass (one open of each instead of two, no second
        walk to the handle). What was written goes into ``filled`` with its size
        (on the sink's threads); anything else is sent after the entries, as usual."""
        fill = getattr(self.syncer.engine, "fill", None)
        if fill is None or not plan.data_gfids or not hasattr(self.sink, "fill"):
            return None
        want = {g for g in plan.data_gfids if g not in queued}

        progress = self.progress

        def hook(gfid: str, fd: int) -> None:
            if gfid in want:
                n = fill(gfid, fd)
                if n is not None:
                    filled[gfid] = n
                    if progress is not None:  # told as each lands (thread-safe)
                        progress.queued(1, n)
                        progress.sent(1, n)
        return hook

    def _took_filled(self, filled: dict[str, int], queued: dict[str, None], sent: list[str],
                     sizes: dict[str, int]) -> None:
        """Files whose bytes landed with their CREATE: sent and delivered as any."""
        queued.update(dict.fromkeys(filled))
        sent.extend(filled)
        sizes.update(filled)

    def _waiting(self) -> list[EntryFailure]:
        """The open entry rows of earlier batches: the sink holds what depends on
        them (see :mod:`streamsync.sinks.order`), so nothing overtakes them."""
        if not self.state.count_failures("entry"):
            return []
        return [EntryFailure(entry_op_from_gsyncd(r.op), r.errno or errno.EAGAIN,
                             _failure_info(r.info))
                for r in self.state.failures("entry") if isinstance(r.op, dict)]

    def _ledger_entries(self, plan: ChangelogPlan, failures: Sequence[EntryFailure]) -> int:
        # a failed op of a gfid gone from the source since is moot (as gsyncd
        # counts them) unless it left a name behind: a failed UNLINK, RMDIR or
        # RENAME did (a failed create leaves nothing: the sink undoes it)
        n = 0
        for f in failures:
            if f.op.op not in _REMOVES_A_NAME and self.view.lstat(f.op.gfid) is None:
                log.debug("entry failure for a gfid gone from the source: %r", f)
                continue
            self.state.add_failure("entry", f.op.gfid, changelog=plan.changelog.name,
                                   op=f.op.to_dict(), errno=f.errno, info=f.info.to_dict())
            self._note("entry", f.errno, f.op.gfid, plan.changelog.name, f.to_dict())
            n += 1
        if n:
            self.state.add_status("failures", n)
        return n

    # ------------------------------------------------------------------ meta
    def _meta(self, plan: ChangelogPlan, gfids: Iterable[str], later: dict[str, str]
              ) -> tuple[int, int]:
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
        for f in failures:  # nothing there yet: looked at again at the end of the batch
            if f.errno == errno.ENOENT:
                later.setdefault(f.op.gfid, plan.changelog.name)
        self._ledger_meta(plan.changelog.name, [f for f in failures if f.errno != errno.ENOENT])
        bad = {f.op.gfid for f in failures}
        self._delivered("meta", [op.gfid for op in ops if op.gfid not in bad])
        self.state.add_status("meta", -len(ops))
        return len(ops), len(failures)

    def _owe_made(self, changelog: str, gfids: Sequence[str]) -> None:
        """Ledger the data of files a LINK/RENAME just made empty; the row resolves
        when the data is delivered (this batch, normally). A crash or a fatal
        transfer error before then leaves it for ``--retry-failed``: no later
        journal has a D record for those bytes."""
        with self.state.transaction():
            for g in gfids:
                self.state.add_failure("data", g, changelog=changelog, errno=None,
                                       info={"owed": "data", "reason": "made from the "
                                             "source's stat by LINK/RENAME (source name gone)"})

    def _take_made(self) -> list[str]:
        """Regular files the sink just made from a stat (LINK/RENAME whose source
        name was gone: new, empty); a sink that cannot tell makes none."""
        take = getattr(self.sink, "take_made", None)
        return list(take()) if take is not None else []

    def _meta_again(self, later: dict[str, str]) -> int:
        """Apply the meta ops that found no object once more (the batch's later entry
        ops may have made it); ledger what still fails. Returns how many took."""
        ops = [MetaOp(g, st) for g in later if (st := self.view.lstat(g)) is not None]
        failures: list[MetaFailure] = self.sink.apply_meta(ops) if ops else []
        by_gfid = {f.op.gfid: f for f in failures}
        for f in failures:
            self._ledger_meta(later[f.op.gfid], [f])
        self._delivered("meta", [op.gfid for op in ops if op.gfid not in by_gfid])
        return len(ops) - len(failures)

    def _delivered(self, kind: str, gfids: Sequence[str]) -> None:
        """A later batch applied these: their open ``kind`` rows are resolved."""
        resolve = getattr(self.state, "resolve_delivered", None)
        if resolve is not None and gfids:
            resolve(kind, gfids)

    def _ledger_meta(self, changelog: str | None, failures: Sequence[MetaFailure]) -> None:
        for f in failures:
            self.state.add_failure("meta", f.op.gfid, changelog=changelog, errno=f.errno,
                                   info=f.what)
            self._note("meta", f.errno, f.op.gfid, changelog, f.to_dict())
        if failures:
            self.state.add_status("failures", len(failures))

    # ------------------------------------------------------------------ data
    def _split_wanted(self, gfids: Iterable[str]) -> tuple[list[str], list[str]]:
        """``(to send, owed)``: what the replica can take now, and the regular
        files of the source it has no file for (its entry failed, or it was
        swapped on the replica). What is neither is a documented no-op: the
        gfid is gone from the source, or is not a regular file there."""
        send, absent = self._split_targets(gfids)
        owed: list[str] = []
        for g in absent:
            st = self.view.lstat(g)
            if st is not None and S.S_ISREG(st.mode):
                owed.append(g)
        return send, owed

    def _split_targets(self, gfids: Iterable[str]) -> tuple[list[str], list[str]]:
        """``(data targets, not)`` of ``gfids`` on the replica (all targets when the
        dispatcher was given no filter)."""
        gfids = list(gfids)
        if self._targets is None:
            return gfids, []
        send: list[str] = []
        absent: list[str] = []
        for g, target in zip(gfids, self._targets(gfids)):
            (send if target else absent).append(g)
        return send, absent

    def _ledger_owed_data(self, changelog: str, gfids: Sequence[str]) -> None:
        with self.state.transaction():
            for g in gfids:
                self.state.add_failure("data", g, changelog=changelog, errno=errno.ENOENT,
                                       info={"owed": "data", "reason": "no regular file on "
                                             "the replica (its entry op failed?)"})
            self.state.add_status("failures", len(gfids))
        for g in gfids:
            self._note("data", errno.ENOENT, g, changelog)

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
                    failed.extend(r.failed)
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
                    elif not r.ok:
                        log.error(_lf("data transfer left files out", returncode=0,
                                      missed=len(r.result.missed)))
                return tries, retry
            tries += 1
            if self.retry_delay:
                time.sleep(self.retry_delay)
            self.syncer.submit(retry, force=True)
            results = self.syncer.wait()

    # ----------------------------------------------------------------- batch
    def _check_deletes(self, batch: Batch) -> None:
        """Refuse a batch over ``max-deletes`` before anything of it is applied."""
        last = batch.plans[-1].ts
        if self.delete_limit is None or (self.allow_deletes_until is not None
                                         and last <= self.allow_deletes_until):
            return
        why = self.delete_limit.exceeded(batch_deletes(batch), objects=self.source_objects)
        if why is None:
            return
        set_note = getattr(self.state, "set_note", None)
        if set_note is not None:
            set_note("deletes_refused", last)
        raise DeleteLimitExceeded(
            f"batch {self.current} would delete {why} on the secondary: nothing of it "
            f"was applied; look at it (streamsync plan), then let it through with "
            f"'streamsync replicate --allow-deletes'")

    def run_batch(self, batch: Batch) -> BatchResult:
        """Process one batch completely (see the module docstring)."""
        start = time.monotonic()
        plans = batch.plans
        if plans:  # what a failure of this batch names (status, failures)
            first, last = plans[0].changelog.name, plans[-1].changelog.name
            self.current = first if first == last else f"{first}..{last}"
            self._check_deletes(batch)
        self.syncer.new_batch()
        holding = self._holding(plans)
        totals: dict[str, int] = {}
        entry_time = meta_time = 0.0
        data_start = None
        n_entry = n_efail = n_meta = n_mfail = 0
        skipped_first = skipped_last = None
        n_skipped_entries = 0
        queued: dict[str, None] = {}
        sizes: dict[str, int] = {}        # gfid -> bytes, known without a stat
        n_owed = 0
        sent: list[str] = []
        later_data: dict[str, str] = {}   # gfid -> changelog: no file for it yet
        later_meta: dict[str, str] = {}   # gfid -> changelog: its meta op found nothing
        remade: dict[str, str] = {}       # gfid -> changelog: a new empty file, bytes owed
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
                filled: dict[str, int] = {}
                a, b = self._entries(plan, early=self._early_data(plan, queued, sent, holding),
                                     fill=self._filling(plan, queued, filled))
                if filled:
                    self._took_filled(filled, queued, sent, sizes)
                n_entry += a
                n_efail += b
                made = self._take_made()
                if made:  # owed from now on: kept in the ledger before the entry stime moves
                    self._owe_made(plan.changelog.name, made)
                    for g in made:
                        remade.setdefault(g, plan.changelog.name)
                if self.sync_times:  # before the entry stime passes this journal: a run
                    # resuming after a crash gates its entry ops and never sees them again
                    self._times(plan, queued)
                if self.mode in ("live_changelog", "history_changelog"):
                    st = Stime(plan.ts - 1, 0)
                    cur = self.state.entry_stime()
                    if cur is None or st > cur:
                        with self.state.transaction():
                            self.state.set_entry_stime(st)
                            self.state.set_status(last_synced_entry=st.sec)
            t1 = time.monotonic()
            entry_time += t1 - t0
            a, b = self._meta(plan, plan.meta_gfids, later_meta)
            n_meta += a
            n_mfail += b
            t2 = time.monotonic()
            meta_time += t2 - t1
            if data_start is None:
                data_start = t2
            fresh = [g for g in plan.data_gfids if g not in queued]
            if holding is not None:
                fresh = holding.pass_through(fresh, plan.ts)
            wanted, owed = self._split_wanted(fresh)
            for g in plan.data_gfids:
                queued[g] = None
            for g in owed:  # a later journal of the batch may still make the file
                later_data.setdefault(g, plan.changelog.name)
            self._send(wanted, sent)
        # a second look once every entry op of the batch is in: a file unlinked and
        # made again by a later RENAME (source gone: created from its stat) is there
        # now, as it is when gsyncd's data phase runs after all entries
        if holding is not None:  # held before, not held again: their turn
            n_owed += self._send_due([g for g in holding.held
                                      if g not in holding.keep and g not in queued],
                                     holding.held, sent)
        if later_meta:
            n_mfail -= self._meta_again(later_meta)
        if remade:  # sent again even if this batch sent it before: that was another inode
            wanted, owed = self._split_wanted(remade)
            n_owed += len(owed)  # their rows are in the ledger already
            self._send(wanted, sent, force=True)
            for g in remade:
                later_data.pop(g, None)
        if later_data:
            wanted, owed = self._split_wanted(later_data)
            for g in owed:
                self._ledger_owed_data(later_data[g], [g])
            n_owed += len(owed)
            self._send(wanted, sent)
        attempts, abandoned = self._sync_data(self.syncer.wait())
        n_bytes = 0
        if sent:
            lost = set(abandoned)
            delivered = [g for g in sent if g not in lost]
            self._delivered("data", delivered)
            n_bytes = sum(sizes.get(g, 0) for g in delivered) + \
                self._size_of([g for g in delivered if g not in sizes])
        if abandoned:
            log.error(_lf("changelogs could not be processed completely - moving on...",
                          files=[p.changelog.name for p in plans]))
        last = plans[-1].changelog
        with self.state.transaction():
            self._ledger_abandoned(abandoned, lambda g: last.name, attempts)
            if self.mode in _STIME_MODES:
                st = Stime(last.ts - 1, 0)
                if holding is not None:  # every byte up to the stime is on the secondary
                    st = self._keep_held(holding.keep, st)
                self._advance_data_stime(st)
                self.state.set_status(data=0)
            self.state.mark_done([p.changelog for p in plans])
        if self.archive is not None:
            self.archive([p.changelog for p in plans])
        if self.progress is not None:
            with self._plock:  # what never landed (gone from the source, or ledgered)
                left, self._pending_bytes = self._pending_bytes, {}
            if left:  # leaves the totals: the bar ends at what was sent
                self.progress.queued(-len(left), -sum(left.values()))
            self.progress.journal_done(len(plans))
        summary = self.failure_summary()
        if summary:
            log.warning("batch %d (%s..%s): %s", batch.index, plans[0].changelog.name,
                        last.name, summary)
        if holding is not None and holding.keep:
            log.info(_lf("Holding hot files", files=len(holding.keep),
                         stime=_tuple(self.state.data_stime()),
                         until="they stop changing (hot-file-size, hot-file-max-wait)"))
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
                           len(sent), len(abandoned) + n_owed, attempts, now - start, n_bytes,
                           len(holding.keep) if holding is not None else 0)

    # ------------------------------------------------------------- hot files
    def _held(self) -> dict[str, Held]:
        """The files whose data is held (:mod:`streamsync.hold`), from the state."""
        note = getattr(self.state, "note", None)
        return held_from_json(note("held")) if note is not None else {}

    def _holding(self, plans: Sequence[ChangelogPlan]) -> _Holding | None:
        """This batch's hold decisions (``None``: nothing held, nothing to hold)."""
        if self.mode not in _STIME_MODES or not plans or not hasattr(self.state, "set_note"):
            return None
        held = self._held()
        if self.hold is None and not held:
            return None
        hot = frozenset(plans[-1].data_gfids) if self.hold is not None else frozenset()
        return _Holding(self.hold, held, hot, self.clock(), self._size_ctime)

    def _size_ctime(self, gfid: str) -> tuple[int, int] | None:
        """``(size, st_ctime_ns)`` of a regular file of the source, else ``None``."""
        path = self.view.data_path(gfid)
        try:
            st = os.stat(path) if path is not None else None
        except OSError:
            return None
        return (st.st_size, st.st_ctime_ns) if st is not None and S.S_ISREG(st.st_mode) else None

    def _send_due(self, gfids: Sequence[str], held: dict[str, Held], sent: list[str]) -> int:
        """Send held files whose turn came; those the replica has no file for are
        owed in the ledger. Returns how many were owed."""
        if not gfids:
            return 0
        wanted, owed = self._split_wanted(gfids)
        for g in owed:
            self._ledger_owed_data(f"CHANGELOG.{held[g].ts}", [g])
        self._send(wanted, sent)
        return len(owed)

    def _keep_held(self, keep: dict[str, Held], st: Stime) -> Stime:
        """Store what stays held (inside the batch's closing transaction) and
        return the data stime it allows instead of ``st``."""
        self.state.set_note("held", held_to_json(keep) if keep else None)
        self.state.set_note("held_stime", st.sec if keep else None)
        floor = stime_floor(keep)
        return st if floor is None or floor >= st.sec else Stime(floor, 0)

    def send_held(self, *, idle: bool = True) -> int:
        """Send the held files (all of them with ``idle=False``; else those that
        did not change since they were held, or waited ``hot-file-max-wait``),
        then move the data stime as far as what stays held allows. For a worker
        with no new journal (``idle``) and at the end of a one-shot run. Returns
        how many files were sent or ledgered.

        >>> from streamsync.sinks.recording import RecordingSink, RecordingEngine
        >>> from streamsync.state import SqliteState
        >>> from streamsync.views import MemoryView
        >>> d = Dispatcher(sink=RecordingSink(), engine=RecordingEngine(),
        ...                state=SqliteState(":memory:"), view=MemoryView())
        >>> d.send_held()
        0
        """
        held = self._held()
        if not held or not hasattr(self.state, "set_note"):
            return 0
        now = self.clock()
        go = [g for g, h in held.items()
              if not idle or self.hold is None
              or self.hold.release_when_idle(h, ctime=(self._size_ctime(g) or (0, None))[1],
                                             now=now)]
        if not go:
            return 0
        self.syncer.new_batch()
        sent: list[str] = []
        self._send_due(go, held, sent)
        attempts, abandoned = self._sync_data(self.syncer.wait()) if sent else (1, [])
        lost = set(abandoned)
        self._delivered("data", [g for g in sent if g not in lost])
        gone = set(go)
        keep = {g: h for g, h in held.items() if g not in gone}
        target = self.state.note("held_stime")
        with self.state.transaction():
            self._ledger_abandoned(abandoned, lambda g: f"CHANGELOG.{held[g].ts}", attempts)
            if target is not None:
                self._advance_data_stime(self._keep_held(keep, Stime(int(target), 0)))
            else:
                self.state.set_note("held", held_to_json(keep) if keep else None)
        log.info(_lf("Sent held files", files=len(go), still_held=len(keep),
                     stime=_tuple(self.state.data_stime())))
        return len(go)

    def _ledger_abandoned(self, gfids: Iterable[str], changelog: Callable[[str], str],
                          attempts: int) -> None:
        """Ledger the data that ran out of transfer attempts (inside the closing
        transaction), each under ``changelog(gfid)``."""
        for g in gfids:
            self.state.add_failure("data", g, changelog=changelog(g), errno=None,
                                   info={"attempts": attempts})
            self._note("data", None, g, changelog(g))

    def _advance_data_stime(self, st: Stime) -> None:
        """Move the data stime (and ``last_synced``) to ``st``, never back: a batch
        of skipped journals, or what stays held, cannot lower it."""
        cur = self.state.data_stime()
        if cur is None or st > cur:
            self.state.set_data_stime(st)
            self.state.set_status(last_synced=st.sec)

    def _size_of(self, gfids: Sequence[str]) -> int:
        """Bytes the source holds for ``gfids`` now (what a transfer moved, for
        the metrics; a file gone since counts 0)."""
        return sum((self._size_ctime(g) or (0, 0))[0] for g in gfids)

    def _times(self, plan: ChangelogPlan, queued: dict[str, None]) -> None:
        """Beyond gsyncd: once a journal's entry ops are applied (and before the
        entry stime moves past it), give the directories whose entries changed,
        and the new objects whose data no transfer brings (directories, symlinks,
        empty files), the source's current times, so ``verify --mtimes``
        converges too; a file with data gets its times with its bytes."""
        data = plan.data_gfids
        want: dict[str, None] = {}
        for op in plan.entry_ops:
            want[op.pgfid] = None
            if op.pgfid1 is not None:
                want[op.pgfid1] = None
            if op.op in ("MKDIR", "SYMLINK", "MKNOD", "CREATE", "LINK", "RENAME") \
                    and op.gfid not in queued and op.gfid not in data:
                want[op.gfid] = None
        self._set_source_times(want)

    def _set_source_times(self, gfids: Iterable[str]) -> None:
        """Give ``gfids`` the source's current times (those still on the source)."""
        items = []
        for g in gfids:
            st = self.view.lstat(g)
            if st is not None:
                items.append((g, st.atime, st.mtime))
        if items:
            self.sink.set_times(items)

    # ---------------------------------------------------------- retry failed
    def retry_failed(self, ids: Iterable[int] | None = None) -> tuple[int, int]:
        """Re-queue every open ledger item (only the rows ``ids`` when given);
        returns ``(resolved, still failing)``.

        In the order an object needs them: entry ops first (in ledger order), then
        the data and then the metadata of every gfid that is owed either (its own
        row, or an entry op just re-applied: a re-created file is empty until its
        data arrives), then the times. A row is resolved when its item was applied
        or became moot (the gfid is gone from the source); one that still fails
        stays open with its attempt count bumped. Nothing is resolved on the
        strength of a filter: data the replica still cannot take stays owed.
        """
        rows = self.state.failures()
        if ids is not None:
            wanted = set(ids)
            rows = [r for r in rows if r.id in wanted]
        resolved: list[int] = []
        still: list[Any] = []
        entry_rows = [r for r in rows if r.kind == "entry"]
        data_rows = [r for r in rows if r.kind == "data"]
        meta_rows = [r for r in rows if r.kind == "meta"]
        made: dict[str, None] = {}   # gfids whose entry op was re-applied
        parents: dict[str, None] = {}
        if entry_rows:
            ops: list[EntryOp] = [entry_op_from_gsyncd(r.op) for r in entry_rows]
            failures = self.sink.apply_entries(ops)
            if failures and self.conflict_resolution:
                _, failures = resolve_conflicts(self.sink, ops, failures, view=self.view)
            bad = {(f.op.op, f.op.gfid, f.op.entry): f for f in failures}
            for r, op in zip(entry_rows, ops):
                gone = self.view.lstat(op.gfid) is None
                f = bad.get((op.op, op.gfid, op.entry))
                # a name the replica still holds is owed even once the gfid is gone
                if f is not None and (not gone or op.op in _REMOVES_A_NAME):
                    still.append((r, f.errno))
                    continue
                resolved.append(r.id)
                if not gone and op.op not in ("UNLINK", "RMDIR"):
                    made[op.gfid] = None
                    for p in (op.pgfid, op.pgfid1):
                        if p is not None:
                            parents[p] = None
        data_owed = _owed(data_rows, made)
        candidates: list[str] = []
        for g, owed in data_owed.items():
            st = self.view.lstat(g)
            if st is None or not S.S_ISREG(st.mode) or self.view.data_path(g) is None:
                resolved.extend(r.id for r in owed)  # moot: nothing to send
                continue
            candidates.append(g)
        send, absent = self._split_targets(candidates)
        for g in absent:
            self._still_data(g, data_owed[g], errno.ENOENT, still)
        if send:
            self.syncer.new_batch()
            self.syncer.submit(send, force=True)
            _, abandoned = self._sync_data(self.syncer.wait())
            left = set(abandoned)
            for g in send:
                if g in left:
                    self._still_data(g, data_owed[g], None, still)
                else:
                    resolved.extend(r.id for r in data_owed[g])
        meta_owed = _owed(meta_rows, made)
        mops: list[MetaOp] = []
        for g, owed in meta_owed.items():
            st = self.view.lstat(g)
            if st is None:
                resolved.extend(r.id for r in owed)
            else:
                mops.append(MetaOp(g, st))
        if mops:
            mfails = {f.op.gfid: f for f in self.sink.apply_meta(mops)}
            for op in mops:
                f = mfails.get(op.gfid)
                if f is None:
                    resolved.extend(r.id for r in meta_owed[op.gfid])
                elif meta_owed[op.gfid]:
                    still.extend((r, f.errno) for r in meta_owed[op.gfid])
                else:  # owed by a re-applied entry, failed: now a row of its own
                    self._ledger_meta(None, [f])
        if self.sync_times and (made or parents):
            self._set_source_times(dict.fromkeys([*made, *parents]))
        with self.state.transaction():
            self.state.resolve_failures(resolved)
            for r, err in still:
                self.state.add_failure(r.kind, r.gfid, changelog=r.changelog, op=r.op,
                                       errno=err, info=r.info)
        return len(resolved), len(still)

    def _still_data(self, gfid: str, owed: list[Any], err: int | None, still: list[Any]) -> None:
        if owed:
            still.extend((r, err) for r in owed)
        else:  # owed by a re-applied entry: a row of its own
            self._ledger_owed_data("(retry)", [gfid])
