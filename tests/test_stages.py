"""One test per classification / stage rule of the seed, on the in-memory view."""

import pytest

from streamsync.ops import ChangelogPlan
from streamsync.options import Options
from streamsync.parse import parse_processed
from streamsync.pipeline import plan_records
from streamsync.records import ROOT_GFID, Changelog, DataRecord, EntryRecord, MetaRecord, Stat, Stime
from streamsync.stages import batch_plans, gate_entries, skip_processed
from streamsync.stages.fused import fused_plan
from streamsync.views import MemoryView

R = ROOT_GFID
F = "11111111-1111-4111-8111-111111111111"   # a regular file
D = "22222222-2222-4222-8222-222222222222"   # a directory
L = "33333333-3333-4333-8333-333333333333"   # a symlink
X = "44444444-4444-4444-8444-444444444444"   # gone from the source
FST = Stat(1000, 100, 0o100644, 10.5, 20.5)
DST = Stat(0, 0, 0o40755, 1.0, 2.0)
LST = Stat(5, 6, 0o120777, 3.0, 4.0)


def view(**changes):
    inodes = {F: FST, D: DST, L: LST}
    entries = {(R, "f"): F, (R, "d"): D, (D, "ln"): L, (R, "hard"): F}
    inodes.update(changes.get("inodes", {}))
    entries.update(changes.get("entries", {}))
    return MemoryView(inodes, entries, {L: "../t a"})


def plan_of(records, v=None, gated=False, **opts):
    """Plan through the composed stages and through the fused path; both must agree."""
    v = v or view()
    o = Options(**opts)
    cl = Changelog("CHANGELOG.1700000100", 1700000100, 0)
    p = plan_records(cl, records, view=v, options=o, gated=gated)
    from streamsync.parse import render_processed
    text = render_processed(records)
    q = fused_plan(cl._replace(size=len(text)), text, view=v, options=o, gated=gated)
    assert q._replace(changelog=cl) == p
    return p


def gs(p):
    return [op.to_gsyncd() for op in p.entry_ops]


def test_hot_tier_skips_entry_records():
    recs = [EntryRecord(F, "CREATE", R, "n", 0o100644, 0, 0), EntryRecord(X, "UNLINK", R, "x"),
            DataRecord(F), MetaRecord(F, "SETATTR")]
    p = plan_of(recs, hot_tier=True)
    assert p.entry_ops == () and p.data_gfids == (F,) and p.meta_gfids == (F,)
    assert p.stats_dict["CREATE"] == 0 and p.stats_dict["UNLINK"] == 0
    assert p.stats_dict["SETATTR"] == 1


def test_unlink_drops_data_queued_earlier_when_gfid_gone():
    p = plan_of([DataRecord(X), DataRecord(F), EntryRecord(X, "UNLINK", R, "x")])
    assert p.data_gfids == (F,)
    assert gs(p) == [{"op": "UNLINK", "gfid": X, "entry": f".gfid/{R}/x"}]


def test_unlink_keeps_data_when_gfid_still_exists_and_data_after_unlink_counts():
    p = plan_of([DataRecord(F), EntryRecord(F, "UNLINK", R, "hard")])
    assert p.data_gfids == (F,)
    p = plan_of([EntryRecord(X, "UNLINK", R, "x"), DataRecord(X)])
    assert p.data_gfids == (X,)      # only data queued *before* the unlink is dropped


def test_rmdir_ignored_while_directory_exists_on_source():
    p = plan_of([EntryRecord(D, "RMDIR", R, "d")])
    assert p.entry_ops == () and p.stats_dict["RMDIR"] == 1


def test_rmdir_sent_when_directory_gone():
    p = plan_of([EntryRecord(X, "RMDIR", R, "gone", path="gone")])
    assert gs(p) == [{"op": "RMDIR", "gfid": X, "entry": f".gfid/{R}/gone"}]


def test_ignore_deletes_sends_no_unlink_or_rmdir_but_keeps_data_effects():
    recs = [DataRecord(X), EntryRecord(X, "UNLINK", R, "x"), EntryRecord(X, "RMDIR", R, "y")]
    p = plan_of(recs, ignore_deletes=True)
    assert p.entry_ops == () and p.data_gfids == ()
    assert p.stats_dict["UNLINK"] == 1 and p.stats_dict["RMDIR"] == 1


