"""The Dask adapter equals the single-process summary (local schedulers and a
distributed LocalCluster with worker processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamsync.analysis._input import iter_journals
from streamsync.analysis.dask import journal_bag, summarize_dask
from streamsync.analysis.summary import summarize_paths

DATA = Path(__file__).parent / "data" / "gluster-10.3"
SOURCES = [str(DATA / "raw" / "ascii-delpath-on"), str(DATA / "raw" / "binary-delpath-off")]


@pytest.fixture(scope="module")
def single():
    return summarize_paths(SOURCES, bucket="10s", data_stime=1795467300)


@pytest.mark.parametrize("scheduler,npartitions", [
    ("sync", 1), ("sync", 3), ("sync", 17), ("threads", 1), ("threads", 3), ("threads", 17),
    ("processes", 3)])
def test_local_schedulers_equal_single_process(single, scheduler, npartitions):
    s = summarize_dask(SOURCES, bucket="10s", data_stime=1795467300,
                       npartitions=npartitions, scheduler=scheduler)
    assert s == single


def test_bag_partitions_cover_every_journal():
    journals = list(iter_journals(SOURCES))
    bag = journal_bag(SOURCES, npartitions=4)
    assert bag.npartitions == 4
    assert bag.compute(scheduler="sync") == journals
    assert summarize_dask([], scheduler="sync").changelogs == 0


def test_distributed_local_cluster(single):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        s = summarize_dask(SOURCES, bucket="10s", data_stime=1795467300, npartitions=6,
                           scheduler=client)
        # and with the client as the default scheduler
        s2 = summarize_dask(SOURCES, bucket="10s", data_stime=1795467300, npartitions=5)
    assert s == single
    assert s2 == single


@pytest.mark.parametrize("scheduler", ["sync", "processes"])
def test_progress_adds_up_the_partitions(single, scheduler):
    seen: list[int] = []
    s = summarize_dask(SOURCES, bucket="10s", data_stime=1795467300, npartitions=7,
                       scheduler=scheduler, progress=seen.append)
    assert s == single
    assert seen and seen[-1] == single.changelogs and seen == sorted(set(seen)), seen
