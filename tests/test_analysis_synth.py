"""Property tests on random workloads (streamsync.synth): the simulator's final
namespace is the oracle for path resolution, change listings and churn; any split
of the journals merges to the whole."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from streamsync.analysis.changes import list_changes
from streamsync.analysis.resolve import JournalNamespace, Resolver
from streamsync.analysis.summary import Summary, merge, summarize
from streamsync.records import ROOT_GFID, Changelog
from streamsync.synth import synth_workload


_NEW = {"CREATE", "MKNOD", "MKDIR", "SYMLINK"}


def _without_unknown_gfid_noise(changelogs):
    """The simulator also journals LINK/RENAME/UNLINK records of gfids it never created
    or already deleted, with random names (to exercise a worker's "purged in the
    interim" paths); a brick never writes those, and a random name can coincide with
    a live one. They are dropped with plain bookkeeping (names per gfid, who holds a
    name): a LINK needs a live gfid, a RENAME/UNLINK a name its gfid holds."""
    names: dict[str, set] = {}
    holder: dict[tuple, str] = {}

    def take(g, name):
        v = holder.get(name)
        if v is not None and v != g:
            names[v].discard(name)
        holder[name] = g
        names.setdefault(g, set()).add(name)

    out = []
    for ts, recs in changelogs:
        kept = []
        for r in recs:
            if r.TYPE == "E":
                name = (r.pgfid, r.bname)
                if r.fop in _NEW:
                    take(r.gfid, name)
                elif r.fop == "LINK":
                    if not names.get(r.gfid):
                        continue
                    take(r.gfid, name)
                elif r.fop == "RENAME":
                    if name not in names.get(r.gfid, ()):
                        continue
                    names[r.gfid].discard(name)
                    holder.pop(name, None)
                    take(r.gfid, (r.pgfid1, r.bname1))
                else:  # UNLINK, RMDIR
                    if name not in names.get(r.gfid, ()):
                        continue
                    names[r.gfid].discard(name)
                    holder.pop(name, None)
            kept.append(r)
        out.append((ts, kept))
    return out


def _pairs(w):
    return [(Changelog(f"CHANGELOG.{ts}", ts, 0), recs) for ts, recs in w.changelogs]


def _final_paths(view) -> dict[str, set[str]]:
    """Every gfid's paths from the simulator's own namespace (entries + directory links)."""
    def dir_path(g, depth=0):
        if g == ROOT_GFID:
            return ""
        p, b = view.dir_entry(g)
        parent = dir_path(p, depth + 1)
        return b if not parent else f"{parent}/{b}"

    out: dict[str, set[str]] = {}
    for (p, b), g in view.entries.items():
        parent = dir_path(p)
        out.setdefault(g, set()).add(b if not parent else f"{parent}/{b}")
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), names=st.sampled_from(["plain", "hostile", "all"]))
def test_journal_replay_resolves_the_final_namespace(seed, names):
    w = synth_workload(seed, ops=120, changelogs=5, names=names)
    ns = JournalNamespace()
    for _, recs in _without_unknown_gfid_noise(w.changelogs):
        ns.feed(recs)
    r = Resolver(namespace=ns)
    expected = _final_paths(w.state)
    assert {g: set(r.paths(g)) for g in expected} == expected
    # every inode the simulator still has holds a name in the replay
    assert set(expected) <= set(ns.names)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_whole_history_lists_the_final_namespace_as_new(seed):
    w = synth_workload(seed, ops=120, changelogs=5, names="hostile")
    w = w._replace(changelogs=_without_unknown_gfid_noise(w.changelogs))
    rows = list_changes(_pairs(w))
    final = _final_paths(w.state)
    expected = {p for ps in final.values() for p in ps}
    # the simulator also journals LINK/RENAME of inodes it already deleted (records a
    # processing worker must survive); only rows of inodes that exist are compared
    new = [c.path for c in rows if c.kind == "NEW" and c.gfid in final]
    assert len(new) == len(set(new)) and set(new) == expected
    assert {c.kind for c in rows if c.gfid in final} <= {"NEW", "MODIFY"}
    assert all(c.path == "." for c in rows if c.kind == "MODIFY" and c.gfid in final)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), cuts=st.lists(st.integers(0, 8), max_size=4),
       bucket=st.sampled_from([1, 10, 3600]))
def test_split_merge_and_churn(seed, cuts, bucket):
    w = synth_workload(seed, ops=120, changelogs=8, names="all")
    pairs = _pairs(w)
    whole = summarize(pairs, bucket=bucket)
    bounds = [0] + sorted(set(c % (len(pairs) + 1) for c in cuts)) + [len(pairs)]
    merged = Summary.empty(bucket=bucket)
    for a, b in reversed(list(zip(bounds, bounds[1:]))):  # merge in reverse order too
        merged = merge(summarize(pairs[a:b], bucket=bucket), merged)
    assert merged == whole
    # churn against the simulator's final namespace (without its noise records); gfids
    # with hard links are left out (an overwrite of an older hard-link name is not seen)
    alive = set(w.state.inodes)
    clean = _pairs(w._replace(changelogs=_without_unknown_gfid_noise(w.changelogs)))
    churn = summarize(clean, bucket=bucket)
    linked = {r.gfid for _, recs in clean for r in recs if r.TYPE == "E" and r.fop == "LINK"}
    gone = set(churn.created_then_deleted())
    for g in set(churn.created) - linked:
        assert (g in alive) == (g not in gone), g
