"""The plan stage (parse + gate + classify + plan) vs a re-expression of the seed's loop.

Run: ``.venv/bin/python -m pytest benchmarks/bench_pipeline.py --benchmark-only -s``

* ``test_plan_stage_vs_seed_loop``: a large :mod:`streamsync.synth` workload with
  an in-memory source view. Ours: :func:`streamsync.pipeline.plan_processed_text`
  on every changelog's bytes (the fused path), plus the META stats. Reference, in
  the same run on the same bytes and the same namespace: ``seed_loop`` below, a
  minimal re-expression (written here, not copied) of what the seed's
  ``process_change`` does per line with in-memory fakes and no I/O - text-mode
  decode and ``readlines``, ``strip``/``split``, ``os.path.join`` and unescaping of
  every entry name, counters, ``errno_wrap``-style lookups that raise for gone
  gfids, entry dicts, the eagerly formatted ``lf(...)`` log messages and the
  ``repr(entries)`` debug line, META stats. Reported in lines/s and as a ratio.
* ``test_bulk_prefetch_vs_one_at_a_time``: a view with a simulated 1 ms round trip
  per lookup; the same changelogs planned with concurrent bulk prefetch vs one
  lookup at a time (results asserted equal).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
import time

import pytest

from streamsync.options import Options
from streamsync.parse import render_processed
from streamsync.pipeline import plan_processed_text
from streamsync.records import Changelog
from streamsync.synth import synth_workload
from streamsync.views import CountingView

N_OPS = int(os.environ.get("BENCH_PIPELINE_OPS", "150000"))
N_CHANGELOGS = 200


@pytest.fixture(scope="module")
def workload():
    import gc
    w = synth_workload(42, ops=N_OPS, changelogs=N_CHANGELOGS, names="hostile")
    texts = [(Changelog(f"CHANGELOG.{ts}", ts, 0), render_processed(recs))
             for ts, recs in w.changelogs]
    texts = [(c._replace(size=len(t)), t) for c, t in texts]
    # the generator's own records (hundreds of thousands of objects) are no part of
    # either side's work: keep the collector from re-scanning them during the runs
    gc.collect()
    gc.freeze()
    yield w, texts
    gc.unfreeze()


# ----------------------------------------------------------------- seed loop
log = logging.getLogger("seedloop")
log.setLevel(logging.WARNING)


class _St:
    __slots__ = ("st_mode", "st_uid", "st_gid", "st_atime", "st_mtime")

    def __init__(self, s):
        self.st_mode, self.st_uid, self.st_gid = s.mode, s.uid, s.gid
        self.st_atime, self.st_mtime = s.atime, s.mtime


class FakeMount:
    """The master's aux-gfid mount as the seed sees it (paths in, stat or errno out)."""

    def __init__(self, view):
        self.view = view

    def _gfid(self, path):
        rest = path[6:]
        g, sep, name = rest.partition("/")
        if sep:
            g = self.view.entry_gfid(g, name)
            if g is None:
                raise OSError(errno.ENOENT, path)
        return g

    def lstat(self, path):
        s = self.view.lstat(self._gfid(path))
        if s is None:
            raise OSError(errno.ENOENT, path)
        return _St(s)

    def readlink(self, path):
        t = self.view.readlink(self._gfid(path))
        if t is None:
            raise OSError(errno.EINVAL, path)
        return t


def _errno_wrap(call, args, errnos):
    try:
        return call(*args)
    except OSError as exc:
        if exc.errno in errnos:
            return exc.errno
        raise


def _lf(event, **kw):
    return "%s\t%s" % (event, "\t".join("%s=%s" % (k, v) for k, v in kw.items()))


def _unesc(s):
    return s.replace("%20", " ").replace("%0A", "\n").replace("%25", "%")


def _edct(op, **ed):
    d = {"op": op}
    for k, v in ed.items():
        if k == "stat":
            dst = d["stat"] = {}
            if v:
                dst["uid"], dst["gid"], dst["mode"] = v.st_uid, v.st_gid, v.st_mode
                dst["atime"], dst["mtime"] = v.st_atime, v.st_mtime
        else:
            d[k] = v
    return d


