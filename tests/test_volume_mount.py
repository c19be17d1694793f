"""Private mounts of HOST::VOLUME secondaries outlive a killed worker; the next
mount cleans up after the dead, never after the living."""

from __future__ import annotations

import os
import subprocess
import sys

from streamsync.secondary.volume_mount import _me, clean_stale_mounts


def _made(base, name: str, owner: str | None) -> str:
    where = os.path.join(base, name)
    os.makedirs(os.path.join(where, "mnt"))
    if owner is not None:
        with open(os.path.join(where, "owner"), "w") as fh:
            fh.write(owner)
    with open(os.path.join(where, "mount.log"), "w") as fh:
        fh.write("log\n")
    return where


def test_only_the_directories_of_dead_owners_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    gone = _made(tmp_path, "streamsync-vol-dead", f"{dead} 12345")
    reused = _made(tmp_path, "streamsync-vol-reused", f"{os.getpid()} 1")  # pid reused
    alive = _made(tmp_path, "streamsync-vol-alive", _me())
    foreign = _made(tmp_path, "streamsync-vol-noowner", None)
    other = _made(tmp_path, "someone-else", f"{dead} 12345")
    assert clean_stale_mounts(str(tmp_path)) == []  # nothing was mounted there
    assert not os.path.exists(gone) and not os.path.exists(reused)
    for kept in (alive, foreign, other):
        assert os.path.isdir(os.path.join(kept, "mnt"))
