"""``HOST::VOLUME``: mount a secondary volume as gsyncd's secondary side does.

:func:`mounted_volume` mounts ``VOLUME`` from ``HOST`` on a private directory
with ``--aux-gfid-mount --acl --client-pid=-1`` and the FUSE caches off (see
:mod:`streamsync.secondary.gfid_mount`), waits until the mount answers, yields
its path and unmounts it on exit, whatever happened. A missing GlusterFS client
or a volume that does not answer is a :class:`~streamsync.errors.ConfigError`
naming the address, with the tail of the client's own log.

>>> parse_volume_address("gluster1::backup"), parse_volume_address("/srv/replica")
(('gluster1', 'backup'), None)
>>> parse_volume_address("root@gluster1::backup") is None  # over ssh: remote.spec
True
>>> parse_volume_address("gluster1,gluster2::backup")
('gluster1,gluster2', 'backup')
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from typing import Iterator

from ..errors import ConfigError
from .gfid_mount import is_gfid_mount

__all__ = ["parse_volume_address", "volume_hosts", "mounted_volume", "clean_stale_mounts",
           "volume_uuid", "MOUNT_TIMEOUT"]

#: seconds to wait for a fresh mount to answer
MOUNT_TIMEOUT = 30.0

_HOST = r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])"
_ADDRESS = re.compile(rf"(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>{_HOST}(?:,{_HOST})*)"
                      r"::(?P<volume>[A-Za-z0-9._-]+)\Z")


def parse_volume_address(text: str | os.PathLike[str]) -> tuple[str, str] | None:
    """``(host, volume)`` for ``HOST::VOLUME``, ``None`` for anything else. ``host``
    may name several secondary nodes, ``HOST1,HOST2`` (see :func:`volume_hosts`)."""
    t = os.fspath(text)
    if "::" not in t:
        return None
    m = _ADDRESS.match(t)
    if m is None:
        raise ConfigError(f"{t}: not a volume address (expected HOST::VOLUME)")
    if m["user"]:
        return None  # USER@HOST::VOLUME: serve on HOST mounts it (remote.spec)
    return ",".join(h.strip("[]") for h in m["host"].split(",")), m["volume"]


def volume_hosts(host: str) -> list[str]:
    """The secondary nodes of a ``HOST1,HOST2`` address part, in the order given:
    the volume is fetched from the first that answers.

    >>> volume_hosts("gluster1,gluster2"), volume_hosts("gluster1")
    (['gluster1', 'gluster2'], ['gluster1'])
    """
    return [h for h in host.split(",") if h]


def _log_tail(path: str) -> str:
    try:
        with open(path, errors="replace") as fh:
            lines = [x.strip() for x in fh if " E " in x or "] E [" in x]
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""


def _me() -> str:
    """This process as ``"<pid> <start time>"`` (a pid alone may be reused)."""
    return f"{os.getpid()} {_start_time(os.getpid())}"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_alive(owner: str) -> bool:
    pid, _, start = owner.strip().partition(" ")
    return pid.isdigit() and _start_time(int(pid)) == start


def clean_stale_mounts(base: str | None = None) -> list[str]:
    """Unmount and remove the private mounts of streamsync processes that are gone
    (killed before they could unmount: ``kill -9``, a crash, a power cut);
    returns the mount points cleaned. Only directories this module made (named
    ``streamsync-<volume>-*`` with an ``owner`` file) are touched.

    >>> clean_stale_mounts("/nonexistent")
    []
    """
    base = base or tempfile.gettempdir()
    cleaned = []
    try:
        names = [n for n in os.listdir(base) if n.startswith("streamsync-")]
    except OSError:
        return cleaned
    for name in names:
        where = os.path.join(base, name)
        try:
            with open(os.path.join(where, "owner")) as fh:
                owner = fh.read()
        except OSError:
            continue  # not one of ours, or not made yet
        if _owner_alive(owner):
            continue
        mnt = os.path.join(where, "mnt")
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
            cleaned.append(mnt)
        for step in (lambda: os.unlink(os.path.join(where, "mount.log")),
                     lambda: os.rmdir(mnt), lambda: os.unlink(os.path.join(where, "owner")),
                     lambda: os.rmdir(where)):
            with contextlib.suppress(OSError):
                step()
    return cleaned


@contextlib.contextmanager
def mounted_volume(host: str, volume: str, *, timeout: float = MOUNT_TIMEOUT) -> Iterator[str]:
    """Mount ``host::volume`` on a private directory for the duration of the block
    (first cleaning up those of streamsync processes that died holding one)."""
    client = shutil.which("glusterfs")
    if client is None:
        raise ConfigError(f"{host}::{volume}: the GlusterFS client is not installed "
                          f"(apt-get install glusterfs-client)")
    clean_stale_mounts()
    where = tempfile.mkdtemp(prefix=f"streamsync-{volume}-")
    with open(os.path.join(where, "owner"), "w") as fh:
        fh.write(_me())
    mnt = os.path.join(where, "mnt")
    os.mkdir(mnt)
    log = os.path.join(where, "mount.log")
    # several nodes: the client fetches the volume from the first that answers and
    # keeps the others as backup volfile servers
    servers = [f"--volfile-server={h}" for h in volume_hosts(host)]
    argv = [client, "--aux-gfid-mount", "--acl", "--client-pid=-1", "--entry-timeout=0",
            "--attribute-timeout=0", "--negative-timeout=0", *servers,
            f"--volfile-id={volume}", f"--log-file={log}", mnt]
    mounted = False
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise ConfigError(f"{host}::{volume}: cannot mount: "
                              f"{(r.stderr.strip() or _log_tail(log) or 'glusterfs failed')[-300:]}")
        mounted = True
        deadline = time.monotonic() + timeout
        while not is_gfid_mount(mnt):
            if time.monotonic() > deadline:
                raise ConfigError(f"{host}::{volume}: the volume does not answer "
                                  f"({_log_tail(log) or 'no reply within %g s' % timeout})")
            time.sleep(0.1)
        yield mnt
    finally:
        if mounted:
            subprocess.run(["umount", mnt], capture_output=True)
            if os.path.ismount(mnt):
                subprocess.run(["umount", "-l", mnt], capture_output=True)
        # never a recursive delete here: a mount still attached would be emptied
        for step in (lambda: os.unlink(log), lambda: os.rmdir(mnt),
                     lambda: os.unlink(os.path.join(where, "owner")), lambda: os.rmdir(where)):
            with contextlib.suppress(OSError):
                step()


def volume_uuid(host: str, volume: str) -> str:
    """The id of ``volume`` as the first glusterd of ``host`` (``HOST1,HOST2``) that
    answers reports it."""
    hosts = volume_hosts(host)
    for h in hosts[:-1]:
        try:
            return _volume_uuid(h, volume)
        except ConfigError:
            continue
    return _volume_uuid(hosts[-1], volume)


def _volume_uuid(host: str, volume: str) -> str:
    import xml.etree.ElementTree as ET
    cli = shutil.which("gluster")
    if cli is None:
        raise ConfigError(f"{host}::{volume}: the gluster command is not installed "
                          f"(apt-get install glusterfs-cli)")
    try:
        r = subprocess.run([cli, f"--remote-host={host}", "volume", "info", volume, "--xml"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"{host}::{volume}: cannot ask glusterd: {exc}") from None
    try:
        vid = ET.fromstring(r.stdout).findtext(".//volume/id")
    except ET.ParseError:
        vid = None
    if r.returncode != 0 or not vid:
        why = (r.stderr.strip() or r.stdout.strip()).splitlines()
        raise ConfigError(f"{host}::{volume}: no such volume ({why[-1] if why else 'no answer'})")
    return vid

