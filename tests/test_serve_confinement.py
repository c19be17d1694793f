"""``serve`` against a hostile or unlucky client (issue 9, items 7-10): a
replica opened through a planted symlink, malformed requests (a hypothesis
fuzz of the protocol), the forced-command setup ``serve --help`` recommends
(rsync and tar through one key, over a real sshd), and set-id bits over tar."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsync.crawl.select import run_worker
from streamsync.errors import ConfigError
from streamsync.ops import EntryOp
from streamsync.records import ROOT_GFID
from streamsync.remote.forced import decide
from streamsync.remote.protocol import PROTOCOL_VERSION, dumps, loads
from streamsync.remote.server import serve
from streamsync.state import SqliteState
from streamsync.verify import verify

from test_remote import REMOTE_CMD, _journaled_brick, _state_home, sshd  # noqa: F401
from test_worker_brick import Brick

G1 = "5b1c2d3e-0000-4000-8000-00000000000a"
G2 = "5b1c2d3e-0000-4000-8000-00000000000b"


def _session(root, replica, *msgs, allowed=None):
    hello = {"hello": "streamsync", "version": PROTOCOL_VERSION, "replica": str(replica)}
    out = io.BytesIO()
    rc = serve(io.BytesIO(b"".join(json.dumps(m).encode() + b"\n" for m in (hello, *msgs))), out,
               allowed_root=None if allowed is None else str(allowed))
    return rc, [loads(line) for line in out.getvalue().splitlines()]


def _tree(path):
    out = set()
    for top, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(top, n)
            st_ = os.lstat(p)
            out.add((p, st_.st_mode, st_.st_uid, st_.st_gid))
    return out


# ------------------------------------------------------------ item 7: escape
def test_a_replica_opened_through_a_planted_symlink_is_refused(tmp_path):
    served, outside = tmp_path / "served", tmp_path / "outside"
    outside.mkdir()
    os.chmod(outside, 0o700)
    before = _tree(outside), os.stat(outside)
    plant = EntryOp("SYMLINK", G1, ROOT_GFID, "evil", stat=None, link=str(outside))
    rc, replies = _session(served, served / "r",
                           {"id": 1, "op": "apply_entries", "args": [plant.to_dict()]},
                           allowed=served)
    assert rc == 0 and replies[1]["ok"] and os.path.islink(served / "r" / "evil")
    mkdir = EntryOp("MKDIR", G2, ROOT_GFID, "made", mode=0o40777, uid=1234, gid=1234)
    meta = {"go": ".gfid/" + ROOT_GFID, "stat": {"uid": 1234, "gid": 1234, "mode": 0o40777,
                                                  "atime": 1.0, "mtime": 1.0}}
    for replica in (served / "r" / "evil", served / "r" / "evil" / "sub",
                    served / "r" / "evil" / ".." / ".." / ".." / "outside"):
        rc, replies = _session(served, replica,
                               {"id": 1, "op": "apply_entries", "args": [mkdir.to_dict()]},
                               {"id": 2, "op": "apply_meta", "args": [meta]}, allowed=served)
        assert rc == 2 and not replies[0]["ok"], replica
        assert "symlink" in replies[0]["error"] or "outside" in replies[0]["error"]
    assert (_tree(outside), os.stat(outside)) == before


# ------------------------------------------------------- item 8: protocol fuzz
_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                               max_size=4),
    max_leaves=12)
_OPS = ["apply_entries", "apply_meta", "is_data_target", "has_handle", "lstat", "entry_gfid",
        "dir_entry", "ping", "nope"]
_GOOD_ENTRY = EntryOp("CREATE", G2, ROOT_GFID, "f", mode=0o100644, uid=0, gid=0).to_dict()
_GOOD_META = {"go": ".gfid/" + G2, "stat": {"uid": 0, "gid": 0, "mode": 0o100644,
                                            "atime": 1.0, "mtime": 2.0}}


@st.composite
def _mutated(draw):
    """A valid op with one field replaced by anything."""
    base = dict(draw(st.sampled_from([_GOOD_ENTRY, _GOOD_META])))
    key = draw(st.sampled_from(sorted(base) + ["stat", "mode", "uid", "entry1", "link"]))
    base[key] = draw(_json | st.integers(min_value=2**31, max_value=2**80)
                     | st.sampled_from([float("nan"), float("inf"), -1, 2**64, "../../x"]))
    return base


_request = st.one_of(
    st.fixed_dictionaries({"id": _json, "op": st.sampled_from(_OPS), "args": _json}),
    st.builds(lambda i, op, items: {"id": i, "op": op, "args": items}, st.integers(0, 99),
              st.sampled_from(["apply_entries", "apply_meta"]),
              st.lists(_mutated() | st.sampled_from([_GOOD_ENTRY, _GOOD_META]), max_size=4)),
    _json)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(requests=st.lists(_request, min_size=1, max_size=8),
       raw=st.lists(st.binary(max_size=40), max_size=2))
def test_serve_answers_every_malformed_request_and_stays_inside(tmp_path_factory, requests, raw):
    base = tmp_path_factory.mktemp("fuzz")
    served = base / "served"
    served.mkdir()
    (base / "outside").mkdir()
    before = _tree(base / "outside"), sorted(os.listdir(base))
    hello = {"hello": "streamsync", "version": PROTOCOL_VERSION, "replica": str(served / "r")}
    # stdlib json: also integers beyond 64 bits, NaN and Infinity, as a hostile client may
    lines = [dumps(hello)] + [json.dumps(r).encode() + b"\n" for r in requests]
    lines += [b.replace(b"\n", b" ") + b"\n" for b in raw]
    out = io.BytesIO()
    rc = serve(io.BytesIO(b"".join(lines)), out, allowed_root=str(served))
    replies = [loads(x) for x in out.getvalue().splitlines()]
    assert rc in (0, 2)
    assert replies[0]["ok"]
    closed = any(isinstance(r, dict) and r.get("op") == "close" for r in requests)
    if not closed:  # one answer per line: nothing crashed, nothing went unanswered
        assert len(replies) == len(lines)
    assert (_tree(base / "outside"), sorted(os.listdir(base))) == before


def test_a_huge_mode_halfway_through_an_entry_list_applies_nothing(tmp_path):
    ok = EntryOp("MKDIR", G1, ROOT_GFID, "first", mode=0o40755, uid=0, gid=0).to_dict()
    bad = EntryOp("MKDIR", G2, ROOT_GFID, "second", mode=0o40755, uid=0, gid=0).to_dict()
    bad["mode"] = 2**70
    rc, replies = _session(tmp_path, tmp_path / "r",
                           {"id": 1, "op": "apply_entries", "args": [ok, bad]},
                           {"id": 2, "op": "ping"})
    assert rc == 0 and not replies[1]["ok"] and "mode" in replies[1]["error"]
    assert replies[2]["result"] == "pong"
    assert sorted(os.listdir(tmp_path / "r")) == [".glusterfs"]


# -------------------------------------------------- item 9: forced commands
@pytest.mark.parametrize("cmd, why", [
    ("rsync --server --sender -logDtpr . /srv/r/", "--sender"),
    ("rsync --server -logDtpr --temp-dir=/tmp . /srv/r/", "--temp-dir"),
    ("rsync --server -logDtprK . /srv/r/", "-logDtprK"),
    ("rsync --server -logDtpr . /etc/", "outside"),
    ("rsync --server -logDtpr . /srv/r/ /etc/", "expected"),
    ("sh -c 'cat /etc/shadow'", "not a streamsync"),
    ("streamsync serve --receive-tar /etc", "outside"),
    ("streamsync serve --root /", "not something"),
])
def test_forced_commands_outside_the_allow_list_are_refused(cmd, why):
    with pytest.raises(ConfigError, match=why):
        decide(cmd, "/srv", check_dest=False)


def test_an_rsync_destination_resolving_outside_the_root_is_refused(tmp_path):
    (tmp_path / "served").mkdir()
    os.symlink("/etc", tmp_path / "served" / "evil")
    with pytest.raises(ConfigError, match="resolves outside"):
        decide(f"rsync --server -logDtpr . {tmp_path}/served/evil/", str(tmp_path / "served"))


def _forced_key(sshd, served, tmp_path):
    key = tmp_path / "forced"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    line = (f'command="{REMOTE_CMD} serve --root {served}",no-pty,no-agent-forwarding,'
            f'no-port-forwarding,no-X11-forwarding {key.with_suffix(".pub").read_text().strip()}')
    with open(sshd.dir / "authorized_keys", "a") as fh:
        fh.write("\n" + line + "\n")
    opts = sshd.ssh_options.replace(f"-i {sshd.dir}/key", f"-i {key} -oIdentitiesOnly=yes")
    from streamsync.options import Options
    return lambda *extra: Options.from_pairs([f"ssh-port={sshd.port}", f"ssh-options={opts}",
                                              f"ssh-options-tar={opts}", *extra])


@pytest.mark.parametrize("engine", ["rsync", "tar"])
def test_the_recommended_forced_command_setup_replicates(sshd, tmp_path, engine):
    served = tmp_path / "served"
    served.mkdir()
    options = _forced_key(sshd, served, tmp_path)
    T = int(time.time()) - 100000
    b = _journaled_brick(tmp_path, T)
    rep = served / "rep"
    st_ = SqliteState(tmp_path / "s.sqlite")
    st_.set_data_stime((T + 14, 0))
    # the old setup hung here for good; a transfer now times out (slave-timeout)
    s = run_worker(b.root, f"127.0.0.1:{rep}", state=st_, options=options("slave-timeout=30"),
                   engine=engine, register_time=T + 60, remote_command="streamsync",
                   retry_delay=0)
    st_.close()
    assert s.open_failures == 0
    assert verify(b.root, rep) == []


def test_a_forced_key_cannot_run_anything_else(sshd, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    options = _forced_key(sshd, served, tmp_path)
    words = options().get("ssh-options").split()
    r = subprocess.run(["ssh", *words, "-p", str(sshd.port), "127.0.0.1",
                        f"touch {tmp_path}/pwned"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "forced command" in r.stderr
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------- item 10: set-id bits
@pytest.mark.skipif(os.geteuid() != 0, reason="set-id bits on other owners need root")
def test_tar_over_ssh_keeps_set_id_bits(sshd, tmp_path):
    T = int(time.time()) - 100000
    b = Brick(tmp_path / "brick")
    b.create("suid", b"#!/bin/sh\n", mode=0o4755)
    b.create("sgid", b"#!/bin/sh\n", mode=0o2755)
    b.create("plain", b"x", mode=0o640)
    b.rollover(T + 15)
    b.rollover(T + 30)
    rep = tmp_path / "rep"
    st_ = SqliteState(tmp_path / "s.sqlite")
    st_.set_data_stime((T + 14, 0))
    s = run_worker(b.root, f"127.0.0.1:{rep}", state=st_, options=sshd.options(), engine="tar",
                   register_time=T + 60, remote_command=REMOTE_CMD, retry_delay=0)
    st_.close()
    assert s.open_failures == 0
    modes = {n: stat.S_IMODE(os.lstat(rep / n).st_mode) for n in ("suid", "sgid", "plain")}
    assert modes == {"suid": 0o4755, "sgid": 0o2755, "plain": 0o640}
    assert verify(b.root, rep) == []
