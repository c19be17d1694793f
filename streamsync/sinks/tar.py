"""The tar data engine (gsyncd's ``tarssh``, spec section 5.3).

``tar --sparse -cf - --files-from -`` in the source brick root (handle names,
newline-terminated) piped into ``tar --overwrite -xf - -C <replica>`` locally,
or over ssh (``host:path`` destination) into ``streamsync serve --receive-tar
<path>`` (:mod:`streamsync.remote.receive`: confined to the replica's handles,
set-id bits kept). ``--overwrite`` opens an
existing file with ``O_TRUNC``, keeping the inode, so the replica's hard links
see the new bytes. Like gsyncd's tarssh, xattrs and ACLs are not carried. Exit status 2 is retriable; the status returned is the
extracting side's, or the creating side's when extraction succeeded (tar -c
exits 2 when a source file vanished: retried minus the vanished files).

>>> TarEngine("/b", "/r").extract_command()
['tar', '--overwrite', '--numeric-owner', '--record-size=128K', '-xf', '-', '-C', '/r']
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import threading
from typing import Any, Sequence

from ..errors import SyncError
from .engine import TransferResult, option_value
from .replica import handle_relpath

__all__ = ["TarEngine", "PARTIAL_CODES"]

#: tar exit codes treated as retriable
PARTIAL_CODES = frozenset({2})


_opt = option_value


class TarEngine:
    """tar from ``source_root`` into ``dest`` (local dir or ``host:path``)."""

    name = "tar"

    def __init__(self, source_root: str, dest: str, options: Any = None, *,
                 follow_links: bool = False, remote_command: str = "streamsync",
                 gfid_dest: bool = False) -> None:
        self.source_root = os.fspath(source_root)
        self.dest = os.fspath(dest)
        self.options = options
        self.follow_links = follow_links
        #: ``dest`` is an aux-gfid mount: each handle is extracted into ``.gfid/<gfid>``
        self.gfid_dest = gfid_dest
        #: the streamsync command on a remote destination's host
        self.remote_command = remote_command

    def is_partial(self, code: int) -> bool:
        return code in PARTIAL_CODES

    def create_command(self) -> list[str]:
        argv = ["tar", "--sparse", "--numeric-owner", "--record-size=128K", "-cf", "-"]
        if self.follow_links:
            argv.append("--dereference")
        return argv + ["--files-from", "-"]

    def extract_command(self) -> list[str]:
        head, sep, path = self.dest.partition(":")
        tar_x = ["tar", "--overwrite", "--numeric-owner", "--record-size=128K", "-xf", "-"]
        if sep and "/" not in head:
            ssh = [*shlex.split(_opt(self.options, "ssh-command", "ssh")),
                   *shlex.split(_opt(self.options, "ssh-options-tar", "") or ""),
                   "-p", str(_opt(self.options, "ssh-port", 22)), head]
            # the remote side is streamsync's confined receiver, not a plain tar -x
            # (which follows symlinks a client planted and drops set-id bits)
            return ssh + [shlex.join([*shlex.split(self.remote_command), "serve",
                                      "--receive-tar", path])]
        if self.gfid_dest:
            # .glusterfs/xx/yy/<gfid> -> .gfid/<gfid>: written in place through the
            # gfid-access path (--overwrite truncates the existing file)
            tar_x.append(r"--transform=s,^\.glusterfs/[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/,.gfid/,")
        return tar_x + ["-C", self.dest]

    def transfer(self, gfids: Sequence[str]) -> TransferResult:
        if not gfids:
            return TransferResult(0, "", 0)
        names = b"".join(os.fsencode(handle_relpath(g)) + b"\n" for g in gfids)
        try:
            create = subprocess.Popen(self.create_command(), cwd=self.source_root,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
            extract = subprocess.Popen(self.extract_command(), stdin=create.stdout,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as exc:
            raise SyncError(f"cannot run tar: {exc}") from exc
        assert create.stdout is not None and create.stdin is not None
        create.stdout.close()  # extract owns the read end now
        errs: dict[str, bytes] = {}

        def drain(name: str, stream: Any) -> None:
            errs[name] = stream.read()

        t = threading.Thread(target=drain, args=("c", create.stderr))
        t.start()
        try:
            create.stdin.write(names)
        except BrokenPipeError:
            pass
        finally:
            create.stdin.close()
        xerr = extract.stderr.read() if extract.stderr else b""
        xcode = extract.wait()
        ccode = create.wait()
        t.join()
        stderr = (errs.get("c", b"") + xerr).decode("utf-8", "replace")
        code = xcode if xcode != 0 else ccode
        if xcode in (0, 2) and not self._remote():
            self._restore_setid_bits(gfids)
        return TransferResult(code, stderr, len(gfids))

    def _remote(self) -> bool:
        head, sep, _ = self.dest.partition(":")
        return bool(sep) and "/" not in head

    def _restore_setid_bits(self, gfids: Sequence[str]) -> None:
        """Put back set-uid/set-gid bits GNU tar drops when extracting in place.

        ``tar --overwrite`` onto an existing file whose mode already matches
        skips its chmod but still chowns, and chown clears S_ISUID/S_ISGID, so
        a set-id file came out 0755. Only regular files whose source mode has a
        set-id bit are touched, through ``O_NOFOLLOW`` descriptors.
        """
        setid = stat.S_ISUID | stat.S_ISGID
        for g in gfids:
            rel = handle_relpath(g)
            try:
                src = os.lstat(os.path.join(self.source_root, rel))
            except OSError:
                continue
            if not stat.S_ISREG(src.st_mode) or not src.st_mode & setid:
                continue
            dest_rel = f".gfid/{g}" if self.gfid_dest else rel
            try:
                fd = os.open(os.path.join(self.dest, dest_rel),
                             os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                dst = os.fstat(fd)
                if stat.S_ISREG(dst.st_mode) and stat.S_IMODE(dst.st_mode) != stat.S_IMODE(src.st_mode):
                    os.fchmod(fd, stat.S_IMODE(src.st_mode))
            except OSError:
                pass
            finally:
                os.close(fd)
