"""Pipeline entry points: corpus (raw and processed), independent seed model,
property tests (hypothesis), composition with toolz and dask."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seed_model import model_run
from streamsync.cli.plan import entry_op_json
from streamsync.discover import discover
from streamsync.errors import ParseError
from streamsync.options import Options
from streamsync.parse import render_processed
from streamsync.pipeline import batch_plans, load_changelog, plan_changelogs
from streamsync.records import ROOT_GFID, Changelog, Stime, name_from_json
from streamsync.stages import classify, gate_entries, plan, skip_processed
from streamsync.synth import synth_workload
from streamsync.views import MemoryView
from conftest import handles

DATA = os.path.join(os.path.dirname(__file__), "data", "gluster-10.3")
SCENARIOS = ["ascii-delpath-on", "ascii-delpath-off"]


def corpus_view(scenario):
    """The brick namespace at the end of the corpus workload, from handles/<scenario>.tsv."""
    modes = {"d": 0o40755, "f": 0o100644, "l": 0o120777, "p": 0o10644}
    rows = handles(scenario)
    gof = {".": ROOT_GFID}
    inodes, links, entries = {}, {}, {}
    from streamsync.records import Stat
    for g, k, p in rows:
        inodes[g] = Stat(0, 0, modes[k], 1.0, 2.0)
        if k == "l":
            links[g] = "target"
        if p != ".":
            gof[p] = g
    for g, k, p in rows:
        if p != ".":
            entries[(gof[os.path.dirname(p) or "."], os.path.basename(p))] = g
    return MemoryView(inodes, entries, links)


def rows_of(plans, view, batch_size):
    """CLI-shaped rows (names as str) from plans."""
    out = []
    for b in batch_plans(plans, batch_size=batch_size):
        for p in b.plans:
            ops = []
            for op in p.entry_ops:
                d = entry_op_json(op)
                for k in ("entry", "entry1", "link"):
                    if isinstance(d.get(k), dict):
                        d[k] = name_from_json(d[k])
                ops.append(d)
            metas = [{"op": "META", "go": ".gfid/" + g, "stat": view.lstat(g).to_dict()}
                     for g in p.meta_gfids if view.lstat(g) is not None]
            out.append({"changelog": p.changelog.name, "ts": p.ts,
                        "batch": None if b.index < 0 else b.index, "skipped": p.skipped,
                        "entries_gated": p.entries_gated, "entry_ops": ops, "meta_ops": metas,
                        "data": [".gfid/" + g for g in p.data_gfids],
                        "stats": {} if p.skipped else dict(p.stats)})
    return out


def _model_input(cdir):
    out = []
    for cl in discover(cdir):
        with open(cl.path, "rb") as fh:
            out.append((cl.name, cl.ts, fh.read()))
    return out


# ---------------------------------------------------------------- real corpus
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_corpus_plans_match_the_seed_model(scenario):
    view = corpus_view(scenario)
    cdir = os.path.join(DATA, "processed", scenario)
    opts = Options(changelog_batch_size=20000)
    ours = rows_of(plan_changelogs(discover(cdir), view=view, options=opts, data_stime=None,
                                   entry_stime=None), view, 20000)
    model = model_run(_model_input(cdir), view, {"changelog-batch-size": 20000})
    assert len(ours) == len(model) > 20
    for a, b in zip(ours, model):
        assert a == b, a["changelog"]
    assert sum(len(r["entry_ops"]) for r in ours) > 1000
    assert len({r["batch"] for r in ours}) > 2


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_raw_and_processed_journals_give_identical_plans_and_batches(scenario):
    view = corpus_view(scenario)
    raw = [c for c in discover(os.path.join(DATA, "raw", scenario))]
    proc = list(discover(os.path.join(DATA, "processed", scenario)))
    # libgfchangelog publishes no processed file for an empty journal
    names = {c.name for c in proc}
    raw = [c for c in raw if c.name in names]
    assert len(raw) == len(proc)
    kw = dict(view=view, options=Options(), data_stime=None, entry_stime=None)
    a = list(plan_changelogs(raw, **kw))
    b = list(plan_changelogs(proc, **kw))
    assert [p.changelog.size for p in a] == [p.changelog.size for p in b]
    assert [p._replace(changelog=None) for p in a] == [p._replace(changelog=None) for p in b]
    sizes = [len(render_processed(load_changelog(c)[1])) for c in raw[:5]]
    assert sizes == [c.size for c in proc[:5]]
    for bs in (3000, 50000):
        ba = [[p.ts for p in x.plans] for x in batch_plans(a, batch_size=bs)]
        bb = [[p.ts for p in x.plans] for x in batch_plans(b, batch_size=bs)]
        assert ba == bb and len(ba) > 1


def test_corpus_with_stimes_skips_and_gates():
    view = corpus_view("ascii-delpath-on")
    cls = list(discover(os.path.join(DATA, "processed", "ascii-delpath-on")))
    ds, es = Stime(cls[5].ts), Stime(cls[10].ts)
    plans = list(plan_changelogs(cls, view=view, options=Options(), data_stime=ds,
                                 entry_stime=es))
    assert [p.skipped for p in plans] == [c.ts < ds.sec for c in cls]
    assert [p.entries_gated for p in plans] == [ds.sec <= c.ts <= es.sec for c in cls]
    assert all(p.entry_ops == () for p in plans if p.skipped or p.entries_gated)
    model = model_run(_model_input(os.path.join(DATA, "processed", "ascii-delpath-on")), view,
                      {}, data_stime=ds, entry_stime=es)
    assert rows_of(plans, view, 727040) == model


def test_parse_error_names_file_and_line(tmp_path):
    good = f"D {ROOT_GFID}\n"
    (tmp_path / "CHANGELOG.1700000001").write_text(good + good + "D not-a-gfid\n" + good)
    for fused in (True, False):
        with pytest.raises(ParseError) as exc:
            list(plan_changelogs(discover(tmp_path), view=MemoryView(), options=Options(),
                                 data_stime=None, entry_stime=None, fused=fused))
        assert exc.value.line == 3 and "CHANGELOG.1700000001" in str(exc.value)


# ---------------------------------------------------------------- properties
def _plans(w, tmp, opts, ds=None, es=None, fused=True, prefetch=True):
    cdir, _ = w.write(tmp)
    return list(plan_changelogs(discover(cdir), view=w.state, options=opts, data_stime=ds,
                                entry_stime=es, fused=fused, prefetch=prefetch))


_opts = st.builds(lambda i, t, x, a, h, b: Options(ignore_deletes=i, sync_method=t,
                                                   sync_xattrs=x, sync_acls=a, hot_tier=h,
                                                   changelog_batch_size=b),
                  st.booleans(), st.sampled_from(["rsync", "tarssh"]), st.booleans(),
                  st.booleans(), st.booleans(), st.sampled_from([50, 700, 4000, 727040]))
_settings = settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@_settings
@given(seed=st.integers(0, 10**6), opts=_opts, names=st.sampled_from(["plain", "hostile", "all"]))
def test_fused_staged_and_seed_model_agree_on_random_workloads(tmp_path_factory, seed, opts,
                                                               names):
    tmp = tmp_path_factory.mktemp("w")
    w = synth_workload(seed, ops=120, changelogs=4, names=names)
    tss = [ts for ts, _ in w.changelogs]
    ds = Stime(tss[1]) if seed % 3 else None
    es = Stime(tss[2]) if seed % 2 else None
    fused = _plans(w, tmp, opts, ds, es)
    staged = _plans(w, tmp, opts, ds, es, fused=False, prefetch=False)
    assert fused == staged
    model = model_run(_model_input(os.path.join(tmp, "changelogs")), w.state, {
        "ignore-deletes": opts.ignore_deletes, "sync-method": opts.sync_method,
        "sync-xattrs": opts.sync_xattrs, "sync-acls": opts.sync_acls,
        "changelog-batch-size": opts.changelog_batch_size},
        data_stime=ds, entry_stime=es, hot_tier=opts.hot_tier)
    assert rows_of(fused, w.state, opts.changelog_batch_size) == model


@_settings
@given(seed=st.integers(0, 10**6))
def test_plans_are_deterministic(tmp_path_factory, seed):
    w = synth_workload(seed, ops=80, changelogs=3)
    a = _plans(w, tmp_path_factory.mktemp("a"), Options())
    b = _plans(synth_workload(seed, ops=80, changelogs=3), tmp_path_factory.mktemp("b"),
               Options())
    assert [p._replace(changelog=p.changelog.name) for p in a] == \
        [p._replace(changelog=p.changelog.name) for p in b]


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 3000), max_size=40), limit=st.integers(1, 5000),
       skipped=st.lists(st.booleans(), max_size=40))
def test_batching_never_exceeds_the_limit_except_a_single_oversized_changelog(sizes, limit,
                                                                              skipped):
    from streamsync.ops import ChangelogPlan
    plans = [ChangelogPlan(Changelog(f"C.{i}", i, s), skipped=i < len(skipped) and skipped[i])
             for i, s in enumerate(sizes)]
    batches = list(batch_plans(plans, batch_size=limit))
    kept = [p for b in batches for p in b.plans]
    assert sorted(p.ts for p in kept) == list(range(len(sizes)))   # nothing lost
    real = [b for b in batches if b.index >= 0]
    assert [b.index for b in real] == list(range(len(real)))
    for b in real:
        total = sum(p.changelog.size for p in b.plans)
        assert total <= limit or len(b.plans) == 1
        assert not any(p.skipped for p in b.plans)
    # order of non-skipped changelogs is kept, and consecutive batches could not be merged
    flat = [p.ts for b in real for p in b.plans]
    assert flat == sorted(flat)
    for x, y in zip(real, real[1:]):
        assert sum(p.changelog.size for p in x.plans) + y.plans[0].changelog.size > limit


@_settings
@given(seed=st.integers(0, 10**6), cut=st.integers(0, 3), extra=st.integers(-2, 2))
def test_gating_only_ever_removes_entry_ops(tmp_path_factory, seed, cut, extra):
    w = synth_workload(seed, ops=100, changelogs=4)
    tss = [ts for ts, _ in w.changelogs]
    tmp = tmp_path_factory.mktemp("g")
    free = _plans(w, tmp, Options(), Stime(tss[0]), None)
    gated = _plans(w, tmp, Options(), Stime(tss[0]), Stime(tss[cut] + extra))
    assert len(free) == len(gated)
    for a, b in zip(free, gated):
        assert (a.data_gfids, a.meta_gfids, a.skipped) == (b.data_gfids, b.meta_gfids, b.skipped)
        if b.entries_gated:
            assert b.entry_ops == ()
            assert all(b.stats_dict[k] <= a.stats_dict[k] for k in a.stats_dict)
        else:
            assert a == b


# ---------------------------------------------------------------- composition
def test_stages_compose_with_toolz_and_dask(tmp_path):
    import dask.bag as db
    from toolz import pipe
    from toolz.curried import map as cmap

    w = synth_workload(7, ops=200, changelogs=6)
    cdir, _ = w.write(tmp_path)
    opts = Options()
    cls = list(discover(cdir))
    reference = list(plan_changelogs(cls, view=w.state, options=opts, data_stime=Stime(cls[1].ts),
                                     entry_stime=Stime(cls[3].ts)))

    def load(pairs):
        for cl, skipped in pairs:
            if not skipped:
                yield load_changelog(cl)

    piped = pipe(cls,
                 lambda xs: skip_processed(xs, data_stime=Stime(cls[1].ts)),
                 load,
                 lambda xs: classify(xs, view=w.state, options=opts),
                 plan,
                 lambda xs: gate_entries(xs, entry_stime=Stime(cls[3].ts),
                                         data_stime=Stime(cls[1].ts)),
                 list)
    assert piped == [p for p in reference if not p.skipped]
    assert pipe(cls, cmap(lambda c: c.ts), list) == [c.ts for c in cls]

    def part(items):
        return list(plan(classify(load(skip_processed(items, data_stime=None)),
                                  view=w.state, options=opts)))

    bag = db.from_sequence(cls, npartitions=3).map_partitions(part)
    out = bag.compute(scheduler="sync")
    full = list(plan_changelogs(cls, view=w.state, options=opts, data_stime=None,
                                entry_stime=None))
    assert sorted(out, key=lambda p: p.ts) == full
    # stages and their values survive pickling (process pools, distributed)
    import pickle
    assert pickle.loads(pickle.dumps(full)) == full
    assert pickle.loads(pickle.dumps(plan)) is plan


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10**6), cuts=st.lists(st.tuples(st.integers(0, 10**6),
                                                           st.sampled_from(
        ["", " ", "  ", "\n", "\n\n", "x", "/", ".", "..", "%", "9", "99999999999", "4294967296",
         "\x00", "\r", "\t", "-", "a", "SETATTR", " SETATTR", " 1 2 3 4.5 6", "E ", "D ",
         "M ", "CREATE", "RENAME", "00000000-0000-0000-0000-000000000001", "/.", "/..",
         "é", "\udcff"])), min_size=1, max_size=4))
def test_fused_path_agrees_with_the_strict_parser_on_damaged_journals(seed, cuts):
    """Random damage to valid journals: the fused path raises exactly the parser's
    error (same line) or, when the text is still valid, plans exactly as the stages."""
    from streamsync.pipeline import plan_records
    from streamsync.parse import parse_processed
    from streamsync.stages.fused import fused_plan
    w = synth_workload(seed, ops=30, changelogs=1, names="hostile")
    text = render_processed(w.changelogs[0][1]).decode("utf-8", "surrogateescape")
    for pos, junk in cuts:
        i = pos % (len(text) + 1)
        if pos % 2:
            text = text[:i] + junk + text[i:]
        else:
            text = text[:i] + junk + text[i + len(junk):]
    data = text.encode("utf-8", "surrogateescape")
    cl = Changelog("CHANGELOG.1700000001", 1700000001, len(data))
    opts = Options()
    try:
        recs = list(parse_processed(data, path=cl.path))
    except ParseError as exc:
        with pytest.raises(ParseError) as got:
            fused_plan(cl, data, view=w.state, options=opts)
        assert (got.value.line, got.value.message) == (exc.line, exc.message)
        return
    assert fused_plan(cl, data, view=w.state, options=opts) == \
        plan_records(cl, recs, view=w.state, options=opts)
