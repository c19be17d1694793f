"""Every brick of a volume (issue 12, item 2), on real volumes.

* A 2-brick distributed primary: one worker per brick, both into one secondary
  volume, which ends equal to the primary (gfids included).
* A replica-2 primary: one worker per brick, sharing the active/passive lock in a
  shared directory (``-o use-meta-volume=true -o meta-volume-mnt=DIR``, as
  gsyncd's meta volume): exactly one is Active; while healthy the lock never
  changes hands (an observation window, ``STREAMSYNC_FLAP_SECONDS``, 10 s in the
  suite; 300 s by hand); ``kill -9`` of the Active worker during a workload hands
  over to the Passive one within ``change-interval`` plus a few seconds, and the
  secondary ends equal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from gluster_lab import (equal_with_gfids, glusterd_running, remove_volumes, run,
                         start_volume, wait_for)
from streamsync.verify import verify

pytestmark = pytest.mark.gluster


@pytest.fixture(scope="module")
def glusterd(tmp_path_factory):
    yield from glusterd_running(tmp_path_factory)


def _volumes(host: str, tmp_path, layout: str):
    """``(volume names made, primary bricks, mounts, primary mount, secondary mount, sec)``
    for ``layout`` ``distribute`` or ``replica``."""
    tag = uuid.uuid4().hex[:6]
    pri, sec = f"ssbk{tag}p", f"ssbk{tag}s"
    bricks = [str(tmp_path / "bricks" / f"{pri}-{i}") for i in (1, 2)]
    (tmp_path / "bricks").mkdir()
    spec = ["replica", "2"] if layout == "replica" else []
    run("gluster", "--mode=script", "volume", "create", pri, *spec,
        *(f"{host}:{b}" for b in bricks), "force")
    run("gluster", "--mode=script", "volume", "create", sec,
        f"{host}:{tmp_path / 'bricks' / sec}", "force")
    for k, v in (("changelog.changelog", "on"), ("changelog.rollover-time", "3")):
        run("gluster", "volume", "set", pri, k, v)
    start_volume(pri)
    start_volume(sec)
    pm, sm = tmp_path / "pm", tmp_path / "sm"
    pm.mkdir()
    sm.mkdir()
    run("mount", "-t", "glusterfs", f"{host}:/{pri}", str(pm))
    run("mount", "-t", "glusterfs", f"{host}:/{sec}", str(sm))
    return [pri, sec], bricks, [pm, sm], str(pm), str(sm), sec


def _write(m: str, top: str, n: int) -> None:
    os.makedirs(os.path.join(m, top, "sub"))
    for i in range(n):
        with open(os.path.join(m, top, f"f{i}"), "wb") as fh:
            fh.write(os.urandom(200 + i))
    for i in range(0, n, 5):
        os.rename(os.path.join(m, top, f"f{i}"), os.path.join(m, top, "sub", f"m{i}"))
    os.unlink(os.path.join(m, top, "f1"))



def _rows(address: str, env: dict) -> list[dict]:
    p = subprocess.run([sys.executable, "-m", "streamsync", "status", "--json"],
                       capture_output=True, text=True, env=env, timeout=60)
    rows = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    return [r for r in rows if r.get("replica") == address]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_every_brick_of_a_distributed_volume_into_one_secondary(glusterd, tmp_path):
    made, bricks, mounts, pm, sm, sec = _volumes(glusterd, tmp_path, "distribute")
    address = f"{glusterd}::{sec}"
    proc = None
    try:
        _write(pm, "top", 60)
        assert all(os.listdir(os.path.join(b, "top")) for b in bricks)  # both bricks hold files
        proc = subprocess.Popen([sys.executable, "-m", "streamsync", "replicate", "--follow",
                                 "-q", "-o", "change-interval=1", *bricks, address],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: equal_with_gfids(pm, sm), "the secondary to equal the 2-brick primary",
                 timeout=120, interval=1)
        _write(pm, "later", 30)  # while both workers follow
        wait_for(lambda: equal_with_gfids(pm, sm), "the later workload", timeout=120, interval=1)
        _stop(proc)
        assert proc.returncode == 0, proc.stderr.read()[-2000:]
    finally:
        if proc is not None:
            _stop(proc)
        remove_volumes(made, mounts)


def test_replica_two_one_active_no_flapping_and_failover(glusterd, tmp_path):
    made, bricks, mounts, pm, sm, sec = _volumes(glusterd, tmp_path, "replica")
    address = f"{glusterd}::{sec}"
    meta = tmp_path / "meta"
    meta.mkdir()
    (tmp_path / "bricks.txt").write_text(f"{bricks[1]} 1\n")
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "streamsync", "replicate", "--follow", "-q",
                             "-o", "change-interval=1", "-o", "use-meta-volume=true",
                             "-o", f"meta-volume-mnt={meta}", "--subvol", "1",
                             "--bricks", str(tmp_path / "bricks.txt"), bricks[0], address],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        def roles() -> dict[str, tuple[str, int]]:
            return {r["source"]: (r.get("worker_status"), r.get("pid"))
                    for r in _rows(address, env)}

        def one_active() -> dict | None:
            r = roles()
            states = sorted(s for s, _ in r.values())
            return r if len(r) == 2 and states == ["Active", "Passive"] else None

        wait_for(one_active, "one Active and one Passive worker", timeout=60, interval=0.5)
        _write(pm, "top", 40)
        try:
            wait_for(lambda: equal_with_gfids(pm, sm), "the secondary to equal the primary", timeout=120,
                     interval=1)
        except AssertionError:  # say what differs (it found AFR's own directory once)
            raise AssertionError([str(d) for d in verify(pm, sm, gfids=True)][:10]) from None
        # a healthy Active keeps the lock: no change of hands over the window
        window = float(os.environ.get("STREAMSYNC_FLAP_SECONDS", "10"))
        holders, end = [], time.monotonic() + window
        while time.monotonic() < end:  # an observation window, sampled
            r = one_active()
            assert r is not None, roles()
            holders.append(next(src for src, (s, _) in r.items() if s == "Active"))
            time.sleep(0.5)
        changes = sum(1 for a, b in zip(holders, holders[1:]) if a != b)
        assert changes == 0, holders
        # kill -9 the Active worker during a workload: the Passive one takes over
        active, (_, pid) = next((src, v) for src, v in roles().items() if v[0] == "Active")
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        _write(pm, "after", 30)
        other = next(b for b in bricks if os.path.samefile(b, active) is False)
        wait_for(lambda: roles().get(other, ("",))[0] == "Active",
                 "the Passive worker to take over", timeout=30, interval=0.25)
        assert time.monotonic() - killed < 1 + 10  # change-interval plus a few seconds
        # the monitor starts the killed worker again: it waits as Passive
        wait_for(lambda: (r := one_active()) and r[active][0] == "Passive" and r[active][1] != pid,
                 "the killed worker back, as Passive", timeout=60, interval=0.25)
        wait_for(lambda: equal_with_gfids(pm, sm), "the secondary to equal the primary after the "
                 "failover", timeout=120, interval=1)
        stopping = time.monotonic()
        _stop(proc)
        assert proc.returncode == 0, proc.stderr.read()[-2000:]
        assert time.monotonic() - stopping < 30  # SIGTERM: the workers end their batch
    finally:
        _stop(proc)
        remove_volumes(made, mounts)
