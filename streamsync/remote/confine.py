"""Open a replica root inside a served root without following any name a client controls.

``serve --root DIR`` must never be led out of ``DIR``: a client can plant
symlinks in a replica with ordinary SYMLINK ops, so the replica path it names
is walked one component at a time from ``DIR`` with ``O_NOFOLLOW``
(``openat``), creating missing directories on the way. A symlink anywhere
below ``DIR`` is an error, never a detour.

>>> import os, tempfile
>>> base = tempfile.mkdtemp()
>>> os.symlink("/etc", os.path.join(base, "evil"))
>>> fd = open_confined(base, os.path.join(base, "a", "b")); os.close(fd)
>>> os.path.isdir(os.path.join(base, "a", "b"))
True
>>> open_confined(base, os.path.join(base, "evil", "x"))
Traceback (most recent call last):
...
streamsync.errors.ConfigError: .../evil/x: evil is a symlink or not a directory (not followed below the served root ...)
"""

from __future__ import annotations

import errno
import os

from ..errors import ConfigError

__all__ = ["open_confined", "inside"]

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def inside(base: str, path: str) -> bool:
    """``path`` is ``base`` or lexically below it (both made absolute).

    >>> inside("/srv", "/srv/a/../b"), inside("/srv", "/srv/../etc")
    (True, False)
    """
    b, p = os.path.abspath(base), os.path.abspath(path)
    return os.path.commonpath([b, p]) == b


def open_confined(base: str, path: str, *, create: bool = True, mode: int = 0o755) -> int:
    """A descriptor of directory ``path``, reached from ``base`` by ``openat``
    with ``O_NOFOLLOW`` on every component below it (missing ones are made when
    ``create``). ``base`` itself is the administrator's and may be a symlink.
    Raises :class:`ConfigError` for a path outside ``base`` or a component that
    is a symlink or not a directory."""
    if not inside(base, path):
        raise ConfigError(f"{path}: outside the served root {os.path.abspath(base)}")
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(base))
    try:
        fd = os.open(base, _DIR)
    except OSError as exc:
        raise ConfigError(f"{base}: cannot open the served root: {exc.strerror}") from None
    for comp in ([] if rel == "." else rel.split(os.sep)):
        try:
            if create:
                try:
                    os.mkdir(comp, mode, dir_fd=fd)
                except FileExistsError:
                    pass
            nfd = os.open(comp, _DIR | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ConfigError(f"{path}: {comp} is a symlink or not a directory (not "
                                  f"followed below the served root {base})") from None
            raise ConfigError(f"{path}: {comp}: {exc.strerror}") from None
        os.close(fd)
        fd = nfd
    return fd