def test_sticky_bit_mknod_sent_as_link_with_stat_from_line_and_data():
    p = plan_of([EntryRecord(X, "MKNOD", D, "linkto", 0o101000, 7, 8)])
    assert gs(p) == [{"op": "LINK", "gfid": X, "entry": f".gfid/{D}/linkto",
                      "stat": {"uid": 7, "gid": 8, "mode": 0o101000, "atime": 0.0,
                               "mtime": 0.0}}]
    assert "link" not in gs(p)[0]
    assert p.data_gfids == (X,) and p.stats_dict["MKNOD"] == 1


@pytest.mark.parametrize("fop,mode", [("CREATE", 0o100600), ("MKDIR", 0o40700),
                                      ("MKNOD", 0o10644)])
def test_create_mkdir_mknod_sent_with_mode_uid_gid_from_the_line(fop, mode):
    p = plan_of([EntryRecord(X, fop, R, "new name", mode, 12, 34)])
    assert gs(p) == [{"op": fop, "gfid": X, "entry": f".gfid/{R}/new name", "mode": mode,
                      "uid": 12, "gid": 34}]
    assert p.data_gfids == ()


def test_rename_carries_current_stat_and_no_link_for_files():
    p = plan_of([EntryRecord(F, "RENAME", R, "old", pgfid1=D, bname1="f")],
                view(entries={(D, "f"): F}))
    assert gs(p) == [{"op": "RENAME", "gfid": F, "entry": f".gfid/{R}/old",
                      "entry1": f".gfid/{D}/f", "stat": FST.to_dict(), "link": None}]


def test_rename_of_symlink_reads_target_through_new_name():
    p = plan_of([EntryRecord(L, "RENAME", R, "old", pgfid1=D, bname1="ln")])
    assert gs(p)[0]["link"] == "../t a" and gs(p)[0]["stat"] == LST.to_dict()


def test_rename_of_symlink_whose_new_name_is_gone_has_no_target():
    p = plan_of([EntryRecord(L, "RENAME", R, "old", pgfid1=R, bname1="moved-again")])
    assert gs(p)[0]["link"] is None and gs(p)[0]["stat"] == LST.to_dict()


def test_rename_of_gfid_gone_from_source_has_empty_stat():
    p = plan_of([EntryRecord(X, "RENAME", R, "a", pgfid1=R, bname1="b")])
    assert gs(p)[0]["stat"] == {} and gs(p)[0]["link"] is None


def test_link_sent_only_while_the_name_still_holds_the_gfid():
    v = view()
    assert gs(plan_of([EntryRecord(F, "LINK", R, "hard")], v)) == [
        {"op": "LINK", "gfid": F, "entry": f".gfid/{R}/hard", "stat": FST.to_dict(),
         "link": None}]
    assert plan_of([EntryRecord(F, "LINK", R, "f2")], v).entry_ops == ()       # name gone
    assert plan_of([EntryRecord(F, "LINK", R, "d")], v).entry_ops == ()        # other gfid
    assert plan_of([EntryRecord(X, "LINK", R, "x")], v).entry_ops == ()        # gfid gone


def test_link_of_a_symlink_carries_its_target():
    p = plan_of([EntryRecord(L, "LINK", D, "ln")])
    assert gs(p)[0]["link"] == "../t a"


def test_symlink_sent_only_when_name_holds_it_and_target_readable():
    p = plan_of([EntryRecord(L, "SYMLINK", D, "ln")])
    assert gs(p) == [{"op": "SYMLINK", "gfid": L, "entry": f".gfid/{D}/ln",
                      "stat": LST.to_dict(), "link": "../t a"}]
    # the name now holds a regular file: not sent
    assert plan_of([EntryRecord(L, "SYMLINK", R, "f")]).entry_ops == ()
    # target not readable (inode without a target): not sent
    v = MemoryView({L: LST}, {(R, "s"): L}, {})
    assert plan_of([EntryRecord(L, "SYMLINK", R, "s")], v).entry_ops == ()


def test_data_records_queue_data_once_sorted():
    p = plan_of([DataRecord(F), DataRecord(D), DataRecord(F), DataRecord(X)])
    assert p.data_gfids == tuple(sorted([F, D, X]))
    assert p.stats_dict["DATA"] == 3


def test_setattr_queues_metadata_gfids_sorted_including_gone_ones():
    p = plan_of([MetaRecord(F, "SETATTR"), MetaRecord(X, "SETATTR"), MetaRecord(F, "SETATTR"),
                 MetaRecord(D, "SETATTR", Stat(9, 9, 0o40700, 0.0, 0.0))])
    assert p.meta_gfids == tuple(sorted([F, X, D]))   # the dispatcher drops X (gone)
    assert p.data_gfids == ()


