"""The docstring examples of the analysis modules and their CLI are true."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

MODULES = ["streamsync.analysis", "streamsync.analysis.summary", "streamsync.analysis.resolve",
           "streamsync.analysis.changes", "streamsync.analysis.export",
           "streamsync.analysis.whatif", "streamsync.analysis.dask",
           "streamsync.analysis._input", "streamsync.analysis._cli_common"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, monkeypatch):
    monkeypatch.chdir(Path(__file__).parent.parent)  # examples use repo-relative paths
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
