"""How far each shard of a Dask read has got, seen from the client while it waits.

A shard task runs in another process (or on another host), so it cannot call
back; it counts the journals it has read into a small file instead, eight bytes
at its own place, a few times a second (:class:`ShardTicker`). The client polls
that file on a thread and reports the slowest shard's count, or the sum of
the counts of tasks that share the journals out (:func:`watching`).
A shard on a host that does not see the file counts nothing, and nothing breaks.

>>> import os
>>> path = tally_file(2)
>>> tick = ShardTicker(path, 1)
>>> for journal in range(7):
...     tick(journal)
>>> tick.done()
>>> read_tally(path, 2)
[0, 7]
>>> os.unlink(path)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from typing import Callable, Iterator

__all__ = ["tally_file", "read_tally", "ShardTicker", "watching"]

#: seconds between two writes of a shard's count, and two reads of the client
INTERVAL = 0.2
_WIDTH = 8


def tally_file(shards: int) -> str:
    """A new file of ``shards`` counters at zero (the caller removes it)."""
    fd, path = tempfile.mkstemp(prefix="streamsync-tally-")
    try:
        os.write(fd, bytes(_WIDTH * shards))
    finally:
        os.close(fd)
    return path


def read_tally(path: str, shards: int) -> list[int]:
    """Every shard's count, in shard order (zeros for what cannot be read)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(_WIDTH * shards)
    except OSError:
        return [0] * shards
    data = data.ljust(_WIDTH * shards, b"\0")
    return [int.from_bytes(data[i:i + _WIDTH], "little")
            for i in range(0, _WIDTH * shards, _WIDTH)]


class ShardTicker:
    """A shard's counter (picklable: it travels with the task). Call it after each
    journal (with the journal, as a ``progress`` callback); it writes the count at
    most every :data:`INTERVAL` seconds, and :meth:`done` writes the last one."""

    __slots__ = ("path", "shard", "count", "_fd", "_next")

    def __init__(self, path: str, shard: int) -> None:
        self.path = path
        self.shard = shard
        self.count = 0
        self._fd: int | None = None
        self._next = 0.0

    def __getstate__(self) -> tuple[str, int]:
        return self.path, self.shard

    def __setstate__(self, state: tuple[str, int]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def __call__(self, _journal: object = None) -> None:
        self.count += 1
        now = time.monotonic()
        if now >= self._next:
            self._next = now + INTERVAL
            self._write()

    def done(self) -> None:
        """Write the final count and let go of the file."""
        self._write()
        if self._fd is not None and self._fd >= 0:
            os.close(self._fd)
        self._fd = -1

    def _write(self) -> None:
        if self._fd is None:
            try:  # no O_CREAT: a host without the file counts nothing
                self._fd = os.open(self.path, os.O_WRONLY)
            except OSError:
                self._fd = -1
        if self._fd >= 0:
            try:
                os.pwrite(self._fd, self.count.to_bytes(_WIDTH, "little"),
                          _WIDTH * self.shard)
            except OSError:  # a progress display is never worth failing a read
                pass


@contextlib.contextmanager
def watching(shards: int, report: Callable[[int], None], *,
             combine: Callable[[list[int]], int] = min) -> Iterator[str]:
    """A tally file for ``shards`` while the block runs (its path is yielded);
    ``report(count)`` is called on a thread with the slowest shard's count as it
    grows (``combine=sum``: the counts added, for tasks that share the journals
    out), and once more at the end. Start the block's worker processes before
    entering it when they are forked (a fork copies no thread safely).

    >>> seen = []
    >>> with watching(2, seen.append) as path:
    ...     for k in (0, 1):
    ...         tick = ShardTicker(path, k)
    ...         for journal in range(3):
    ...             tick(journal)
    ...         tick.done()
    >>> seen[-1]
    3
    """
    path = tally_file(shards)
    stop = threading.Event()
    last = [0]

    def poll() -> None:
        while not stop.wait(INTERVAL):
            count = combine(read_tally(path, shards))
            if count > last[0]:
                last[0] = count
                report(count)
    thread = threading.Thread(target=poll, name="streamsync-tally", daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join()
        count = combine(read_tally(path, shards))
        with contextlib.suppress(OSError):
            os.unlink(path)
    if count > last[0]:  # the last count, once the block has succeeded
        report(count)
