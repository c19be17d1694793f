"""Offline analysis of changelog history: mergeable summaries, gfid->path
resolution, glusterfind-style change listings, exports, what-if replays and a
Dask adapter.

>>> from streamsync.analysis import summarize_paths
>>> summarize_paths(["tests/data/gluster-10.3/processed/ascii-delpath-on"]).records
4472
"""

from .summary import (Summary, SummaryBuilder, merge, merge_all, parse_duration, summarize,
                      summarize_changelog, summarize_journals, summarize_paths)

__all__ = ["Summary", "SummaryBuilder", "merge", "merge_all", "parse_duration", "summarize",
           "summarize_changelog", "summarize_journals", "summarize_paths"]
