"""Typed exceptions of streamsync.

Every bad input ends in one of these, carrying where it was found (file and
line for processed text, file and byte offset for raw journals), so a caller can
either fail with a one-line message or record the failure and go on.

>>> err = ParseError("bad record type", path="CHANGELOG.1700000000", line=3)
>>> str(err)
'CHANGELOG.1700000000:3: bad record type'
"""

from __future__ import annotations

__all__ = [
    "StreamsyncError",
    "ParseError",
    "JournalError",
    "UnsupportedJournal",
    "ConfigError",
    "SourceError",
    "StateError",
    "LockHeld",
    "SyncError",
    "DeleteLimitExceeded",
]


class StreamsyncError(Exception):
    """Base class of every error streamsync raises on purpose."""


class ParseError(StreamsyncError, ValueError):
    """A processed changelog line is malformed.

    ``path`` names the file (or ``"<string>"``), ``line`` is 1-based.
    """

    def __init__(self, message: str, *, path: str = "<string>", line: int = 0,
                 text: str | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.text = text
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    def __reduce__(self):  # keep picklable across processes (dask, multiprocessing)
        return (_rebuild, (type(self), self.message, {"path": self.path, "line": self.line,
                                                       "text": self.text}))


class JournalError(StreamsyncError, ValueError):
    """A raw brick journal is truncated, corrupt or not a changelog.

    ``offset`` is the byte offset in the file where decoding failed.
    """

    def __init__(self, message: str, *, path: str = "<bytes>", offset: int = 0) -> None:
        self.message = message
        self.path = path
        self.offset = offset
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.path}: byte {self.offset}: {self.message}"

    def __reduce__(self):
        return (_rebuild, (type(self), self.message, {"path": self.path, "offset": self.offset}))


class UnsupportedJournal(JournalError):
    """A journal with a header we recognise but a version we do not decode."""


class ConfigError(StreamsyncError, ValueError):
    """An unknown option name or a bad option value."""


class SourceError(StreamsyncError):
    """A source view could not answer (not a brick, unreadable handle, ...)."""


class StateError(StreamsyncError):
    """The state store is unreadable or inconsistent."""


class LockHeld(StateError):
    """Another worker already owns this brick/replica pair."""


class SyncError(StreamsyncError):
    """A data transfer failed in a way that is not retriable."""


class DeleteLimitExceeded(StreamsyncError):
    """A batch would delete more on the secondary than ``max-deletes`` allows
    (nothing of it was applied; ``--allow-deletes`` lets it through)."""


def _rebuild(cls, message, kwargs):
    return cls(message, **kwargs)
