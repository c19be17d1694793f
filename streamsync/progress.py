"""Progress on a terminal: journals, files and bytes done of total, rate and ETA.

The work reports events to a :class:`Progress`; the commands show them with
tqdm (a well-kept, dependency-free progress library that already does rates,
ETAs, unit scaling and terminal width) and only on a terminal: on a pipe, in a
log, or with ``-q`` nothing is drawn (:func:`progress_for` gives ``None``).

Events, all thread-safe (data jobs report from their own threads):

* ``journals(total)`` once the journals to apply are known, ``journal_done(n)``
  after each batch;
* ``queued(files, nbytes)`` when data is queued (the data bar's total grows),
  ``sent(files, nbytes)`` as each file (or transfer job) lands, during a batch;
* ``scanned(names, nbytes)`` for walks (verify), against ``expect(names)``.

>>> import io
>>> p = TerminalProgress(io.StringIO(), label="replicate")
>>> p.journals(2); p.queued(3, 3072); p.sent(1, 1024); p.journal_done(2); p.close()
>>> p.counts()
{'journals': 2, 'journals_total': 2, 'files': 1, 'files_total': 3, 'bytes': 1024, 'bytes_total': 3072}
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import IO, Any, Iterator

__all__ = ["Progress", "TerminalProgress", "progress_for", "showing"]


class Progress:
    """The events a long operation reports; this base draws nothing (see the
    module text for what each means)."""

    def journals(self, total: int) -> None:
        """``total`` journals are to be applied (added to what was known)."""

    def journal_done(self, n: int = 1) -> None:
        """``n`` more journals are applied."""

    def queued(self, files: int, nbytes: int) -> None:
        """``files`` files of ``nbytes`` bytes are queued for transfer."""

    def sent(self, files: int, nbytes: int) -> None:
        """``files`` queued files of ``nbytes`` bytes have landed."""

    def expect(self, names: int, nbytes: int = 0) -> None:
        """A walk will see about ``names`` names and read about ``nbytes`` bytes."""

    def scanned(self, names: int, nbytes: int = 0) -> None:
        """A walk saw ``names`` more names and read ``nbytes`` bytes."""

    def close(self) -> None:
        """Finish the display."""


class TerminalProgress(Progress):
    """Two tqdm bars on ``stream``: journals (or names, for a walk) and data bytes
    (with files done of queued)."""

    def __init__(self, stream: IO[str], *, label: str = "", data: str = "data") -> None:
        from tqdm import tqdm
        self._lock = threading.Lock()
        self._n = {"journals": 0, "journals_total": 0, "files": 0, "files_total": 0,
                   "bytes": 0, "bytes_total": 0}
        common: dict[str, Any] = dict(file=stream, dynamic_ncols=True, mininterval=0.2,
                                      leave=True)
        self._top = tqdm(total=None, desc=f"{label} journals".strip(), unit=" journals",
                         position=0, **common)
        self._data = tqdm(total=0, desc=data, unit="B", unit_scale=True, unit_divisor=1024,
                          position=1, **common)
        self._walk = False

    def counts(self) -> dict[str, int]:
        """What was reported so far (done and totals)."""
        with self._lock:
            return dict(self._n)

    def journals(self, total: int) -> None:
        with self._lock:
            self._n["journals_total"] += total
            self._top.total = self._n["journals_total"]
            self._top.refresh()

    def journal_done(self, n: int = 1) -> None:
        with self._lock:
            self._n["journals"] += n
            self._top.update(n)

    def queued(self, files: int, nbytes: int) -> None:
        with self._lock:
            self._n["files_total"] += files
            self._n["bytes_total"] += nbytes
            self._data.total = self._n["bytes_total"]
            self._files_postfix()

    def sent(self, files: int, nbytes: int) -> None:
        with self._lock:
            self._n["files"] += files
            self._n["bytes"] += nbytes
            self._files_postfix()
            self._data.update(nbytes)

    def _files_postfix(self) -> None:
        if self._n["files_total"]:
            self._data.set_postfix_str(f"{self._n['files']}/{self._n['files_total']} files",
                                       refresh=False)

    def _as_walk(self) -> None:
        if not self._walk:
            self._walk = True
            self._top.set_description(self._top.desc.replace("journals", "names"))
            self._top.unit = " names"

    def expect(self, names: int, nbytes: int = 0) -> None:
        with self._lock:
            self._as_walk()
            self._top.reset(total=names)
            self._data.reset(total=nbytes or None)

    def scanned(self, names: int, nbytes: int = 0) -> None:
        with self._lock:
            self._as_walk()
            self._top.update(names)
            if nbytes:
                self._data.update(nbytes)

    def close(self) -> None:
        with self._lock:
            self._top.close()
            self._data.close()


def progress_for(stream: Any, *, quiet: bool = False, label: str = "",
                 data: str = "data") -> Progress | None:
    """A :class:`TerminalProgress` when ``stream`` is a terminal and not ``quiet``,
    else ``None`` (nothing drawn on a pipe, in a log, or with ``-q``).

    >>> import io
    >>> progress_for(io.StringIO()) is None
    True
    """
    if quiet:
        return None
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return TerminalProgress(stream, label=label, data=data)


@contextlib.contextmanager
def showing(display: Progress | None) -> Iterator[Progress | None]:
    """While the block runs, log lines go above the bars instead of through them;
    the bars are closed after it (``None``: nothing to show, nothing changed).

    >>> with showing(None) as p:
    ...     p is None
    True
    """
    if display is None:
        yield None
        return
    from tqdm.contrib.logging import logging_redirect_tqdm
    loggers = [logging.getLogger()]
    try:
        with logging_redirect_tqdm(loggers=loggers):
            yield display
    finally:
        display.close()
