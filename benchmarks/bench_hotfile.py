"""Bytes sent for a large file appended across many consecutive journals.

Run: ``.venv/bin/python -m pytest benchmarks/bench_hotfile.py --benchmark-only -s``

A live worker follows a journaled brick (the test brick of
``tests/test_worker_brick.py``) into a local replica, one journal per live turn:
the worker's injected ``sleep`` appends ``SIZE / JOURNALS`` bytes to one file and
rolls a journal over, as a busy brick would between two change intervals. The
data engines' ``transfer`` is wrapped to add up the size of every file at the
moment it is handed over (what tar reads; rsync's own wire bytes can be less
when it finds blocks to reuse). The figure is that sum over the file's final
size, for the tar and the rsync engine with the default hold of hot files
(:mod:`streamsync.hold`), and for tar with holding off (``hot-file-size=0``:
gsyncd's behaviour, one whole send per journal), the latter at ``SIZE / 16`` by
default since it moves ~25x the data (the ratio does not depend on the size;
``BENCH_HOT_FULL_REFERENCE=1`` runs it at full size).

Sizes: ``BENCH_HOT_SIZE`` (bytes, default 1 GiB), ``BENCH_HOT_JOURNALS`` (50).
Goal (issue "drop-in", item 7): at most 1.2x the final size with tar.
"""

from __future__ import annotations

import collections
import os
import shutil
import sys
import threading
import time

import pytest

from streamsync.crawl.select import run_worker
from streamsync.options import Options
from streamsync.sinks.rsync import RsyncEngine
from streamsync.sinks.tar import TarEngine
from streamsync.verify import verify

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from test_worker_brick import Brick  # noqa: E402

SIZE = int(os.environ.get("BENCH_HOT_SIZE", str(1 << 30)))
JOURNALS = int(os.environ.get("BENCH_HOT_JOURNALS", "50"))
T0 = 1700000015

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None or shutil.which("tar") is None,
                                reason="rsync and tar are needed")


def _run(tmp: str, engine: str, options: list[str], size: int) -> dict[str, float]:
    """One live run; returns bytes handed over / final size, and the seconds."""
    b = Brick(os.path.join(tmp, "b"))
    replica = os.path.join(tmp, "r")
    chunk = b"\x5a" * (size // JOURNALS)
    g = b.create("big", chunk)
    b.rollover(T0)
    handle = os.path.join(b.root, ".glusterfs", g[:2], g[2:4], g)
    handed: dict[str, int] = collections.Counter()
    stop = threading.Event()
    left = [JOURNALS - 1]
    idle = [0]

    def sleep(_seconds: float) -> None:
        if left[0]:
            left[0] -= 1
            b.write("big", chunk, append=True)
            b.rollover(T0 + JOURNALS - left[0])
        else:
            idle[0] += 1
            if idle[0] > 1:
                stop.set()

    originals = {cls: cls.transfer for cls in (TarEngine, RsyncEngine)}

    def counting(cls):
        def transfer(self, gfids):
            if g in gfids:
                handed["bytes"] += os.stat(handle).st_size
                handed["sends"] += 1
            return originals[cls](self, gfids)
        return transfer

    for cls in originals:
        cls.transfer = counting(cls)
    try:
        t = time.perf_counter()
        run_worker(b.root, replica, mode="live", follow=True, engine=engine,
                   options=Options.from_pairs(["change-interval=0", *options]),
                   state_path=os.path.join(tmp, "state.sqlite"), stop=stop, sleep=sleep)
        seconds = time.perf_counter() - t
    finally:
        for cls, fn in originals.items():
            cls.transfer = fn
    final = os.path.getsize(b.path("big"))
    assert verify(b.root, replica) == []
    shutil.rmtree(tmp)
    return {"ratio": handed["bytes"] / final, "sends": handed["sends"], "seconds": seconds,
            "final": final}


def test_hot_file_bytes_sent(benchmark, tmp_path):
    ref_size = SIZE if os.environ.get("BENCH_HOT_FULL_REFERENCE") else max(SIZE // 16, JOURNALS)
    # rsync is handed files over 1 MiB (its in-process lane would copy the rest)
    runs = [("tar", [], SIZE), ("rsync", ["copy-small-files=1048576"], SIZE),
            ("tar", ["hot-file-size=0"], ref_size)]
    out = {}

    def once():
        for i, (engine, opts, size) in enumerate(runs):
            out[(engine, tuple(opts))] = _run(str(tmp_path / f"run{i}"), engine, opts, size)

    benchmark.pedantic(once, rounds=1, iterations=1)
    print(f"\n{JOURNALS} journals, final size {SIZE / (1 << 20):.0f} MiB "
          f"(reference at {ref_size / (1 << 20):.0f} MiB):")
    for (engine, opts), r in out.items():
        label = f"{engine}{' ' + ' '.join(opts) if opts else ''}"
        print(f"  {label:24s} sent {r['ratio']:6.2f}x the final size in {r['sends']:.0f} "
              f"transfers, {r['seconds']:.1f} s")
        benchmark.extra_info[label] = {k: round(v, 3) for k, v in r.items()}
    assert out[("tar", ())]["ratio"] <= 1.2
