"""A real GlusterFS on loopback for the ``gluster``-marked tests.

:func:`glusterd_running` makes sure a ``glusterd`` answers (installing GlusterFS
with apt-get and starting ``glusterd -N`` bound to 127.0.0.1 when needed, as
``../shared/lab/gluster/setup.sh`` does) and yields the host name to use in
brick specs; it calls ``pytest.skip`` with the reason only when GlusterFS cannot
be installed or started. :func:`run` runs a command and raises with its stderr.

Used by ``test_gluster_integration.py`` and ``test_mountview_gluster.py``::

    @pytest.fixture(scope="module")
    def glusterd(tmp_path_factory):
        yield from glusterd_running(tmp_path_factory)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from typing import Iterator

import pytest

GLUSTERD_VOL = "/etc/glusterfs/glusterd.vol"


def run(*argv, timeout=120, check=True, env=None) -> subprocess.CompletedProcess:
    """Run ``argv``; raise RuntimeError with the tail of stderr when it fails and ``check``."""
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} -> {p.returncode}: {p.stderr.strip()[-500:]}")
    return p


def equal_with_gfids(primary: str, secondary: str) -> bool:
    """Whether ``verify`` finds the two trees equal, gfids included (a tree still
    being written or unmounted under it counts as not equal yet)."""
    from streamsync.verify import verify
    try:
        return not verify(primary, secondary, gfids=True)
    except OSError:
        return False


def wait_for(condition, what: str, *, timeout: float = 60.0, interval: float = 0.1):
    """Poll ``condition()`` until it returns something true and return that; fail
    naming ``what`` after ``timeout`` seconds. (Waits for a condition, not a duration.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def unmount(path) -> None:
    """Unmount a GlusterFS mount a test made; lazily when something still holds
    it (a process the test started, not yet gone), so no mount outlives the test."""
    if run("umount", str(path), check=False).returncode != 0:
        run("umount", "-l", str(path), check=False)


def remove_volumes(volumes, mounts=(), session: tuple[str, str] | None = None) -> None:
    """Tear down what a test made, in order, each step whatever the others did:
    the gsyncd ``session`` (primary, secondary), the ``mounts`` (last made first),
    then the ``volumes``."""
    if session is not None:
        run("bash", GSYNCD_SESSION, "stop", *session, check=False, timeout=300)
    for m in reversed(list(mounts)):
        unmount(m)
    for v in volumes:
        run("gluster", "--mode=script", "volume", "stop", v, "force", check=False)
        run("gluster", "--mode=script", "volume", "delete", v, check=False)


def bricks_online(vol: str) -> bool:
    """True when every brick process of ``vol`` is online (``volume status --xml``)."""
    p = run("gluster", "volume", "status", vol, "--xml", check=False, timeout=30)
    if p.returncode != 0 or "<node>" not in p.stdout:
        return False
    import xml.etree.ElementTree as ET
    try:
        nodes = ET.fromstring(p.stdout).iter("node")
        states = [n.findtext("status") for n in nodes if (n.findtext("path") or "").startswith("/")]
    except ET.ParseError:
        return False
    return bool(states) and all(s == "1" for s in states)


def start_volume(vol: str) -> None:
    """``gluster volume start`` and wait until its bricks are online."""
    run("gluster", "volume", "start", vol)
    wait_for(lambda: bricks_online(vol), f"the bricks of {vol} to come online")


def journaled(brick: str, fop: str, name: str) -> int | None:
    """The stamp of the first published (rolled-over) journal of ``brick`` holding an
    entry record ``fop`` of ``name``, else ``None``."""
    from streamsync.discover import discover, read_changelog
    from streamsync.errors import StreamsyncError
    try:
        for cl in discover(brick, allow_empty=True):
            for r in read_changelog(cl):
                if r.TYPE == "E" and r.fop == fop and r.bname == name:
                    return cl.ts
    except (StreamsyncError, OSError):  # a journal being renamed into place
        return None
    return None


def wait_journaled(brick: str, fop: str, name: str, *, timeout: float = 60.0) -> int:
    """Wait until a published journal of ``brick`` holds ``fop name``; its stamp."""
    return wait_for(lambda: journaled(brick, fop, name),
                    f"a published journal of {brick} with {fop} {name!r}", timeout=timeout)


def pool_ok() -> bool:
    """True when a glusterd answers ``gluster pool list``."""
    try:
        return run("gluster", "pool", "list", timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def glusterd_running(tmp_path_factory) -> Iterator[str]:
    """Generator body for a module fixture: yields the host name; stops the glusterd it started."""
    if os.geteuid() != 0:
        pytest.skip("GlusterFS cannot be started: needs root (glusterd, volume, FUSE mount)")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("GlusterFS cannot be mounted: no /dev/fuse in this machine")
    if shutil.which("glusterd") is None:
        if shutil.which("apt-get") is None:
            pytest.skip("GlusterFS is not installed and apt-get is not available to install it")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-q", "glusterfs-server", "glusterfs-client", "attr"]
        p = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
        if p.returncode != 0:  # a fresh machine may have no package lists yet
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=600)
            p = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
        if p.returncode != 0 or shutil.which("glusterd") is None:
            pytest.skip(f"GlusterFS cannot be installed: apt-get said {p.stderr.strip()[-300:]}")
    host = socket.gethostname()
    try:
        addr = socket.gethostbyname(host)
    except OSError:
        addr = ""
    if not addr.startswith("127."):
        pytest.skip(f"GlusterFS needs the host name {host!r} to resolve to 127.x (got {addr!r})")
    started = None
    if not pool_ok():
        with open(GLUSTERD_VOL) as fh:
            conf = fh.read()
        if "transport.socket.bind-address" not in conf:
            conf = conf.replace("    option max-port",
                                "    option transport.socket.bind-address 127.0.0.1\n"
                                "    option max-port", 1)
            with open(GLUSTERD_VOL, "w") as fh:
                fh.write(conf)
        logdir = tmp_path_factory.mktemp("glusterd")
        started = subprocess.Popen(["glusterd", "-N", "--log-level", "INFO"],
                                   stdout=open(logdir / "out", "w"), stderr=subprocess.STDOUT)
        for _ in range(60):
            if pool_ok():
                break
            time.sleep(0.5)
        else:
            started.kill()
            pytest.skip("GlusterFS cannot be started: glusterd did not answer within 30 s "
                        f"(see {logdir / 'out'})")
    yield host
    if started is not None:
        started.terminate()
        try:
            started.wait(timeout=20)
        except subprocess.TimeoutExpired:
            started.kill()


def other_rsync(tmp_path_factory) -> str:
    """The other rsync Debian 12 ships, as a binary to name in ``rsync-command``:
    3.2.7 (bookworm main) when 3.5.0 (bookworm-security) is installed, and the
    other way round; fetched with ``apt-get download`` (a package registry)."""
    import glob
    have = subprocess.run(["rsync", "--version"], capture_output=True, text=True).stdout
    want = "3.2.7-1+deb12u6" if "version 3.5" in have else "3.5.0+ds1-0+deb12u1"
    where = tmp_path_factory.mktemp("rsync-alt")
    p = subprocess.run(["apt-get", "download", f"rsync={want}"], cwd=where,
                       capture_output=True, text=True, timeout=300)
    debs = glob.glob(str(where / "rsync_*.deb"))
    if p.returncode != 0 or not debs:
        pytest.fail(f"cannot fetch rsync {want} with apt-get download: {p.stderr.strip()[-300:]}")
    run("dpkg-deb", "-x", debs[0], str(where / "root"))
    return str(where / "root" / "usr" / "bin" / "rsync")



#: scripts/gsyncd_session.sh: a real gsyncd session between two volumes of this host
GSYNCD_SESSION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts",
                              "gsyncd_session.sh")
