"""The library as a notebook user meets it (issue 10, item 6): every public
function of the user-facing modules shows an example, the README's Python
snippets run as written, and the notebook imports public modules only."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: the modules a script or notebook imports
USER_FACING = ["streamsync.pipeline", "streamsync.discover", "streamsync.decode",
               "streamsync.parse", "streamsync.replicate", "streamsync.verify",
               "streamsync.times", "streamsync.analysis", "streamsync.analysis.summary",
               "streamsync.analysis.export", "streamsync.analysis.changes",
               "streamsync.analysis.whatif", "streamsync.analysis.dask",
               "streamsync.analysis.resolve", "streamsync.analysis.shard",
               "streamsync.analysis.report", "streamsync.crawl.select"]


@pytest.mark.parametrize("name", USER_FACING)
def test_every_public_function_has_an_example(name):
    module = importlib.import_module(name)
    missing = [n for n in module.__all__
               if inspect.isfunction(f := getattr(module, n))
               and ">>>" not in (inspect.getdoc(f) or "")]
    assert not missing, f"{name}: no example in the docstring of {missing}"


def _readme_snippets() -> list[str]:
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_readme_has_python_snippets():
    assert len(_readme_snippets()) >= 2


@pytest.mark.parametrize("index", range(len(_readme_snippets())))
def test_each_readme_snippet_runs_as_written(index, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    exec(compile(_readme_snippets()[index], f"README.md python snippet {index + 1}", "exec"), {})
    assert capsys.readouterr().out  # each prints what it found


def test_the_notebook_imports_public_modules_only():
    nb = json.load(open(os.path.join(REPO, "notebooks", "analysis.ipynb"), encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    imports = re.findall(r"^\s*(?:from|import)\s+(streamsync[\w.]*)", code, re.M)
    assert imports and not [m for m in imports if any(p.startswith("_") for p in m.split("."))]


def test_history_says_what_its_status_means():
    from streamsync.discover import HistoryStatus, history
    h = history(os.path.join(REPO, "tests", "data", "gluster-10.3", "raw", "ascii-delpath-on"),
                1795467010, 1795467030)
    assert h.status is HistoryStatus.OK and h.status.name == "OK"
    assert history("/nonexistent", 1).status is HistoryStatus.UNAVAILABLE