def seed_loop(data: bytes, mount: FakeMount, conf: dict):
    """One changelog, the seed's way (see the module docstring)."""
    pfx = ".gfid/"
    entries, meta, datas = [], set(), set()
    stats = {"CREATE": 0, "MKNOD": 0, "UNLINK": 0, "MKDIR": 0, "RMDIR": 0, "LINK": 0,
             "SYMLINK": 0, "RENAME": 0, "SETATTR": 0, "SETXATTR": 0, "XATTROP": 0, "DATA": 0}

    def count(ty):
        if ty in ["FSETXATTR"]:
            ty = "SETXATTR"
        stats[ty] = stats.get(ty, 0) + 1

    lstat = mount.lstat
    for e in io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").readlines():
        e = e.strip()
        et, ec = e[0:2], e[2:].split(" ")
        if conf["is_hottier"] and et == "E ":
            continue
        if et == "E ":
            ty = ec[1]
            count(ty)
            en = _unesc(os.path.join(pfx, ec[-1]))
            gfid = ec[0]
            if ty in ["UNLINK", "RMDIR"]:
                en = _unesc(os.path.join(pfx, ec[2]))
                pt = os.path.join(pfx, ec[0])
                st = _errno_wrap(lstat, [pt], [errno.ENOENT])
                if pt in datas and isinstance(st, int):
                    datas.remove(pt)
                if ty in ["RMDIR"] and not isinstance(st, int):
                    log.info(_lf("Ignoring rmdir", gfid=gfid, pgfid_bname=en))
                    continue
                if not conf["ignore-deletes"]:
                    entries.append(_edct(ty, gfid=gfid, entry=en))
            elif ty in ["CREATE", "MKDIR", "MKNOD"]:
                if ty in ["MKNOD"] and int(ec[2]) & 0o1000:
                    st = _St.__new__(_St)
                    st.st_mode, st.st_uid, st.st_gid = int(ec[2]), int(ec[3]), int(ec[4])
                    st.st_atime = st.st_mtime = 0
                    entries.append(_edct("LINK", stat=st, entry=en, gfid=gfid))
                    datas.add(os.path.join(pfx, ec[0]))
                    continue
                entries.append(_edct(ty, gfid=gfid, entry=en, mode=int(ec[2]),
                                     uid=int(ec[3]), gid=int(ec[4])))
            elif ty == "RENAME":
                go = os.path.join(pfx, gfid)
                st = _errno_wrap(lstat, [go], [errno.ENOENT])
                if isinstance(st, int):
                    st = {}
                rl = None
                if st and stat.S_ISLNK(st.st_mode):
                    rl = _errno_wrap(mount.readlink, [en], [errno.ENOENT, errno.EINVAL])
                    if rl == errno.EINVAL:   # the seed dies here; read by gfid as we do
                        rl = _errno_wrap(mount.readlink, [go], [errno.ENOENT, errno.EINVAL])
                    if isinstance(rl, int):
                        rl = None
                e1 = _unesc(os.path.join(pfx, ec[-2]))
                entries.append(_edct(ty, gfid=gfid, entry=e1, entry1=en, stat=st, link=rl))
            else:
                try:
                    same = mount._gfid(en) == gfid
                except OSError:
                    same = False
                if not same:
                    log.debug(_lf("Ignoring entry, purged in the interim", file=en, gfid=gfid))
                    continue
                go = os.path.join(pfx, gfid)
                st = _errno_wrap(lstat, [go], [errno.ENOENT])
                if isinstance(st, int):
                    log.debug(_lf("Ignoring entry, purged in the interim", file=en, gfid=gfid))
                    continue
                if ty == "LINK":
                    rl = None
                    if st and stat.S_ISLNK(st.st_mode):
                        rl = _errno_wrap(mount.readlink, [en], [errno.ENOENT])
                        if isinstance(rl, int):
                            rl = None
                    entries.append(_edct(ty, stat=st, entry=en, gfid=gfid, link=rl))
                elif ty == "SYMLINK":
                    rl = _errno_wrap(mount.readlink, [en], [errno.ENOENT, errno.EINVAL])
                    if isinstance(rl, int):
                        continue
                    entries.append(_edct(ty, stat=st, entry=en, gfid=gfid, link=rl))
        elif et == "D ":
            datas.add(os.path.join(pfx, ec[0]))
        elif et == "M ":
            count(ec[1])
            if ec[1] == "SETATTR":
                meta.add((os.path.join(pfx, ec[0]),))
            elif ec[1] in ["SETXATTR", "XATTROP", "FXATTROP"]:
                if not conf["sync-method"] == "tarssh" and \
                        (conf["sync-xattrs"] or conf["sync-acls"]):
                    datas.add(os.path.join(pfx, ec[0]))
    log.debug("entries: %s" % repr(entries))
    stats["DATA"] += len(datas) - stats["SETXATTR"] - stats["XATTROP"]
    metas = []
    for go in meta:
        st = _errno_wrap(lstat, [go[0]], [errno.ENOENT])
        if isinstance(st, int):
            continue
        metas.append(_edct("META", go=go[0], stat=st))
    return entries, metas, datas, stats