@pytest.mark.parametrize("opts,as_data", [
    ({}, True), ({"sync_method": "tarssh"}, False),
    ({"sync_xattrs": False}, True), ({"sync_acls": False}, True),
    ({"sync_xattrs": False, "sync_acls": False}, False)])
def test_xattr_records_become_data_only_with_rsync_and_xattr_or_acl_sync(opts, as_data):
    recs = [MetaRecord(F, "SETXATTR"), MetaRecord(D, "XATTROP"), MetaRecord(L, "FXATTROP"),
            MetaRecord(X, "FSETXATTR"), MetaRecord(X, "REMOVEXATTR"), MetaRecord(X, "FSETATTR")]
    p = plan_of(recs, **opts)
    assert p.data_gfids == (tuple(sorted([F, D, L])) if as_data else ())
    assert p.meta_gfids == ()


def test_fop_counters_as_the_seed_counts_them():
    recs = [EntryRecord(X, "CREATE", R, "a", 0o100644, 0, 0), DataRecord(X), DataRecord(F),
            EntryRecord(X, "UNLINK", R, "a"), MetaRecord(F, "SETXATTR"),
            MetaRecord(F, "FSETXATTR"), MetaRecord(F, "XATTROP"), MetaRecord(F, "FSETATTR"),
            MetaRecord(F, "REMOVEXATTR"), EntryRecord(F, "LINK", R, "nope")]
    s = plan_of(recs).stats_dict
    assert s["CREATE"] == 1 and s["UNLINK"] == 1 and s["LINK"] == 1
    assert s["SETXATTR"] == 2 and s["XATTROP"] == 1          # FSETXATTR counts as SETXATTR
    assert s["FSETATTR"] == 1 and s["REMOVEXATTR"] == 1      # extra names as they come
    # DATA = data items (F; X was unlinked) - SETXATTR - XATTROP, as the seed computes it
    assert s["DATA"] == 1 - 2 - 1
    for name in ("MKNOD", "MKDIR", "RMDIR", "SYMLINK", "RENAME", "SETATTR"):
        assert s[name] == 0


def test_entry_dicts_have_exactly_the_gsyncd_keys():
    recs = [EntryRecord(X, "CREATE", R, "c", 0o100644, 1, 2), EntryRecord(X, "UNLINK", R, "c"),
            EntryRecord(F, "RENAME", R, "a", pgfid1=R, bname1="f"),
            EntryRecord(F, "LINK", R, "hard"), EntryRecord(L, "SYMLINK", D, "ln"),
            EntryRecord(X, "MKNOD", R, "t", 0o101000, 0, 0)]
    keys = [sorted(d) for d in gs(plan_of(recs))]
    assert keys == [sorted(["op", "gfid", "entry", "mode", "uid", "gid"]),
                    sorted(["op", "gfid", "entry"]),
                    sorted(["op", "gfid", "entry", "entry1", "stat", "link"]),
                    sorted(["op", "gfid", "entry", "stat", "link"]),
                    sorted(["op", "gfid", "entry", "stat", "link"]),
                    sorted(["op", "gfid", "entry", "stat"])]


# ---------------------------------------------------------------- skip / gate / batch
def _cls(*tss, size=10):
    return [Changelog(f"CHANGELOG.{t}", t, size) for t in tss]


def test_skip_processed_below_data_stime_seconds():
    out = list(skip_processed(_cls(99, 100, 101), data_stime=Stime(100, 999)))
    assert [s for _, s in out] == [True, False, False]
    assert [s for _, s in skip_processed(_cls(1, 2), data_stime=None)] == [False, False]


def test_gate_entries_uses_max_of_both_stimes_and_only_when_both_known():
    recs = [EntryRecord(X, "CREATE", R, "a", 0o100644, 0, 0), EntryRecord(X, "UNLINK", R, "a"),
            EntryRecord(D, "RMDIR", R, "d"), EntryRecord(X, "MKNOD", R, "t", 0o101000, 0, 0),
            EntryRecord(F, "RENAME", R, "o", pgfid1=R, bname1="f"), DataRecord(X),
            MetaRecord(F, "SETATTR")]
    full = plan_of(recs)
    plans = [full._replace(changelog=c) for c in _cls(100, 105, 110)]
    gated = list(gate_entries(plans, entry_stime=Stime(100), data_stime=Stime(105)))
    assert [p.entries_gated for p in gated] == [True, True, False]
    assert gated[2] == plans[2]
    g = gated[0]
    assert g.entry_ops == () and g.data_gfids == full.data_gfids and g.meta_gfids == full.meta_gfids
    s = g.stats_dict
    # UNLINK/RMDIR/MKNOD are still read (and counted); the others are not
    assert (s["UNLINK"], s["RMDIR"], s["MKNOD"], s["CREATE"], s["RENAME"]) == (1, 1, 1, 0, 0)
    assert [p.entries_gated for p in gate_entries(plans, entry_stime=Stime(200),
                                                  data_stime=None)] == [False] * 3
    # gating through the fused path gives the same plan
    assert plan_of(recs, gated=True) == gated[0]._replace(changelog=plan_of(recs).changelog)