#: where rsync 3.2.7 is put for gsyncd's secondary side while a session runs
SHADOW_RSYNC = "/usr/local/bin/rsync"


@contextlib.contextmanager
def gsyncd_ready(work, tmp_path_factory) -> Iterator[dict]:
    """What a gsyncd session on this host needs, for the block: sshd on
    127.0.0.1:22 (skips when the port is taken), and, when the installed rsync is
    Debian's 3.5.0 (which, as gsyncd's receiver, leaves every file empty and says
    nothing), 3.2.7 first in sshd's PATH (gsyncd's forced command runs "rsync" by
    name). Yields the environment for ``gsyncd_session.sh create``."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 22)) == 0:
            pytest.skip("a gsyncd session needs port 22 of 127.0.0.1, which is taken")
    env = dict(os.environ)
    shadowed = False
    have = subprocess.run(["rsync", "--version"], capture_output=True, text=True).stdout
    if "version 3.5" in have:
        env["RSYNC"] = other_rsync(tmp_path_factory)
        if not os.path.exists(SHADOW_RSYNC):
            shutil.copy2(env["RSYNC"], SHADOW_RSYNC)
            shadowed = True
    run("bash", GSYNCD_SESSION, "sshd", str(work))
    try:
        yield env
    finally:
        run("bash", GSYNCD_SESSION, "sshd-stop", str(work), check=False)
        if shadowed:
            os.unlink(SHADOW_RSYNC)
