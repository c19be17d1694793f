"""The rsync data engine (spec section 5.2).

One transfer runs ``rsync -aR0 --inplace --files-from=- --super --stats
--numeric-ids --no-implied-dirs`` plus, in gsyncd's order, ``--existing``,
``--xattrs``, ``--acls``, the words of ``rsync-options`` and
``--ignore-missing-args`` (rsync >= 3.1.0), then (not in gsyncd, see
docs/differences.md) ``--out-format`` naming each file transferred, so a file
rsync was given but did not send is retried and ledgered even with exit 0, and
``--ignore-times`` (every file named has a D record: its size and mtime must not
make rsync skip it), then ``.`` and the destination.
rsync runs in the source brick root; names are the handles
``.glusterfs/xx/yy/<gfid>``, NUL-terminated on stdin, so ``-R`` writes each into
the same handle of the replica, in place: the replica's visible names are hard
links of those handles and see the new bytes. With ``--xattrs`` the gfid tags
(``trusted.gfid``, ``user.streamsync.gfid``) are filtered out, so rsync never
strips the replica's own.

rsync 3.5.0 (Debian's bookworm-security build) refuses to create the implied
directories of a relative name (``not creating new directory``); 3.2.7 creates
them. Either way we only name files whose handle directory already exists in
the replica (the entry op made it), so both behave the same.

With ``log-rsync-performance``, each run's ``--stats`` summary is logged at INFO
as gsyncd does: ``rsync performance [{data=Number of files: ..., Total bytes
sent: ...}]``, rsync's own count of what it moved.

Exit codes 23 (partial transfer) and 24 (vanished source files) are
retriable; any other non-zero code is fatal (:class:`SyncError` with stderr).

>>> eng = RsyncEngine("/bricks/b1", "/replica", version="3.2.7")
>>> eng.command()[:9]
['rsync', '-aR0', '--inplace', '--files-from=-', '--super', '--stats', '--numeric-ids', '--no-implied-dirs', '--existing']
>>> eng.command()[-2:]
['.', '/replica/']
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import subprocess
from typing import Any, Sequence

from ..errors import SyncError
from .engine import GLUSTER_INTERNAL_XATTRS, TransferResult, option_value
from .replica import handle_relpath

__all__ = ["RsyncEngine", "rsync_version", "PARTIAL_CODES"]

#: rsync exit codes gsyncd treats as retriable
PARTIAL_CODES = frozenset({23, 24})
log = logging.getLogger("streamsync.rsync")

#: the ``--stats`` lines gsyncd's ``log-rsync-performance`` logs
_STATS = ("Number of files:", "Number of regular files transferred:", "Total file size:",
          "Total transferred file size:", "Literal data:", "Matched data:",
          "Total bytes sent:", "Total bytes received:", "sent ")


def performance_line(stdout: bytes) -> str:
    """gsyncd's ``rsync performance`` log line of one run's ``--stats`` output.

    >>> performance_line(b"Number of files: 3 (reg: 2)\\nTotal bytes sent: 1,024\\nzzz\\n")
    'rsync performance [{data=Number of files: 3 (reg: 2), Total bytes sent: 1,024}]'
    """
    lines = [ln.strip() for ln in stdout.decode("utf-8", "replace").splitlines()
             if ln.startswith(_STATS)]
    return "rsync performance [{data=%s}]" % ", ".join(lines)


#: prefix of the line rsync prints for each file it transferred (``--out-format``)
_SENT = "streamsync-sent:"


def _missed(gfids: Sequence[str], stdout: bytes) -> tuple[str, ...]:
    """The gfids rsync did not report as transferred (a handle's basename is its gfid).

    >>> _missed(["a", "b"], b"streamsync-sent:.glusterfs/xx/yy/a\\nother\\n")
    ('b',)
    """
    prefix = _SENT.encode()
    sent = {line[len(prefix):].rsplit(b"/", 1)[-1].decode("ascii", "replace")
            for line in stdout.splitlines() if line.startswith(prefix)}
    return tuple(g for g in gfids if g not in sent)


@functools.lru_cache(maxsize=8)
def rsync_version(command: str = "rsync") -> str:
    """The version string of ``rsync --version`` (``""`` when not runnable)."""
    try:
        out = subprocess.run([*shlex.split(command), "--version"], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    words = out.split()
    try:
        return words[words.index("version") + 1]
    except (ValueError, IndexError):
        return ""


_opt = option_value


class RsyncEngine:
    """rsync from ``source_root`` (a brick) into ``dest`` (a replica root, or
    ``host:path`` reached with ``ssh-command``)."""

    name = "rsync"

    def __init__(self, source_root: str, dest: str, options: Any = None, *,
                 version: str | None = None, follow_links: bool = False,
                 gfid_dest: bool = False) -> None:
        self.source_root = os.fspath(source_root)
        self.dest = os.fspath(dest)
        self.options = options
        self.follow_links = follow_links
        #: ``dest`` is an aux-gfid mount: each handle lands at ``dest/.gfid/<gfid>``
        #: (``--no-relative``: the basename of a handle is its gfid)
        self.gfid_dest = gfid_dest
        self._version = version

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = rsync_version(_opt(self.options, "rsync-command", "rsync"))
        return self._version

    def is_partial(self, code: int) -> bool:
        return code in PARTIAL_CODES

    def _remote(self) -> bool:
        head = self.dest.split("/", 1)[0]
        return ":" in head

    def command(self) -> list[str]:
        """The full argv, in gsyncd's order."""
        o = self.options
        argv = [*shlex.split(_opt(o, "rsync-command", "rsync")), "-aR0", "--inplace",
                "--files-from=-", "--super", "--stats", "--numeric-ids", "--no-implied-dirs"]
        if self.gfid_dest:
            argv[1] = "-a0"
            argv.insert(3, "--no-relative")
        if not self._remote() and os.geteuid() != 0:
            argv.remove("--super")  # an unprivileged local receiver cannot chown: not an error
        if _opt(o, "rsync-opt-existing", True):
            argv.append("--existing")
        if _opt(o, "sync-xattrs", True):
            argv.append("--xattrs")
        if _opt(o, "sync-acls", True):
            argv.append("--acls")
        if "--xattrs" in argv:
            # the replica's own gfid tag is never sent nor removed (a source without
            # it, e.g. a brick unpacked without xattrs, would otherwise strip it),
            # nor are GlusterFS's own (gfid2path, mdata, afr...): not the secondary's
            argv += ["--filter=-x trusted.gfid", "--filter=-x user.streamsync.gfid"]
            argv += [f"--filter=-x {prefix}*" for prefix in GLUSTER_INTERNAL_XATTRS]
        argv.extend(shlex.split(_opt(o, "rsync-options", "") or ""))
        if _opt(o, "rsync-opt-ignore-missing-args", True) and self.version >= "3.1.0":
            argv.append("--ignore-missing-args")
        if self.follow_links:
            argv.append("--copy-links")
        timeout = int(_opt(o, "slave-timeout", 120) or 0)
        if self._remote() and timeout > 0 and not any(w.startswith("--timeout") for w in argv):
            # a peer that stops answering (a hung receiver, a forced command that
            # is not serve) ends the transfer instead of hanging the worker
            argv.append(f"--timeout={timeout}")
        # each file rsync transferred, one line: what it was given but did not send
        # is told apart ("rc 0, nothing transferred" is how rsync 3.5.0 fails)
        argv.append(f"--out-format={_SENT}%n")
        # a D record says the bytes changed: never let rsync's quick check (same size,
        # same mtime in whole seconds) skip the file; a meta op of the same batch, or
        # one applied before a crash, has already given the replica the source's mtime
        argv.append("--ignore-times")
        argv.append(".")
        if self._remote():
            ssh = [*shlex.split(_opt(o, "ssh-command", "ssh")),
                   *shlex.split(_opt(o, "ssh-options", "") or ""),
                   "-p", str(_opt(o, "ssh-port", 22)),
                   *shlex.split(_opt(o, "rsync-ssh-options", "") or "")]
            argv += ["-e", shlex.join(ssh)]
        argv.append(self.dest.rstrip("/") + ("/.gfid/" if self.gfid_dest else "/"))
        return argv

    def names(self, gfids: Sequence[str]) -> bytes:
        """stdin for ``--files-from=- -0``: each handle name followed by NUL."""
        return b"".join(os.fsencode(handle_relpath(g)) + b"\0" for g in gfids)

    def transfer(self, gfids: Sequence[str]) -> TransferResult:
        if not gfids:
            return TransferResult(0, "", 0)
        try:
            proc = subprocess.run(self.command(), input=self.names(gfids), cwd=self.source_root,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise SyncError(f"cannot run rsync: {exc}") from exc
        if _opt(self.options, "log-rsync-performance", False):
            log.info("%s", performance_line(proc.stdout))
        return TransferResult(proc.returncode, proc.stderr.decode("utf-8", "replace"),
                              len(gfids), missed=_missed(gfids, proc.stdout))
