"""Unpack a brick snapshot tarball (a brick copied with its ``.glusterfs`` handles).

A brick's gfid handle of a symlink is a *hard link to the symlink*; Python's
:mod:`tarfile` follows the link target instead, which would turn the handle
into a copy of the file the symlink points to. :func:`extract_brick_snapshot`
keeps the brick's shape: hard links to symlinks, fifos, owners (as root),
symlink times, and traversable ``.glusterfs`` directories when not root.

>>> import tempfile, os
>>> dest = os.path.join(tempfile.mkdtemp(), "brick")
>>> extract_brick_snapshot("examples/demo-brick/demo.tar.gz", dest) == dest
True

:func:`demo_brick` does that for the bundled demo brick, in a fresh directory,
for examples, notebooks and a first try:

>>> sorted(os.listdir(demo_brick()))[:3]
['.glusterfs', 'data', 'docs']
"""

from __future__ import annotations

import os
import stat
import tarfile

__all__ = ["extract_brick_snapshot", "demo_brick", "DEMO_BRICK"]

#: the bundled demo brick: a real GlusterFS 10.3 brick with its journals
#: (``examples/demo-brick`` in the source tree)
DEMO_BRICK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples",
                          "demo-brick", "demo.tar.gz")


class _BrickTar(tarfile.TarFile):
    """tarfile, but a hard link to a symlink links the symlink itself."""

    _brick_dest = ""

    def makelink(self, tarinfo, targetpath):  # noqa: D102
        if tarinfo.islnk():
            src = os.path.join(self._brick_dest, tarinfo.linkname)
            if os.path.lexists(src):
                os.link(src, targetpath, follow_symlinks=False)
                return
        super().makelink(tarinfo, targetpath)


def extract_brick_snapshot(tar_path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> str:
    """Extract ``tar_path`` (gzip or plain tar) into the new directory ``dest``; returns ``dest``.

    Owners are kept when run as root (numeric ids). Only for archives you trust
    (it is the bundled demo brick's format: hard links, fifos, absolute symlinks).
    """
    out = os.fspath(dest)
    os.makedirs(out)
    with _BrickTar.open(os.fspath(tar_path), "r:*") as tf:
        tf._brick_dest = out
        kw = {"numeric_owner": True}
        if hasattr(tarfile, "data_filter"):
            kw["filter"] = "fully_trusted"  # hard links to symlinks, fifos, absolute links
        tf.extractall(out, **kw)
        symlinks = [m for m in tf.getmembers() if m.issym()]
    if os.geteuid() != 0:
        # .glusterfs directories are 0600/0700 on a brick; make them traversable
        for top, dirs, _files in os.walk(out):
            for d in dirs:
                p = os.path.join(top, d)
                st = os.lstat(p)
                if stat.S_ISDIR(st.st_mode):
                    os.chmod(p, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
    for m in symlinks:  # tarfile leaves symlink times alone
        os.utime(os.path.join(out, m.name), (m.mtime, m.mtime), follow_symlinks=False)
    return out


def demo_brick(dest: str | os.PathLike[str] | None = None) -> str:
    """The bundled demo brick extracted into ``dest`` (default: a fresh temporary
    directory, which the caller removes); returns the brick's path. Needs the
    source tree (``examples/`` is not part of an installed wheel)."""
    import tempfile
    from .errors import SourceError
    if not os.path.exists(DEMO_BRICK):
        raise SourceError(f"{os.path.normpath(DEMO_BRICK)}: the demo brick is in the "
                          f"streamsync source tree (examples/demo-brick), not found here")
    if dest is None:
        dest = os.path.join(tempfile.mkdtemp(prefix="streamsync-demo-brick-"), "brick")
    return extract_brick_snapshot(DEMO_BRICK, dest)
