"""Source views: read-only facts about the source that classification needs.

* :class:`SourceView` - the protocol (``lstat``, ``readlink``, ``entry_gfid``,
  ``dir_entry``, ``data_path``, ``prefetch``); nothing raises for a missing gfid.
* :class:`MemoryView` - a namespace in memory (JSON loadable).
* :class:`BrickView` - a real brick directory through its ``.glusterfs`` handles.
* :class:`MountView` - an aux-gfid GlusterFS mount (``.gfid/<gfid>``).
* :func:`prefetch_view` / :class:`SnapshotView` - concurrent bulk lookups.
* :class:`CountingView` - counts lookups (and can add a simulated cost to each).

>>> v = MemoryView.from_json('{"root": "00000000-0000-0000-0000-000000000001", '
...                          '"inodes": {}, "entries": []}')
>>> isinstance(v, SourceView)
True
"""

from .base import DEFAULT_WORKERS, CountingView, SnapshotView, SourceView, prefetch_view
from .brick import BrickView, handle_path
from .memory import ROOT_STAT, MemoryView
from .mount import MountView

__all__ = ["SourceView", "MemoryView", "BrickView", "MountView", "SnapshotView", "CountingView",
           "prefetch_view", "handle_path", "ROOT_STAT", "DEFAULT_WORKERS"]
