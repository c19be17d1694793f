"""One worker per brick/replica: an ``fcntl`` lock on a lock file.

The lock is released by the kernel when the process dies (``kill -9``
included), so a crashed worker never blocks its successor. The file holds the
owner's pid, shown in the error of the worker that is refused.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "lock")
>>> with WorkerLock(p):
...     try:
...         WorkerLock(p).acquire()
...     except LockHeld as e:
...         print("refused")
refused
"""

from __future__ import annotations

import errno
import fcntl
import os

from ..errors import LockHeld, StateError

__all__ = ["WorkerLock"]


class WorkerLock:
    """Exclusive, non-blocking lock on ``path`` (created if missing)."""

    def __init__(self, path: str | os.PathLike[str], *, what: str = "") -> None:
        self.path = os.fspath(path)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> "WorkerLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot open lock file: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            try:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            except OSError:
                pass
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                who = f" (pid {holder})" if holder else ""
                raise LockHeld(f"{self.path}: another streamsync worker{who} is already "
                               f"running{' for ' + self.what if self.what else ''}; "
                               f"refusing to start a second one") from None
            raise StateError(f"{self.path}: cannot lock: {exc.strerror}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "WorkerLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
