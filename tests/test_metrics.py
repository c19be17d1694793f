"""Prometheus metrics (issue 10, item 2): what ``streamsync metrics`` and
``replicate --metrics`` expose, read back through a real Prometheus server's
HTTP query API; the example alert rules pass ``promtool check rules``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamsync.cli import main
from test_replicate import brick, demo_master, needs_rsync  # noqa: F401  (fixtures)
from test_worker_brick import Brick

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "..", "examples", "prometheus", "streamsync-alerts.yml")


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items()
                                  if k not in ("source", "replica", "session")))
            out[(s.name, labels)] = s.value
    return out


@needs_rsync
def test_metrics_once_equal_what_the_replicate_did(brick, tmp_path, capsys):
    replica = str(tmp_path / "replica")
    assert main(["replicate", "--json", brick, replica]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert main(["metrics", "--once", replica]) == 0
    m = _samples(capsys.readouterr().out)
    assert m[("streamsync_worker_status", (("status", "Stopped"),))] == 1
    assert m[("streamsync_worker_status", (("status", "Faulty"),))] == 0
    assert m[("streamsync_lag_seconds", ())] == 0  # every journal applied
    assert m[("streamsync_pending_journals", ())] == 0
    assert m[("streamsync_journals_applied_total", ())] == summary["changelogs"] == 11
    assert m[("streamsync_ops_applied_total", (("kind", "entry"),))] == summary["entry_ops"]
    assert m[("streamsync_files_transferred_total", ())] == summary["data_files"] > 0
    by_op = sum(v for (n, lab), v in m.items() if n == "streamsync_entry_ops_applied_total")
    assert by_op == summary["entry_ops"]
    # the demo's regular files hold this many bytes (sizes from the bundled manifest)
    manifest = os.path.join(HERE, "..", "examples", "demo-brick", "demo.manifest.jsonl")
    sizes = [json.loads(l).get("size", 0) for l in open(manifest) if '"type": "f"' in l]
    assert 0 < m[("streamsync_bytes_transferred_total", ())] <= sum(sizes) * 2
    assert m[("streamsync_batch_duration_seconds_count", ())] == summary["batches"] == 1
    assert m[("streamsync_batch_duration_seconds_bucket", (("le", "+Inf"),))] == 1
    assert m[("streamsync_open_failures", (("kind", "entry"),))] == 0
    assert m[("streamsync_last_synced_timestamp_seconds", ())] == summary["data_stime"][0]


def test_metrics_errors_are_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "streamsync", "metrics", "--listen", "nonsense",
                        str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "expected HOST:PORT" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([sys.executable, "-m", "streamsync", "metrics", "--once",
                        str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "nope" in r.stderr


def _ensure(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None and shutil.which("apt-get") is not None and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
        if subprocess.run(cmd, capture_output=True, env=env, timeout=900).returncode:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=600)
            subprocess.run(cmd, capture_output=True, env=env, timeout=900)
        path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed and cannot be installed with apt-get here")
    return path


def test_alert_rules_pass_promtool():
    promtool = _ensure("promtool", "prometheus")
    r = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 3 rules found" in r.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what, cond, timeout=90.0):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = cond()
        if last:
            return last
        time.sleep(0.2)  # polling a condition, not waiting out a duration
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def _query(port: int, expr: str) -> dict[tuple, float]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.load(r)
    except OSError:
        return {}
    return {tuple(sorted((k, v) for k, v in x["metric"].items() if k not in
                         ("__name__", "instance", "job", "source", "replica", "session"))):
            float(x["value"][1]) for x in doc["data"]["result"]}


def _rule_states(port: int) -> dict[str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5) as r:
            groups = json.load(r)["data"]["groups"]
    except OSError:
        return {}
    return {rule["name"]: rule["state"] for g in groups for rule in g["rules"]}


@needs_rsync
def test_prometheus_scrapes_a_following_replicate(tmp_path):
    prometheus = _ensure("prometheus", "prometheus")
    T = int(time.time()) - 1000
    b = Brick(tmp_path / "b")
    b.mkdir("d")
    for i in range(5):
        b.create(f"d/f{i}", b"x" * 1000)
    b.rollover(T)
    rep = tmp_path / "rep"
    mport, pport = _free_port(), _free_port()
    env = dict(os.environ, PYTHONPATH=os.path.join(HERE, ".."))
    worker = subprocess.Popen(
        [sys.executable, "-m", "streamsync", "replicate", "--follow", "--mode", "replay",
         "-o", "change-interval=1", "--metrics", f"127.0.0.1:{mport}", b.root, str(rep)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    conf = tmp_path / "prometheus.yml"
    conf.write_text(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{os.path.abspath(RULES)}"]
scrape_configs:
  - job_name: streamsync
    static_configs:
      - targets: ["127.0.0.1:{mport}"]
""")
    prom = subprocess.Popen([prometheus, f"--config.file={conf}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{pport}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        got = _wait("the first journal through Prometheus",
                    lambda: _query(pport, "streamsync_journals_applied_total").get(()) == 1)
        assert got
        assert _query(pport, "streamsync_worker_status")[(("status", "Active"),)] == 1
        assert _query(pport, 'streamsync_ops_applied_total{kind="entry"}')[
            (("kind", "entry"),)] == 6
        assert _query(pport, "streamsync_files_transferred_total")[()] == 5
        assert _query(pport, "streamsync_bytes_transferred_total")[()] == 5000
        # more work while it follows: the counters move, lag returns to 0
        b.create("d/late", b"y" * 300)
        b.rollover(T + 15)
        _wait("the second journal", lambda: _query(
            pport, "streamsync_journals_applied_total").get(()) == 2)
        _wait("the late file's bytes", lambda: _query(
            pport, "streamsync_bytes_transferred_total").get(()) == 5300)
        assert _query(pport, "streamsync_lag_seconds")[()] == 0
        assert _query(pport, "streamsync_batch_duration_seconds_count")[()] == 2
        assert _query(pport, "streamsync_open_failures")[(("kind", "entry"),)] == 0
        # the rules are loaded and none fires for a healthy worker. The journals are
        # ~1000 s old, so StreamsyncLagHigh may be pending while one waits; it turns
        # inactive at the first evaluation after the worker caught up.
        states = _wait("every rule inactive once caught up", lambda: (
            (s := _rule_states(pport)) and all(v == "inactive" for v in s.values()) and s))
        assert set(states) == {"StreamsyncWorkerFaulty", "StreamsyncLagHigh",
                               "StreamsyncOpenFailures"}
    finally:
        for p in (prom, worker):
            p.terminate()
        for p in (prom, worker):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    assert worker.returncode == 0, worker.stderr.read()
