"""The gfid-sharded analysis (issue 13, Dask that scales): every shard reads every
journal but keeps only its gfids, and the report assembled from the shards'
parts equals the single-process report exactly: on the real corpus (raw ascii
and binary, processed), on random hostile workloads, on crafted cases where the
shards must see each other's renames and parents, and on bad input, which fails
the same way."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from streamsync.analysis import merge_all, summarize_paths
from streamsync.analysis._input import iter_journals
from streamsync.analysis.resolve import Resolver
from streamsync.analysis.shard import prefixes, read_shard, shard_of, split
from streamsync.discover import discover
from streamsync.errors import JournalError, ParseError
from streamsync.synth import synth_workload

REPO = Path(__file__).parent.parent
DATA = REPO / "tests" / "data" / "gluster-10.3"
CORPUS = [DATA / "raw" / "ascii-delpath-on", DATA / "raw" / "binary-delpath-off",
          DATA / "processed" / "ascii-delpath-off",
          REPO / "tests" / "data" / "gluster-10.3-b" / "raw" / "binary-delpath-on"]

pytest.importorskip("dask")
from streamsync.analysis.dask import report_dask  # noqa: E402

ROOT = "00000000-0000-0000-0000-000000000001"


def _single(paths, top=20, brick=None, **kw):
    """What ``streamsync analyze`` prints without Dask."""
    s = summarize_paths([str(p) for p in paths], **kw)
    report = s.to_dict(top=top, paths=Resolver.from_summary(s, brick=brick).path)
    if brick is not None:
        from streamsync.views import BrickView
        report["transfer"] = s.transfer_estimate(BrickView(brick))
    return report


def _gfid(prefix: str, n: int) -> str:
    return f"{prefix}{n:06x}-0000-4000-8000-{n:012x}"


@pytest.mark.parametrize("corpus", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("shards", [1, 2, 3, 5])
def test_corpus_report_equals_single_process(corpus, shards):
    if not corpus.exists():
        pytest.fail(f"corpus missing: {corpus}")
    got = report_dask([str(corpus)], scheduler="sync", shards=shards, top=7, bucket="10s",
                      data_stime=1795467300)
    assert got == _single([corpus], top=7, bucket="10s", data_stime=1795467300)


@pytest.mark.parametrize("shards", [2, 4])
def test_shards_merge_back_and_see_every_rename_and_parent(shards):
    journals = list(discover([str(p) for p in CORPUS]))
    whole = summarize_paths([str(p) for p in CORPUS])
    reads = [read_shard(journals, k, shards) for k in range(shards)]
    assert merge_all(r.summary for r in reads) == whole
    # each gfid's state is whole in exactly one shard
    for k, r in enumerate(reads):
        assert all(shard_of(g, shards) == k for g in r.summary.gfid_records)
        assert r.summary.changelogs == (len(journals) if k == 0 else 0)
    # every shard saw every rename and every parent (the other shards' too)
    from streamsync.analysis.summary import renames_onto
    onto = {k: sorted(v) for k, v in renames_onto(whole.renames).items()}
    for r in reads:
        assert {k: sorted(v) for k, v in r.onto.items()} == onto
        assert set(whole.dir_entries) <= r.parents


def test_split_merges_back_and_reports_the_same():
    from streamsync.analysis.report import report
    s = summarize_paths([str(p) for p in CORPUS], bucket="1m")
    for n in (1, 2, 3, 7):
        parts = split(s, n)
        assert merge_all(parts, bucket="1m") == s
        assert report(parts, 5) == s.to_dict(top=5)
    with pytest.raises(ValueError):
        split(s, 0)


def test_prefixes_cover_every_gfid_once():
    for n in (1, 2, 3, 16, 255):
        sets = [prefixes(k, n) for k in range(n)]
        assert sum(map(len, sets)) == 256 and len(frozenset().union(*sets)) == 256
    with pytest.raises(ValueError):
        prefixes(3, 3)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("names", ["hostile", "all"])
def test_random_workloads(tmp_path, seed, names):
    w = synth_workload(seed, ops=700, changelogs=7, names=names)
    cdir, _ = w.write(tmp_path)
    want = _single([cdir], top=10, bucket="30s")
    for shards in (2, 3):
        assert report_dask([cdir], scheduler="sync", shards=shards, top=10,
                           bucket="30s") == want


def _write(d: Path, ts: int, lines: list[str]) -> None:
    (d / f"CHANGELOG.{ts}").write_text("".join(line + "\n" for line in lines),
                                       encoding="utf-8", errors="surrogateescape")


def test_cross_shard_overwrite_and_a_file_used_as_a_parent(tmp_path):
    """With 2 shards (gfids 0x00.. and 0x02.. in shard 0, 0x01.. and 0xff.. in shard 1):
    B (shard 1) is renamed onto A's name (A is shard 0's, so A is gone only if shard
    0 sees B's rename); C is created in a *file* F of the other shard (hostile, but
    the single-process report shows the path through F, so must the shards); the
    rename destinations carry escaped names."""
    d = _gfid("01", 1)            # a directory, shard 1
    a, b = _gfid("00", 2), _gfid("ff", 3)
    f, c = _gfid("01", 4), _gfid("02", 5)
    _write(tmp_path, 1700000000, [
        f"E {d} MKDIR 16877 0 0 {ROOT}/dir",
        f"E {a} CREATE 33188 0 0 {d}/my%20file",
        f"E {b} CREATE 33188 0 0 {d}/tmp%25x",
        f"E {f} CREATE 33188 0 0 {ROOT}/plain",
        f"D {a}",
    ])
    _write(tmp_path, 1700000015, [
        f"E {b} RENAME {d}/tmp%25x {d}/my%20file",   # B replaces A: A has no name left
        f"E {c} CREATE 33188 0 0 {f}/inside",
        f"D {c}", f"D {b}",
        f"M {c} SETATTR",
    ])
    _write(tmp_path, 1700000030, [f"D {c}", f"E {c} RENAME {f}/inside {d}/a%0Aline"])
    want = _single([tmp_path], top=5)
    assert want["churn"]["created_then_deleted"] == 1      # A, through B's rename
    assert any(h["path"] == "dir/a\nline" for h in want["hot_files"])
    for shards in (2, 3, 4):
        assert report_dask([str(tmp_path)], scheduler="sync", shards=shards, top=5) == want
    # the file used as a parent shows in the path, with 2 shards too
    _write(tmp_path, 1700000045, [f"E {c} RENAME {d}/a%0Aline {f}/back"])
    want = _single([tmp_path], top=5)
    assert any(h["path"] == "plain/back" for h in want["hot_files"])
    assert report_dask([str(tmp_path)], scheduler="sync", shards=2, top=5) == want


@pytest.mark.parametrize("bad, what", [
    ("oops", "unknown record type"),                                    # no gfid: shard 0's
    (f"E {_gfid('ff', 9)} CREATE 33188 0 0 {ROOT}/..", "name"),          # shard 1's line
    (f"E {_gfid('00', 9)} CREATE 99999999999 0 0 {ROOT}/x", "mode"),     # past 2**32-1
    (f"M {_gfid('ab', 9)} NOSUCHFOP", "fop"),
    ("D x3" + _gfid("00", 9)[2:], "gfid"),            # no hex first digit, an odd second
    ("D 3x" + _gfid("00", 9)[2:], "gfid"),
    ("D 3", "gfid"),                                   # no second digit at all
    ("D " + _gfid("ab", 9).upper(), "gfid"),           # upper case: no prefix at all
])
def test_a_bad_line_fails_as_in_one_process(tmp_path, bad, what):
    g = _gfid("00", 1)
    _write(tmp_path, 1700000000, [f"D {g}", f"E {g} CREATE 33188 0 0 {ROOT}/f", bad, f"D {g}"])
    with pytest.raises(ParseError) as single:
        summarize_paths([str(tmp_path)])
    for shards in (2, 3, 4, 16, 32):
        with pytest.raises(ParseError) as sharded:
            report_dask([str(tmp_path)], scheduler="sync", shards=shards)
        assert str(sharded.value) == str(single.value)
        assert "CHANGELOG.1700000000:3:" in str(sharded.value) and what in str(sharded.value)


def test_a_damaged_raw_journal_fails_as_in_one_process(tmp_path):
    src = sorted((DATA / "raw" / "ascii-delpath-on").glob("CHANGELOG.*"))[3]
    data = src.read_bytes()
    (tmp_path / src.name).write_bytes(data[:-7] + b"Dnot-a-gfid\0")
    with pytest.raises(JournalError) as single:
        summarize_paths([str(tmp_path)])
    with pytest.raises(JournalError) as sharded:
        report_dask([str(tmp_path)], scheduler="sync", shards=3)
    assert str(sharded.value) == str(single.value)


def _damage(rng, original: bytes, start: int, junk: bytes, kinds: list[str]
            ) -> tuple[str, int, bytes]:
    """One random damage past ``start``: a byte changed to one of ``junk``, bytes cut,
    a newline, NUL or space inserted, a line or a span of bytes doubled."""
    data = bytearray(original)
    at = rng.randrange(start, len(data))
    how = rng.choice(kinds)
    if how == "byte":
        data[at] = rng.choice(junk)
    elif how == "cut":
        del data[at:at + rng.randrange(1, 50)]
    elif how in ("newline", "nul", "space"):
        data[at:at] = {"newline": b"\n", "nul": b"\0", "space": b" "}[how]
    elif how == "line":
        first = data.rfind(b"\n", 0, at) + 1
        data[first:first] = data[first:data.find(b"\n", at) + 1]
    else:
        data[at:at] = data[at:at + rng.randrange(1, 80)]
    return how, at, bytes(data)


def _outcome(run):
    try:
        return run()
    except (JournalError, ParseError) as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("corpus", [DATA / "raw" / "ascii-delpath-on",
                                    REPO / "tests" / "data" / "gluster-10.3-b" / "raw"
                                    / "binary-delpath-on"], ids=lambda p: p.name)
def test_damaged_raw_journals_fail_as_in_one_process(tmp_path, corpus):
    """A raw journal is checked by one shard only (the others walk it unchecked):
    random damage to real journals must still give the single-process report, or
    its error word for word, whichever shard checks the journal."""
    import random
    names = sorted(p.name for p in corpus.glob("CHANGELOG.*"))
    originals = {n: (corpus / n).read_bytes() for n in names}
    rng = random.Random(29)
    seen = {"error": 0, "equal": 0}
    for _ in range(60):
        for n, data in originals.items():
            (tmp_path / n).write_bytes(data)
        victim = rng.choice(names)
        # the body only: a bad header fails everywhere
        how, at, data = _damage(rng, originals[victim], 51, b"EDMX/0a9-\xff",
                                ["byte", "cut", "nul", "span"])
        (tmp_path / victim).write_bytes(data)
        want = _outcome(lambda: _single([tmp_path]))
        for shards in (2, 3):
            got = _outcome(lambda: report_dask([str(tmp_path)], scheduler="sync",
                                               shards=shards))
            assert got == want, (how, at, victim, shards)
        seen["error" if isinstance(want, str) else "equal"] += 1
    assert seen["error"] >= 20, seen


@pytest.mark.parametrize("first", ["00", "01"])
def test_bad_lines_in_two_shards_fail_with_the_first(tmp_path, first):
    """Each shard stops at its own first bad line; the report names the file's first,
    whichever shard holds it."""
    g0, g1 = _gfid(first, 1), _gfid("01" if first == "00" else "00", 2)  # shards 0 and 1
    _write(tmp_path, 1700000000, [f"D {g0}", f"D {g1}"])
    _write(tmp_path, 1700000015, [f"D {g0}", f"M {g0} NOSUCHFOP", f"E {g1} CREATE 1 0 0 x"])
    _write(tmp_path, 1700000030, [f"M {g0} NOSUCHFOP"])
    want = _outcome(lambda: _single([tmp_path]))
    assert "CHANGELOG.1700000015:2:" in want
    for shards in (2, 3, 4):
        assert _outcome(lambda: report_dask([str(tmp_path)], scheduler="sync",
                                            shards=shards)) == want
    (tmp_path / "CHANGELOG.1700000015").unlink()   # now the last journal's line 1
    want = _outcome(lambda: _single([tmp_path]))
    assert "CHANGELOG.1700000030:1:" in want
    assert _outcome(lambda: report_dask([str(tmp_path)], scheduler="processes",
                                        shards=2)) == want


def test_brick_paths_and_transfer(tmp_path):
    brick = tmp_path / "brick"
    brick.mkdir()
    subprocess.run(["tar", "-xzf", str(REPO / "examples" / "demo-brick" / "demo.tar.gz"),
                    "-C", str(brick)], check=True, capture_output=True)
    want = _single([brick], top=6, brick=str(brick))
    assert want["transfer"]["files"] > 0
    for shards in (2, 3):
        assert report_dask([str(brick)], scheduler="sync", shards=shards, top=6,
                           brick=brick) == want


def test_a_brick_the_workers_cannot_see_is_an_error(tmp_path):
    from streamsync.errors import SourceError
    with pytest.raises(SourceError, match="no such brick on the Dask worker"):
        report_dask([str(DATA / "raw" / "ascii-delpath-on")], scheduler="sync", shards=2,
                    brick=tmp_path / "gone")


def test_processes_scheduler_and_empty_input():
    corpus = DATA / "processed" / "ascii-delpath-on"
    assert report_dask([str(corpus)], scheduler="processes", shards=2) == _single([corpus])
    assert report_dask([], scheduler="sync") == _single([])
    with pytest.raises(ValueError):
        report_dask([str(corpus)], scheduler="sync", shards=-1)


def test_distributed_cluster_default_shards():
    distributed = pytest.importorskip("distributed")
    corpus = [str(p) for p in CORPUS]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        from streamsync.analysis.dask import _report_scheduler, _workers
        assert _workers(client) == 2
        seen: list[int] = []  # the workers are on this host: they count too
        assert report_dask(corpus, scheduler=client, progress=seen.append) == _single(corpus)
        assert seen[-1] == len(list(iter_journals(corpus)))
        assert _report_scheduler(None) is client  # the active client, by default
        assert report_dask(corpus) == _single(corpus)


def test_default_scheduler_is_the_process_pool_unless_dask_says_otherwise():
    import dask
    from streamsync.analysis.dask import _report_scheduler, _workers
    assert _report_scheduler(None) == "processes"
    assert _workers("processes") >= 1 and _workers("threads") == 1
    with dask.config.set(scheduler="sync"):
        assert _report_scheduler(None) == "sync"
    corpus = DATA / "processed" / "ascii-delpath-on"
    assert report_dask([str(corpus)]) == _single([corpus])


def test_damaged_journals_fail_or_agree_in_every_shard(tmp_path):
    """Random damage (bytes changed, cut, doubled, newlines inserted) to a hostile
    workload's journals: the shards together either raise the single-process error
    type or give the single-process summary. A damaged line no shard takes would be
    a record silently dropped."""
    import random
    w = synth_workload(3, ops=120, changelogs=2, names="all")
    cdir, _ = w.write(tmp_path / "w")
    journals = sorted(Path(cdir).glob("CHANGELOG.*"))
    originals = {p: p.read_bytes() for p in journals}
    rng = random.Random(13)
    outcomes = {"error": 0, "equal": 0}
    for _ in range(150):
        for p, data in originals.items():
            p.write_bytes(data)
        victim = rng.choice(journals)
        how, at, data = _damage(rng, originals[victim], 0, b"EDMX /%\x00\xff0aZ-",
                                ["byte", "cut", "newline", "line", "space"])
        victim.write_bytes(data)
        try:
            want = summarize_paths([cdir])
        except ParseError as exc:
            want = type(exc)
        js = list(discover([cdir]))
        for shards in (2, 3):
            try:
                got = merge_all(read_shard(js, k, shards).summary for k in range(shards))
            except ParseError as exc:
                got = type(exc)
            assert got == want, (how, at, victim.name)
        outcomes["error" if want is ParseError else "equal"] += 1
    assert outcomes["error"] > 30 and outcomes["equal"] > 10  # both sides were exercised


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_progress_reaches_every_journal_and_leaves_no_file(scheduler, tmp_path, monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the tally file goes
    corpus = [str(p) for p in CORPUS]
    n = len(list(iter_journals(corpus)))
    seen: list[int] = []
    got = report_dask(corpus, scheduler=scheduler, shards=3, progress=seen.append)
    assert got == _single(corpus)
    assert seen and seen[-1] == n and seen == sorted(set(seen)), seen
    assert list(tmp_path.iterdir()) == []


def test_progress_ends_when_a_shard_fails(tmp_path, monkeypatch):
    import tempfile
    d = tmp_path / "journals"
    d.mkdir()
    (d / "CHANGELOG.1795467001").write_bytes(b"D " + ROOT.encode() + b"\n")
    (d / "CHANGELOG.1795467016").write_bytes(b"D not-a-gfid\n")
    tally = tmp_path / "tally"
    tally.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tally))
    seen: list[int] = []
    with pytest.raises(ParseError, match="CHANGELOG.1795467016:1"):
        report_dask([str(d)], scheduler="sync", shards=2, progress=seen.append)
    assert list(tally.iterdir()) == [] and seen[-1:] in ([], [1], [2])


def test_a_ticker_travels_without_its_file_and_counts_nothing_where_none_is(tmp_path):
    import pickle

    from streamsync.analysis.tally import ShardTicker, read_tally, tally_file
    path = tally_file(3)
    tick = ShardTicker(path, 2)
    tick(None)
    tick(None)
    copy = pickle.loads(pickle.dumps(tick))
    assert (copy.path, copy.shard, copy.count) == (path, 2, 0)
    tick.done()
    assert read_tally(path, 3) == [0, 0, 2]
    elsewhere = ShardTicker(str(tmp_path / "no-such-tally"), 0)  # a worker on another host
    elsewhere(None)
    elsewhere.done()
    assert not (tmp_path / "no-such-tally").exists()
    assert read_tally(str(tmp_path / "no-such-tally"), 2) == [0, 0]
