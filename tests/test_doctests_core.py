"""The docstring examples of the core modules run (so they cannot drift from the code)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["streamsync", "streamsync.records", "streamsync.parse", "streamsync.escaping",
           "streamsync.fops", "streamsync.ops", "streamsync.errors", "streamsync.decode",
           "streamsync.encode", "streamsync.discover", "streamsync.snapshot"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