SEED_CONF = {"is_hottier": False, "ignore-deletes": False, "sync-method": "rsync",
             "sync-xattrs": True, "sync-acls": True}


def _best(fn, rounds=3):
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def test_plan_stage_vs_seed_loop(benchmark, workload):
    w, texts = workload
    view, opts = w.state, Options()
    lines = w.lines
    mount = FakeMount(view)

    def seed_all():
        return [seed_loop(t, mount, SEED_CONF) for _, t in texts]

    def ours_all():
        out = []
        for c, t in texts:
            p = plan_processed_text(c, t, view=view, options=opts)
            metas = [(g, view.lstat(g)) for g in p.meta_gfids]
            out.append((p, metas))
        return out

    # same answers before timing anything
    for (p, metas), (entries, smetas, datas, stats) in zip(ours_all()[:20], seed_all()[:20]):
        assert [op.to_gsyncd() for op in p.entry_ops] == entries
        assert sorted(".gfid/" + g for g in p.data_gfids) == sorted(datas)
        assert dict(p.stats) == stats
        assert len([m for m in metas if m[1] is not None]) == len(smetas)
    ref = _best(seed_all)
    benchmark.pedantic(ours_all, rounds=3, iterations=1)
    ours = benchmark.stats.stats.min
    ratio = ref / ours
    benchmark.extra_info.update({"lines": lines, "lines_per_s": int(lines / ours),
                                 "seed_loop_lines_per_s": int(lines / ref),
                                 "speedup_vs_seed_loop": round(ratio, 2)})
    print(f"\nplan stage: {lines / ours:,.0f} lines/s; seed loop {lines / ref:,.0f} lines/s; "
          f"{ratio:.1f}x ({lines:,} lines)")


def test_bulk_prefetch_vs_one_at_a_time(benchmark):
    w = synth_workload(5, ops=600, changelogs=6, names="hostile")
    texts = [(Changelog(f"CHANGELOG.{ts}", ts, 0), render_processed(r)) for ts, r in w.changelogs]
    opts = Options()
    slow = CountingView(w.state, on_lookup=lambda: time.sleep(0.001), workers=32)

    def run(prefetch):
        return [plan_processed_text(c, t, view=slow, options=opts, prefetch=prefetch)
                for c, t in texts]

    t0 = time.perf_counter()
    serial = run(False)
    ref = time.perf_counter() - t0
    serial_calls = slow.lookups
    bulk = benchmark.pedantic(run, (True,), rounds=3, iterations=1)
    assert bulk == serial
    ours = benchmark.stats.stats.min
    benchmark.extra_info.update({"lookups_one_at_a_time": serial_calls,
                                 "speedup_vs_one_at_a_time": round(ref / ours, 2)})
    print(f"\nbulk prefetch: {ref / ours:.1f}x faster than {serial_calls} one-at-a-time "
          f"1 ms lookups ({ref:.2f}s -> {ours:.2f}s)")
    assert ref / ours > 3


SEED_PATH = os.environ.get("STREAMSYNC_SEED", "/work/shared/seed/master.py")


@pytest.mark.skipif(not os.path.exists(SEED_PATH), reason="the seed's master.py is not here")
def test_plan_changelogs_vs_the_real_seed(benchmark, workload, tmp_path):
    """The real seed (``scripts/seed_diff.py`` harness: its own crawl, batching and
    process_change, in-memory master and slave) against ``plan_changelogs`` on the
    same changelog files and namespace, in the same run."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts"))
    import seed_diff
    from streamsync.discover import discover
    from streamsync.pipeline import plan_changelogs

    w, texts = workload
    cdir = tmp_path / "changelogs"
    cdir.mkdir()
    for c, t in texts:
        (cdir / c.name).write_bytes(t)
    view, opts = w.state, Options()

    def seed_run():
        return seed_diff.run_seed(SEED_PATH, str(cdir), view, {}, None, None, False,
                                  tolerate_einval=True)

    def ours():
        out = []
        for p in plan_changelogs(discover(str(cdir)), view=view, options=opts,
                                 data_stime=None, entry_stime=None):
            out.append((p, [view.lstat(g) for g in p.meta_gfids]))
        return out

    ref = _best(seed_run, rounds=2)
    benchmark.pedantic(ours, rounds=3, iterations=1)
    t = benchmark.stats.stats.min
    benchmark.extra_info.update({"lines": w.lines, "lines_per_s": int(w.lines / t),
                                 "real_seed_lines_per_s": int(w.lines / ref),
                                 "speedup_vs_real_seed": round(ref / t, 2)})
    print(f"\nplan_changelogs: {w.lines / t:,.0f} lines/s; real seed {w.lines / ref:,.0f} "
          f"lines/s; {ref / t:.1f}x")
