"""streamsync against gsyncd on real GlusterFS volumes, in one lab run (issue 11).

Run (root, GlusterFS installed, port 22 of 127.0.0.1 free)::

    .venv/bin/python -m pytest benchmarks/bench_volume_vs_gsyncd.py --benchmark-only -s

One primary volume ``bgm`` (changelog on, rollover 15 s: what ``create push-pem``
sets, the same for both tools since both read its brick) and two fresh
secondaries: gsyncd's geo-rep session writes ``bgs1`` (scripts/gsyncd_session.sh,
default config), ``streamsync replicate --follow BRICK HOST::bgs2`` writes
``bgs2``. Both run during one workload on the primary's FUSE mount: 4,000 x 2 KiB
files in 40 directories, 300 renames (some across directories), 200 deletes,
100 chmods, 50 hard links, 50 symlinks, a 100 MiB file, 100 appends. Measured,
per tool: seconds from the rollover that published the last write until the
secondary equals the primary (names, types, modes, sizes, content hashes; the
secondary polled every second), and the CPU seconds of its processes. The
ratio streamsync / gsyncd is printed and kept in ``extra_info``; the goal is
at most 1/4. gsyncd never sets directory or symlink mtimes, so mtimes are not
compared. gsyncd gets rsync 3.2.7 (fetched with apt-get download) when 3.5.0 is
installed: with 3.5.0 as its receiver it leaves every file empty and reports
success, so it would never finish. Sizes: ``BENCH_GEO_FILES``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from gluster_lab import glusterd_running, other_rsync, run, start_volume, wait_for  # noqa: E402

from streamsync.verify import compare, scan_tree  # noqa: E402

SCRIPT = os.path.join(HERE, "..", "scripts", "gsyncd_session.sh")
N_FILES = int(os.environ.get("BENCH_GEO_FILES", "4000"))
N_DIRS = 40
TIMEOUT = float(os.environ.get("BENCH_GEO_TIMEOUT", "900"))

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (volumes, sshd on :22)")


def _workload(m: str) -> float:
    """The primary workload; returns the time of its last write."""
    j = lambda *p: os.path.join(m, *p)  # noqa: E731
    per = N_FILES // N_DIRS
    for d in range(N_DIRS):
        os.mkdir(j(f"d{d:02d}"))
        for i in range(per):
            with open(j(f"d{d:02d}", f"f{i}"), "wb") as fh:
                fh.write(os.urandom(2048))
    for k in range(300):
        d, i = k % N_DIRS, k // N_DIRS
        dst = j(f"d{(d + 1) % N_DIRS:02d}", f"moved{k}") if k % 3 == 0 else j(f"d{d:02d}", f"r{i}")
        os.rename(j(f"d{d:02d}", f"f{i}"), dst)
    for k in range(200):
        os.unlink(j(f"d{k % N_DIRS:02d}", f"f{per - 1 - k // N_DIRS}"))
    for k in range(100):
        os.chmod(j(f"d{k % N_DIRS:02d}", f"f{20 + k // N_DIRS}"), 0o600)
    for k in range(50):
        os.link(j(f"d{k % N_DIRS:02d}", f"f{30 + k // N_DIRS}"), j(f"d{k % N_DIRS:02d}", f"hl{k}"))
        os.symlink(f"f{31 + k // N_DIRS}", j(f"d{k % N_DIRS:02d}", f"sl{k}"))
    with open(j("big.bin"), "wb") as fh:
        for _ in range(100):
            fh.write(os.urandom(1 << 20))
    for k in range(100):
        with open(j(f"d{k % N_DIRS:02d}", f"f{40 + k // N_DIRS}"), "ab") as fh:
            fh.write(b"appended\n")
    return time.time()


def _cpu(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick
    return total


def _gsyncd_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "gsyncd"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _published_after(brick: str, t: float) -> float:
    """When the first journal stamped after ``t`` appeared (the rollover that
    published the last write)."""
    cdir = os.path.join(brick, ".glusterfs", "changelogs")

    def found():
        for top, _, files in os.walk(cdir):
            for f in files:
                if f.startswith("CHANGELOG.") and int(f.split(".")[1]) >= int(t):
                    return os.stat(os.path.join(top, f)).st_mtime
        return None
    return wait_for(found, "the rollover after the last write", timeout=120, interval=0.2)


def test_streamsync_vs_gsyncd_on_real_volumes(benchmark, tmp_path_factory):
    gen = glusterd_running(tmp_path_factory)
    host = next(gen)
    work = tmp_path_factory.mktemp("geo")
    vols = {"bgm": work / "bgm", "bgs1": work / "bgs1", "bgs2": work / "bgs2"}
    pm, s1, s2 = work / "pm", work / "s1", work / "s2"
    for d in (pm, s1, s2):
        d.mkdir()
    made, mounted, proc = [], [], None
    try:
        for v, b in vols.items():
            run("gluster", "--mode=script", "volume", "create", v, f"{host}:{b}", "force")
            made.append(v)
            start_volume(v)
        run("bash", SCRIPT, "sshd", str(work / "sshd"))
        # gsyncd with rsync 3.5.0 as its receiver sends nothing (the lab notes): give
        # it 3.2.7 when that is what is installed; streamsync uses the installed one
        have = subprocess.run(["rsync", "--version"], capture_output=True, text=True).stdout
        env = dict(os.environ)
        if "version 3.5" in have:
            env["RSYNC"] = other_rsync(tmp_path_factory)
        subprocess.run(["bash", SCRIPT, "create", "bgm", "bgs1"], check=True, timeout=300,
                       env=env)
        run("gluster", "--mode=script", "volume", "stop", "bgm", "force")  # (see the script)
        start_volume("bgm")
        run("bash", SCRIPT, "start", "bgm", "bgs1", timeout=300)
        for v, d in (("bgm", pm), ("bgs1", s1), ("bgs2", s2)):
            run("mount", "-t", "glusterfs", f"{host}:/{v}", str(d))
            mounted.append(d)
        wait_for(lambda: "Active" in run("gluster", "volume", "geo-replication", "bgm",
                                         f"{host}::bgs1", "status").stdout,
                 "gsyncd to be Active", timeout=120, interval=1)
        proc = subprocess.Popen([sys.executable, "-m", "streamsync", "replicate", "--follow", "-q",
                                 "-o", "change-interval=1", "--state", str(work / "ss.sqlite"),
                                 str(vols["bgm"]), f"{host}::bgs2"],
                                stdout=subprocess.DEVNULL, stderr=open(work / "ss.err", "w"))
        last_write = _workload(str(pm))
        rollover = _published_after(str(vols["bgm"]), last_write)
        want = scan_tree(str(pm))
        names_only = scan_tree(str(pm), hashes=False)
        done: dict[str, float] = {}

        def equal(name: str, mnt) -> bool:
            """Names and sizes first (cheap), then content hashes; the time kept is
            when that scan began (a scan of a FUSE mount takes seconds)."""
            if name in done:
                return True
            t = time.time()
            if compare(names_only, scan_tree(str(mnt), hashes=False), ignore=("mtime",)):
                return False
            if not compare(want, scan_tree(str(mnt)), ignore=("mtime",)):
                done[name] = t
            return name in done

        try:  # each tool on its own: one that never gets there is reported, not waited for
            wait_for(lambda: equal("streamsync", s2) & equal("gsyncd", s1),
                     "both secondaries to equal the primary", timeout=TIMEOUT, interval=1.0)
        except AssertionError:
            pass
        ss_cpu = _cpu([proc.pid])
        gs_cpu = _cpu(_gsyncd_pids())
        ss = done["streamsync"] - rollover if "streamsync" in done else None
        gs = done["gsyncd"] - rollover if "gsyncd" in done else None
        shown = {k: (f"{v:.1f} s" if v is not None else f"not equal after {TIMEOUT:g} s")
                 for k, v in (("streamsync", ss), ("gsyncd", gs))}
        ratio = ss / gs if ss is not None and gs else None
        print(f"\nafter the rollover that published the last write: streamsync "
              f"{shown['streamsync']}, gsyncd {shown['gsyncd']}, ratio "
              f"{'%.2f' % ratio if ratio is not None else 'n/a'} (goal <= 0.25); CPU seconds "
              f"of the live processes: streamsync {ss_cpu:.1f}, gsyncd {gs_cpu:.1f}")
        benchmark.extra_info.update(streamsync_s=ss, gsyncd_s=gs, ratio=ratio,
                                    streamsync_cpu=ss_cpu, gsyncd_cpu=gs_cpu)
        benchmark.pedantic(lambda: None, rounds=1)
        assert ss is not None, "streamsync's secondary never equalled the primary"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        run("bash", SCRIPT, "stop", "bgm", "bgs1", check=False, timeout=300)
        run("bash", SCRIPT, "sshd-stop", str(work / "sshd"), check=False)
        for d in reversed(mounted):
            run("umount", str(d), check=False)
        for v in made:
            run("gluster", "--mode=script", "volume", "stop", v, "force", check=False)
            run("gluster", "--mode=script", "volume", "delete", v, check=False)
        shutil.rmtree(work / "sshd", ignore_errors=True)
        next(gen, None)
