"""Do a brick's journals cover its whole life? The check behind the default mode.

A worker without a data stime must choose between replaying the journals
present (exact: every fop, fifos included) and the hybrid crawl (walks the
brick as it is now). Replaying is only right when nothing in the brick predates
the journals: data written before changelog was turned on, or whose journals
were purged, is never journaled and would silently be missing from the replica.

:func:`journal_coverage` answers exactly: the journals cover the brick when
every gfid the brick holds a handle for (``.glusterfs/xx/yy/<gfid>``) is
created by an ``E`` record of a journal present (``CREATE``, ``MKDIR``,
``MKNOD``, ``SYMLINK``; a ``LINK`` adds a name to an inode, so it only counts
for a gfid created anyway). The root and GlusterFS' reserved gfids
(``00000000-0000-0000-0000-0000000000xx``: root, ``.trashcan``, ...) are made by
the volume itself and need no journal. Several ``HTIME`` index files mean
changelog was switched off and on again: whatever happened in between was
never journaled, so such a brick is not covered either.

The walk over the handles is one ``scandir`` per hash directory; the journals
are decoded with :mod:`streamsync.discover` and reading stops as soon as every
handle is accounted for.

>>> import os, tempfile
>>> b = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(b, ".glusterfs", "changelogs"))
>>> journal_coverage(b).covered
True
"""

from __future__ import annotations

import os
from typing import NamedTuple

from ..records import ROOT_GFID

__all__ = ["Coverage", "CREATING_FOPS", "brick_gfids", "journal_coverage"]

#: the entry fops that bring a new gfid into existence
CREATING_FOPS = frozenset({"CREATE", "MKDIR", "MKNOD", "SYMLINK"})
_RESERVED_PREFIX = "00000000-0000-0000-0000-"
_HEX = frozenset("0123456789abcdef")
_NOT_DATA = frozenset({".glusterfs", ".trashcan"})


class Coverage(NamedTuple):
    """The answer of :func:`journal_coverage`.

    ``covered``: replaying the journals rebuilds every object of the brick;
    ``reason``: one human line saying why; ``handles``: gfids in the brick
    (without root/reserved ones); ``missing``: how many of them no journal
    creates; ``examples``: a few of those (sorted); ``journals``: journals read;
    ``htimes``: HTIME index files found.
    """

    covered: bool
    reason: str
    handles: int
    missing: int
    examples: tuple[str, ...]
    journals: int
    htimes: int

    def to_dict(self) -> dict[str, object]:
        d = self._asdict()
        d["examples"] = list(self.examples)
        return d


def _is_gfid_name(name: str) -> bool:
    return (len(name) == 36 and name[8] == name[13] == name[18] == name[23] == "-"
            and set(name.replace("-", "")) <= _HEX)


def brick_gfids(brick: str | os.PathLike[str]) -> set[str]:
    """The gfids a brick holds handles for (``.glusterfs/xx/yy/<gfid>``), without
    the root and the reserved ``00000000-0000-0000-0000-…`` gfids.

    >>> import tempfile
    >>> brick_gfids(tempfile.mkdtemp())
    set()
    """
    base = os.path.join(os.fspath(brick), ".glusterfs")
    out: set[str] = set()
    try:
        level1 = [e.name for e in os.scandir(base) if len(e.name) == 2 and e.is_dir(follow_symlinks=False)]
    except OSError:
        return out
    for l1 in level1:
        try:
            level2 = [e.name for e in os.scandir(os.path.join(base, l1))
                      if len(e.name) == 2 and e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for l2 in level2:
            try:
                names = os.listdir(os.path.join(base, l1, l2))
            except OSError:
                continue
            prefix = l1 + l2
            for name in names:
                if name.startswith(prefix) and _is_gfid_name(name) \
                        and not name.startswith(_RESERVED_PREFIX):
                    out.add(name)
    out.discard(ROOT_GFID)
    return out


def _ls(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _htimes(changelog_dir: str) -> int:
    try:
        return sum(1 for n in os.listdir(os.path.join(changelog_dir, "htime"))
                   if n.startswith("HTIME."))
    except OSError:
        return 0


def journal_coverage(brick: str | os.PathLike[str], *, changelogs: str | os.PathLike[str] | None = None,
                     max_examples: int = 3) -> Coverage:
    """Whether the journals in ``changelogs`` (default: the brick's own) create
    every gfid of ``brick`` (module docstring).

    Raises :class:`~streamsync.errors.JournalError`/``ParseError`` (naming the
    journal) for a damaged journal: the answer would not be exact.
    """
    from ..discover import changelog_dir_of, discover, overwritten_journals, read_changelog

    brick = os.fspath(brick)
    cl_dir = os.fspath(changelogs) if changelogs is not None else changelog_dir_of(brick)
    pending = brick_gfids(brick)
    handles = len(pending)
    htimes = _htimes(cl_dir)
    journals = 0
    if pending and os.path.isdir(cl_dir):
        for cl in discover(cl_dir, allow_empty=True):
            if cl.kind == "xsync":
                continue  # an XSYNC journal is a crawl's output, not the brick's history
            journals += 1
            for rec in read_changelog(cl):
                if rec.TYPE == "E" and rec.fop in CREATING_FOPS:
                    pending.discard(rec.gfid)
            if not pending:
                break
    if pending:
        ex = tuple(sorted(pending)[:max_examples])
        reason = (f"{len(pending)} of {handles} gfids in the brick are created by none of the "
                  f"{journals} journals present (e.g. {', '.join(ex)}): data from before "
                  f"changelog was on, or purged journals")
        return Coverage(False, reason, handles, len(pending), ex, journals, htimes)
    if htimes > 1:
        reason = (f"{htimes} HTIME index files: changelog was switched off and on again, "
                  f"what changed in between was never journaled")
        return Coverage(False, reason, handles, 0, (), journals, htimes)
    twice = overwritten_journals(cl_dir)
    if twice:
        reason = (f"{len(twice)} journals were written twice by the brick (e.g. "
                  f"CHANGELOG.{twice[0]}, listed twice in HTIME): the later file replaced "
                  f"the earlier, whose changes are in no journal (rollover-time too short)")
        return Coverage(False, reason, handles, 0, (), journals, htimes)
    if not handles:
        visible = sorted(n for n in _ls(brick) if n not in _NOT_DATA)
        if visible:
            # names without any handle: not a GlusterFS brick's namespace; nothing
            # can say what is journaled, the crawl at least reports each of them
            reason = (f"{len(visible)} names at the brick root (e.g. {visible[0]!r}) but no "
                      f"gfid handles in .glusterfs")
            return Coverage(False, reason, 0, 0, (), journals, htimes)
        return Coverage(True, "the brick holds no objects besides its root", 0, 0, (),
                        journals, htimes)
    reason = f"the {journals} journals present create all {handles} gfids in the brick"
    return Coverage(True, reason, handles, 0, (), journals, htimes)