def test_batches_by_size_and_an_oversized_changelog_is_its_own_batch():
    sizes = [300, 300, 200, 900, 100, 100, 0, 1000]
    plans = [ChangelogPlan(Changelog(f"C.{i}", i, s)) for i, s in enumerate(sizes)]
    batches = list(batch_plans(plans, batch_size=800))
    assert [[p.ts for p in b.plans] for b in batches] == [[0, 1, 2], [3], [4, 5, 6], [7]]
    assert [b.index for b in batches] == [0, 1, 2, 3]


def test_skipped_changelogs_are_not_batched():
    plans = [ChangelogPlan(c, skipped=True) for c in _cls(1, 2)] + \
        [ChangelogPlan(c) for c in _cls(3, 4, size=500)]
    batches = list(batch_plans(plans, batch_size=600))
    assert [(b.index, [p.ts for p in b.plans]) for b in batches] == [(-1, [1, 2]), (0, [3]),
                                                                      (1, [4])]


def test_processed_text_and_records_plan_identically_on_escaped_names():
    text = (f"E {X} CREATE 33188 0 0 {R}/a%20b%0Ac%25d\n"
            f"E {F} RENAME {R}/x%2520y {D}/z\n").encode()
    recs = list(parse_processed(text))
    p = plan_of(recs)
    assert [d["entry"] for d in gs(p)] == [f".gfid/{R}/a b\nc%d", f".gfid/{R}/x%20y"]


def test_entry_stime_without_data_stime_gates_later_batches(tmp_path):
    """The seed's stimes move while it works: after the first batch the data stime is
    known, so later changelogs up to the entry stime are gated (until entry ops go out)."""
    from streamsync.discover import discover
    from streamsync.pipeline import plan_changelogs
    lines = {1700000010: f"D {F}\n", 1700000020: f"D {F}\n",
             1700000030: f"E {X} CREATE 33188 0 0 {R}/a\n",
             1700000040: f"E {X} CREATE 33188 0 0 {R}/b\n",
             1700000050: f"E {X} CREATE 33188 0 0 {R}/c\n"}
    for ts, text in lines.items():
        (tmp_path / f"CHANGELOG.{ts}").write_text(text)

    def gated(batch_size, es, ds=None):
        return [p.entries_gated for p in plan_changelogs(
            discover(tmp_path), view=view(), options=Options(changelog_batch_size=batch_size),
            data_stime=ds, entry_stime=es)]

    # one changelog per batch: from the second batch on, data stime = previous ts - 1
    assert gated(1, Stime(1700000040)) == [False, True, True, True, False]
    # everything in one batch: the data stime never becomes known, nothing gated
    assert gated(727040, Stime(1700000040)) == [False] * 5
    # entries sent in the first batch (10, 20, 30) move the entry stime to 29, below the
    # next changelogs, so the data stime known from the second batch on gates nothing
    sizes = [len(t.encode()) for t in lines.values()]
    assert gated(sum(sizes[:3]), Stime(1700000045)) == [False] * 5
    assert gated(sum(sizes[:2]), Stime(1700000045)) == [False, False, True, True, False]


def test_hot_tier_skip_applies_only_to_changelog_modes_not_xsync(tmp_path):
    from streamsync.discover import discover
    from streamsync.pipeline import plan_changelogs
    (tmp_path / "XSYNC-CHANGELOG.1700000001").write_text(f"E {X} MKDIR 16877 0 0 {R}/d\n")
    (tmp_path / "CHANGELOG.1700000002").write_text(f"E {X} MKDIR 16877 0 0 {R}/e\n")
    plans = list(plan_changelogs(discover(tmp_path), view=view(), options=Options(hot_tier=True),
                                 data_stime=None, entry_stime=None))
    assert [p.changelog.kind for p in plans] == ["xsync", "live"]
    assert [len(p.entry_ops) for p in plans] == [1, 0]
