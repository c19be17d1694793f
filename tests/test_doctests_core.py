"""Every module's docstring examples run (so they cannot drift from the code)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import streamsync

MODULES = sorted({"streamsync"} | {m.name for m in pkgutil.walk_packages(
    streamsync.__path__, "streamsync.")} - {"streamsync.__main__"})


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(Path(__file__).parent.parent)  # examples use repo-relative paths
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
