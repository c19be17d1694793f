"""Prometheus metrics of streamsync workers, read from their state stores.

One collector, :class:`StateCollector`, turns what ``streamsync status`` reads
(SQLite states and gsyncd ``brick_*.status`` files) into metric families on
every scrape, through the official client library (``prometheus-client``): the
exposition format is the library's, never written by hand. The same collector
serves ``streamsync replicate --follow --metrics HOST:PORT`` (its own workers'
states) and ``streamsync metrics --listen HOST:PORT STATE...`` (workers it does
not run), so both show the same numbers ``status`` shows.

Every family carries the labels ``source`` (the brick), ``replica`` (the
secondary) and ``session`` (the state file's name). Counters (``*_total``) are
the totals the worker keeps in its state, so they survive a restart of the
exporter (not a reset of the state).

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> reg = CollectorRegistry()
>>> _ = StateCollector(lambda: [{"source": "/b1", "replica": "/r1", "state_file": "/s/b1.db",
...     "worker_status": "Active", "crawl_mode": "live", "lag": 3}], registry=reg)
>>> b'streamsync_lag_seconds{replica="/r1",session="b1",source="/b1"} 3.0' in generate_latest(reg)
True
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)
from prometheus_client.registry import Collector

from .errors import StreamsyncError
from .status import BATCH_BUCKETS, CRAWL_STATUS, WORKER_STATUSES

__all__ = ["StateCollector", "serve_metrics", "parse_listen", "state_rows"]

log = logging.getLogger("streamsync.metrics")

_LABELS = ("source", "replica", "session")
_KINDS = ("entry", "meta", "data")


def _labels(row: dict[str, Any]) -> list[str]:
    session = os.path.basename(str(row.get("state_file") or ""))
    for suffix in (".db", ".status", ".sqlite"):
        if session.endswith(suffix):
            session = session[: -len(suffix)]
    return [str(row.get("source") or ""), str(row.get("replica") or ""), session]


def _num(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def state_rows(paths: Iterable[str]) -> Callable[[], list[dict[str, Any]]]:
    """A function reading the status rows of ``paths`` afresh on each call
    (what :class:`StateCollector` calls per scrape).

    >>> rows = state_rows([])
    >>> rows()
    []
    """
    from .cli.status import collect
    paths = list(paths)
    return lambda: collect(paths) if paths else []


class StateCollector(Collector):
    """A collector of worker metrics from status rows (``rows()`` per scrape).

    >>> from prometheus_client import CollectorRegistry
    >>> c = StateCollector(lambda: [], registry=CollectorRegistry())
    >>> [m.name for m in c.collect()][:2]
    ['streamsync_worker_status', 'streamsync_crawl_mode']
    """

    def __init__(self, rows: Callable[[], list[dict[str, Any]]], *,
                 registry: CollectorRegistry | None = None) -> None:
        self.rows = rows
        if registry is not None:
            registry.register(self)

    def _read(self) -> list[dict[str, Any]]:
        try:
            return self.rows()
        except (StreamsyncError, OSError) as exc:  # a scrape must not kill the exporter
            log.warning("metrics: cannot read the worker states: %s", exc)
            return []

    def collect(self) -> Iterator[Any]:
        rows = self._read()
        fam = {
            "status": GaugeMetricFamily("streamsync_worker_status",
                                        "1 for the worker's status (gsyncd's STATUS), 0 for the others",
                                        labels=[*_LABELS, "status"]),
            "crawl": GaugeMetricFamily("streamsync_crawl_mode", "1 for the worker's crawl mode",
                                       labels=[*_LABELS, "mode"]),
            "lag": GaugeMetricFamily("streamsync_lag_seconds",
                                     "seconds behind the source: now minus the time of the oldest "
                                     "journal not yet applied, 0 when none is pending",
                                     labels=_LABELS),
            "last": GaugeMetricFamily("streamsync_last_synced_timestamp_seconds",
                                      "the sync point (data stime) as epoch seconds",
                                      labels=_LABELS),
            "pending_j": GaugeMetricFamily("streamsync_pending_journals",
                                           "journals known and not yet applied", labels=_LABELS),
            "pending": GaugeMetricFamily("streamsync_pending_ops",
                                         "ops of the running batch not yet applied (gsyncd's "
                                         "ENTRY/DATA/META)", labels=[*_LABELS, "kind"]),
            "applied": CounterMetricFamily("streamsync_ops_applied",
                                           "entry/meta ops and data files applied",
                                           labels=[*_LABELS, "kind"]),
            "by_op": CounterMetricFamily("streamsync_entry_ops_applied",
                                         "entry ops applied, by op", labels=[*_LABELS, "op"]),
            "files": CounterMetricFamily("streamsync_files_transferred",
                                         "files whose data was transferred", labels=_LABELS),
            "bytes": CounterMetricFamily("streamsync_bytes_transferred",
                                         "bytes of the files transferred", labels=_LABELS),
            "journals": CounterMetricFamily("streamsync_journals_applied",
                                            "journals applied", labels=_LABELS),
            "failures": GaugeMetricFamily("streamsync_open_failures",
                                          "open items of the failure ledger, by kind",
                                          labels=[*_LABELS, "kind"]),
            "held": GaugeMetricFamily("streamsync_held_files",
                                      "large files still changing whose data is held "
                                      "(sent once they stop; see hot-file-size)",
                                      labels=_LABELS),
            "duration": HistogramMetricFamily("streamsync_batch_duration_seconds",
                                              "seconds per batch", labels=_LABELS),
            "cp_time": GaugeMetricFamily("streamsync_checkpoint_timestamp_seconds",
                                         "the configured checkpoint (0: none)", labels=_LABELS),
            "cp_done": GaugeMetricFamily("streamsync_checkpoint_completed",
                                         "1 once the checkpoint is reached", labels=_LABELS),
            "cp_when": GaugeMetricFamily("streamsync_checkpoint_completion_timestamp_seconds",
                                         "when the checkpoint was reached (0: not yet)",
                                         labels=_LABELS),
        }
        for row in rows:
            lab = _labels(row)
            status = row.get("worker_status")
            for s in WORKER_STATUSES:
                fam["status"].add_metric([*lab, s.rstrip(".")], 1.0 if s == status else 0.0)
            mode = row.get("crawl_mode")
            for m in CRAWL_STATUS:
                fam["crawl"].add_metric([*lab, m], 1.0 if m == mode else 0.0)
            if row.get("lag") is not None:
                fam["lag"].add_metric(lab, _num(row["lag"]))
            fam["last"].add_metric(lab, _num(row.get("last_synced")))
            fam["pending_j"].add_metric(lab, _num(row.get("pending_journals")))
            totals = row.get("totals") or {}
            for k in _KINDS:
                fam["pending"].add_metric([*lab, k], _num(row.get(k)))
                fam["applied"].add_metric([*lab, k], _num(totals.get(k)))
            for op, n in sorted((totals.get("entry_by_op") or {}).items()):
                fam["by_op"].add_metric([*lab, op], _num(n))
            fam["files"].add_metric(lab, _num(totals.get("data")))
            fam["bytes"].add_metric(lab, _num(totals.get("bytes")))
            fam["journals"].add_metric(lab, _num(totals.get("changelogs")))
            kinds = row.get("open_failures_by_kind") or {}
            for k in (*_KINDS, "data-retries"):
                if k in kinds or k in _KINDS:
                    fam["failures"].add_metric([*lab, k], _num(kinds.get(k)))
            fam["held"].add_metric(lab, _num(row.get("held_files")))
            buckets = list(totals.get("duration_buckets") or [0] * len(BATCH_BUCKETS))
            if len(buckets) == len(BATCH_BUCKETS):
                fam["duration"].add_metric(
                    lab, [("+Inf" if le == float("inf") else repr(le), float(n))
                          for le, n in zip(BATCH_BUCKETS, buckets)],
                    sum_value=_num(totals.get("duration_sum")))
            configured = _num(row.get("checkpoint") or row.get("checkpoint_time"))
            fam["cp_time"].add_metric(lab, configured)
            done = row.get("checkpoint_completed") == "Yes" and configured > 0
            fam["cp_done"].add_metric(lab, 1.0 if done else 0.0)
            fam["cp_when"].add_metric(lab, _num(row.get("checkpoint_completion_time"))
                                      if done else 0.0)
        yield from fam.values()


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9101`` for IPv6, ``:9101`` for every address).

    >>> parse_listen("127.0.0.1:9101"), parse_listen(":9101")
    (('127.0.0.1', 9101), ('0.0.0.0', 9101))
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise StreamsyncError(f"--metrics/--listen {text!r}: expected HOST:PORT, "
                              "e.g. 127.0.0.1:9101")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def serve_metrics(listen: str, rows: Callable[[], list[dict[str, Any]]]
                  ) -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` for ``rows`` on ``listen`` (``HOST:PORT``) from a daemon
    thread; returns prometheus-client's ``(server, thread)``: ``server.shutdown()``
    stops it.

    >>> server, _ = serve_metrics("127.0.0.1:0", lambda: [])
    >>> server.shutdown()
    """
    host, port = parse_listen(listen)
    registry = CollectorRegistry()
    StateCollector(rows, registry=registry)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise StreamsyncError(f"cannot serve metrics on {listen}: "
                              f"{exc.strerror or exc}") from None
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server, thread
