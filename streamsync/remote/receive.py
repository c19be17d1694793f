"""Receive a tar data stream into a replica, confined to its handles.

The tar engine over ssh used to pipe into a plain ``tar -x -C <replica>``
on the replica host. That tar follows whatever symlinks it finds on the way
(a client can plant them with SYMLINK ops), and GNU tar's in-place overwrite
drops set-uid/set-gid bits. ``streamsync serve --receive-tar DIR`` runs this
receiver instead: every member must be a regular file named by a handle
(``.glusterfs/xx/yy/<gfid>``) that the replica already holds as a regular file
(as rsync ``--existing``); its bytes go into that inode through a descriptor
the replica sink opened with ``O_NOFOLLOW``; then owner, mode (set-id bits
included, after the chown that clears them) and mtime are set on the same
descriptor. Anything else is refused and counted, and the exit status is 2
(retriable, like tar's partial status) when something was refused.

>>> import io, os, tarfile, tempfile
>>> from streamsync.sinks.replica import ReplicaSink
>>> sink = ReplicaSink(tempfile.mkdtemp())
>>> buf = io.BytesIO()
>>> with tarfile.open(fileobj=buf, mode="w") as t:
...     t.addfile(tarfile.TarInfo("../escape"), io.BytesIO(b""))
>>> _ = buf.seek(0)
>>> receive_tar(buf, sink)
TarReceipt(written=0, refused=1)
>>> sink.close()
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
from typing import Any, BinaryIO, NamedTuple

__all__ = ["receive_tar", "TarReceipt"]

log = logging.getLogger("streamsync.receive")

_HANDLE = re.compile(r"(?:\./)?\.glusterfs/([0-9a-f]{2})/([0-9a-f]{2})/"
                     r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\Z")
_CHUNK = 1 << 20


class TarReceipt(NamedTuple):
    """What :func:`receive_tar` did: files written, members refused."""

    written: int
    refused: int

    @property
    def returncode(self) -> int:
        """0 when everything was taken, 2 (retriable) when something was refused."""
        return 2 if self.refused else 0


def _gfid_of(name: str) -> str | None:
    m = _HANDLE.match(name)
    if m is None or m[3][0:2] != m[1] or m[3][2:4] != m[2]:
        return None
    return m[3]


def _write(fd: int, src: BinaryIO) -> None:
    os.ftruncate(fd, 0)
    while True:
        chunk = src.read(_CHUNK)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]


def _set_attrs(fd: int, member: tarfile.TarInfo, chown: bool) -> None:
    if chown:
        os.fchown(fd, member.uid, member.gid)  # clears set-id bits: chmod after
    os.fchmod(fd, member.mode & 0o7777)
    st = os.fstat(fd)
    os.utime(fd, ns=(st.st_atime_ns, int(member.mtime * 1e9)))


def receive_tar(stream: BinaryIO, sink: Any) -> TarReceipt:
    """Extract the tar ``stream`` into the replica of ``sink`` (module docstring)."""
    written = refused = 0
    chown = bool(getattr(sink, "chown", os.geteuid() == 0))
    try:
        tar = tarfile.open(fileobj=stream, mode="r|*")
    except tarfile.TarError as exc:
        log.error("not a tar stream: %s", exc)
        return TarReceipt(0, 1)
    with tar:
        try:
            for member in tar:
                gfid = _gfid_of(member.name)
                if gfid is None or not member.isreg():
                    log.error("refused tar member %r: not a regular file at a handle path",
                              member.name)
                    refused += 1
                    continue
                fd = sink.open_data(gfid)
                if fd is None:
                    log.error("refused tar member %r: the replica holds no regular file "
                              "for %s", member.name, gfid)
                    refused += 1
                    continue
                try:
                    src = tar.extractfile(member)
                    assert src is not None  # a regular member always has data
                    _write(fd, src)
                    _set_attrs(fd, member, chown)
                    written += 1
                except OSError as exc:
                    log.error("%s: %s", member.name, exc)
                    refused += 1
                finally:
                    os.close(fd)
        except (tarfile.TarError, EOFError) as exc:
            log.error("tar stream cut short: %s", exc)
            refused += 1
    return TarReceipt(written, refused)
