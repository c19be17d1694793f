"""``streamsync failures`` (issue 10, item 1): the ledger an operator can read.

A replica whose root is immutable (chattr +i) takes none of the demo brick's
entries: the ledger then holds entry rows (EPERM) and the data and metadata
owed behind them. The listing must show each row with its path on the source,
its errno by name and text and what the object still owes; filters select;
``--forget`` needs ``--yes`` and resolves without applying."""

from __future__ import annotations

import os

import orjson
import pytest

from streamsync.cli import main
from streamsync.target import default_state_path
from streamsync.state import SqliteState

from test_nothing_lost import _immutable, root_only
from test_replicate import brick, demo_master, needs_rsync  # noqa: F401  (fixtures)


@pytest.fixture
def failed(brick, tmp_path, capsys):
    replica = str(tmp_path / "replica")
    with _immutable(replica):
        assert main(["replicate", "-q", brick, replica]) == 1
    capsys.readouterr()
    st = SqliteState(default_state_path(brick, replica))
    rows = st.failures()
    st.close()
    assert rows
    return brick, replica, rows


@needs_rsync
@root_only
def test_the_listing_names_path_errno_and_what_is_owed(failed, capsys):
    brick, replica, rows = failed
    assert main(["failures", replica]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["ID", "FIRST", "SEEN"] and len(out) == len(rows) + 1
    entry = [line for line in out if " entry " in line]
    # under the immutable root: EPERM; below a directory that could not be made: ENOENT
    assert "EPERM (Operation not permitted)" in entry[0]
    assert all("EPERM (Operation not permitted)" in line
               or "ENOENT (No such file or directory)" in line for line in entry)
    # a file under the root: its entry, data and meta are owed, and its path is shown
    files = [r for r in rows if r.kind == "data"]
    assert files
    g = files[0].gfid
    [line] = [x for x in out if g in x and " data " in x]
    assert " entry,data" in line
    assert main(["failures", "--json", "--kind", "data", replica]) == 1
    item = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()
            if orjson.loads(x)["gfid"] == g][0]
    handle = os.path.join(brick, ".glusterfs", g[:2], g[2:4], g)
    assert item["path"] and os.path.samefile(os.path.join(brick, item["path"]), handle)


@needs_rsync
@root_only
def test_json_lines_and_filters(failed, capsys):
    brick, replica, rows = failed
    assert main(["failures", "--json", replica]) == 1
    items = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [i["id"] for i in items] == [r.id for r in rows]
    assert {"first_seen", "changelog", "kind", "op", "gfid", "path", "errno", "errno_name",
            "errno_text", "owed", "attempts", "resolved"} <= set(items[0])
    assert main(["failures", "--json", "--kind", "data", replica]) == 1
    data = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert data and {i["kind"] for i in data} == {"data"}
    assert main(["failures", "--json", "--errno", "EPERM", replica]) == 1
    eperm = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert eperm and {i["errno_name"] for i in eperm} == {"EPERM"}
    assert main(["failures", "--since", "2100-01-01T00:00", replica]) == 0
    assert capsys.readouterr().out == "no failures\n"
    with pytest.raises(SystemExit) as usage:  # argparse: one line and exit 2
        main(["failures", "--errno", "NOTANERRNO", replica])
    assert usage.value.code == 2 and "NOTANERRNO" in capsys.readouterr().err


@needs_rsync
@root_only
def test_forget_needs_yes_then_resolves_without_applying(failed, capsys):
    brick, replica, rows = failed
    assert main(["failures", "--forget", replica]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main(["failures", "--kind", "meta", "--forget", "--yes", replica]) == 0
    n_meta = sum(r.kind == "meta" for r in rows)
    assert f"forgot {n_meta} open item" in capsys.readouterr().err
    assert main(["failures", "--json", "--kind", "meta", replica]) == 0
    assert capsys.readouterr().out == ""
    assert main(["failures", "--json", "--all", "--kind", "meta", replica]) == 0
    resolved = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(resolved) == n_meta and all(i["resolved"] for i in resolved)
    assert os.path.isdir(replica)


def test_a_path_without_states_is_one_line_exit_2(tmp_path, capsys):
    assert main(["failures", str(tmp_path / "nothing-here")]) == 2
    assert "nothing-here" in capsys.readouterr().err


@needs_rsync
def test_a_faulty_worker_says_why_and_on_which_journal(brick, tmp_path, capsys):
    from test_replicate import _fake_rsync
    replica = str(tmp_path / "replica")
    bad = _fake_rsync(tmp_path, 12)
    assert main(["replicate", "-q", "-o", f"rsync-command={bad}", brick, replica]) == 2
    capsys.readouterr()
    assert main(["status", replica]) == 1  # a Faulty worker
    [line] = [x for x in capsys.readouterr().out.splitlines() if "Faulty since" in x]
    assert brick in line and " on CHANGELOG." in line
    assert "rsync exited with status 12: rsync: injected failure" in line
    main(["failures", replica])
    assert "Faulty since" in capsys.readouterr().err
    # a run that works clears it
    assert main(["replicate", "-q", brick, replica]) == 0
    capsys.readouterr()
    assert main(["status", replica]) == 0
    assert "Faulty" not in capsys.readouterr().out


@needs_rsync
@root_only
def test_retry_requeues_just_the_listed_items(failed, capsys):
    import subprocess
    brick, replica, rows = failed
    subprocess.run(["chattr", "-i", replica], check=True)  # the cause is gone
    # only the entry items: the data and meta rows stay open
    assert main(["failures", "--kind", "entry", "--retry", replica]) == 1
    n_entry = sum(r.kind == "entry" for r in rows)
    assert "items resolved" in capsys.readouterr().err
    st = SqliteState(default_state_path(brick, replica))
    left = st.failures()
    st.close()
    assert {r.kind for r in left} <= {"data", "meta"} and left
    assert len([r for r in left if r.kind == "entry"]) == 0 < n_entry
    assert main(["failures", "--retry", replica]) == 0
    capsys.readouterr()
    from streamsync.verify import verify
    assert verify(brick, replica) == []
