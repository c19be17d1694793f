"""Summaries over the real GlusterFS 10.3 corpus: counts against an independent
line-splitting oracle, merge laws (hypothesis), churn against the final namespace."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from streamsync.analysis._input import iter_journals, read_records
from streamsync.analysis.summary import (Summary, SummaryBuilder, merge, merge_all,
                                         parse_duration, summarize, summarize_changelog,
                                         summarize_paths)
from streamsync.records import ROOT_GFID

DATA = Path(__file__).parent / "data" / "gluster-10.3"
SCENARIOS = ["ascii-delpath-on", "ascii-delpath-off"]


def _oracle_counts(scenario: str) -> tuple[int, int, Counter]:
    """Count records by splitting processed lines on spaces (no streamsync code)."""
    files = sorted((DATA / "processed" / scenario).glob("CHANGELOG.*"))
    fops: Counter = Counter()
    n = 0
    for f in files:
        for line in f.read_bytes().split(b"\n"):
            if not line:
                continue
            n += 1
            parts = line.split(b" ")
            fops["DATA" if parts[0] == b"D" else parts[2].decode()] += 1
    return len(files), n, fops


def _handles(scenario: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in (DATA / "handles" / f"{scenario}.tsv").read_text("utf-8").splitlines():
        gfid, _type, path = line.split("\t", 2)
        out.setdefault(gfid, set()).add(path)
    return out


@pytest.fixture(scope="module")
def corpus_pairs():
    pairs = {}
    for s in SCENARIOS:
        pairs[s] = [(c, list(read_records(c)))
                    for c in iter_journals([str(DATA / "processed" / s)])]
    return pairs


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_counts_match_line_oracle(scenario):
    s = summarize_paths([str(DATA / "processed" / scenario)])
    n_files, n_records, fops = _oracle_counts(scenario)
    assert s.changelogs == n_files
    assert s.records == n_records
    assert s.fops == dict(fops)
    assert sum(s.types.values()) == n_records
    assert s.types["D"] == fops["DATA"]
    names = sorted(os.listdir(DATA / "processed" / scenario))
    assert s.first_ts == int(names[0].split(".")[1])
    assert s.last_ts == int(names[-1].split(".")[1])
    # timeline buckets add up to the totals
    per_bucket = Counter()
    for counts in s.buckets.values():
        per_bucket.update(counts)
    assert dict(per_bucket) == dict(fops)
    assert sum(s.bucket_changelogs.values()) == n_files


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_churn_against_final_namespace(scenario):
    """Inodes created and gone == created inodes missing from the final brick listing."""
    s = summarize_paths([str(DATA / "processed" / scenario)])
    final = set(_handles(scenario)) - {ROOT_GFID}
    # every inode of the final namespace was created inside the corpus window
    assert final <= set(s.created)
    assert set(s.created_then_deleted()) == set(s.created) - final
    # workload.sh: `echo t > top/tmp_short; rm top/tmp_short` is one of them
    tmp = [g for g, (_, _, _, b) in s.names.items() if b == "tmp_short"]
    assert len(tmp) == 1 and tmp[0] in s.created_then_deleted()
    # the overwritten rename target (mv mvsrc/m2 top/overwrite_target) is gone too
    assert len(s.overwritten()) >= 1
    assert s.overwritten() <= set(s.created_then_deleted())


def test_hot_files_and_resends():
    s = summarize_paths([str(DATA / "processed" / "ascii-delpath-on")])
    hot_gfid, n = s.hot_files(1)[0]
    # top/slow_growing is appended 6 times one second apart: the most re-sent file
    assert s.names[hot_gfid][3] == "slow_growing"
    assert n >= 4
    assert s.resends() == sum(v - 1 for v in s.data_changelogs.values())
    # the 2000 bulk files are named inside bulk/dNN directories
    dirs = s.dir_activity()
    bulk = [g for g, v in s.names.items() if v[3].startswith("d") and len(v[3]) == 3
            and s.names.get(v[2], (0, 0, "", ""))[3] == "bulk"]
    assert len(bulk) == 20
    assert sum(dirs[g] for g in bulk) >= 2 * 2000  # CREATE + DATA per bulk file


def test_rename_chains():
    s = summarize_paths([str(DATA / "processed" / "ascii-delpath-on")])
    # 50 moves bulk/d00 -> bulk/d01 plus the nine P6 renames
    assert len(s.renames) == s.fops["RENAME"]
    assert s.rename_chains(min_length=2) == []
    assert s.rename_chains(5, min_length=1)[0][1] == 1


def test_lag_counts_pending_journals(corpus_pairs):
    pairs = corpus_pairs["ascii-delpath-on"]
    cut = pairs[20][0].ts
    s = summarize(pairs, data_stime=(cut, 0))
    lag = s.lag()
    assert lag["changelogs"] == len(pairs) - 20
    assert lag["records"] == sum(len(r) for c, r in pairs[20:])
    assert lag["bytes"] == sum(c.size for c, r in pairs[20:])
    assert lag["seconds"] == pairs[-1][0].ts - cut
    assert summarize(pairs).lag() is None


def test_merge_rejects_different_configuration():
    with pytest.raises(ValueError):
        merge(Summary.empty(bucket=60), Summary.empty(bucket=3600))
    with pytest.raises(ValueError):
        parse_duration("soon")


def _split_merge(pairs, cuts, order, bucket):
    cuts = sorted(set(c % (len(pairs) + 1) for c in cuts))
    bounds = [0] + cuts + [len(pairs)]
    parts = [summarize(pairs[a:b], bucket=bucket) for a, b in zip(bounds, bounds[1:])]
    # merge in a shuffled order (merge is commutative)
    perm = sorted(range(len(parts)), key=lambda i: order[i % len(order)] if order else i)
    out = Summary.empty(bucket=bucket)
    for i in perm:
        out = merge(out, parts[i])
    return out


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
       order=st.lists(st.integers(), min_size=1, max_size=10),
       bucket=st.sampled_from([1, 7, 60, 3600]),
       scenario=st.sampled_from(SCENARIOS))
def test_any_split_merged_equals_whole(corpus_pairs, cuts, order, bucket, scenario):
    pairs = corpus_pairs[scenario]
    whole = summarize(pairs, bucket=bucket)
    assert _split_merge(pairs, cuts, order, bucket) == whole
    # the builder's linear merge agrees too
    bounds = [0] + sorted(set(c % (len(pairs) + 1) for c in cuts)) + [len(pairs)]
    assert merge_all((summarize(pairs[a:b], bucket=bucket) for a, b in zip(bounds, bounds[1:])),
                     bucket=bucket) == whole


@settings(max_examples=30, deadline=None)
@given(i=st.integers(0, 33), j=st.integers(0, 33), k=st.integers(0, 33))
def test_associative_commutative_identity(corpus_pairs, i, j, k):
    pairs = corpus_pairs["ascii-delpath-on"]
    a, b, c = (summarize_changelog(*pairs[x]) for x in (i, j, k))
    e = Summary.empty()
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    assert merge(a, b) == merge(b, a)
    assert merge(a, e) == a == merge(e, a)


def test_builder_update_equals_merge(corpus_pairs):
    pairs = corpus_pairs["ascii-delpath-off"]
    a, b = summarize(pairs[:10]), summarize(pairs[10:])
    builder = SummaryBuilder()
    builder.update(a)
    builder.update(b)
    assert builder.freeze() == merge(a, b) == summarize(pairs)


def test_one_path_is_one_path_and_the_summary_shows_small(tmp_path):
    """A notebook user passes one directory as a string or a Path: it is read as
    that directory, not as its characters; and the summary shows in a line."""
    import pathlib
    from streamsync.analysis.summary import summarize_paths
    d = "tests/data/gluster-10.3/processed/ascii-delpath-on"
    many = summarize_paths([d])
    for one in (d, pathlib.Path(d)):
        s = summarize_paths(one)
        assert (s.changelogs, s.records, s.fops) == (many.changelogs, many.records, many.fops)
    r = repr(many)
    assert len(r) < 200 and f"{many.changelogs} changelogs" in r and f"{many.records} records" in r
    html = many._repr_html_()
    assert html.startswith("<table>") and f"<td>{many.changelogs}</td>" in html
    assert len(html) < 5000
