"""Sinks: the only places where streamsync changes the world.

* :class:`~streamsync.sinks.replica.ReplicaSink` - a local replica directory in
  brick layout (entry ops + meta ops, confined to the replica root);
* :mod:`~streamsync.sinks.conflicts` - gfid-conflict resolution rounds;
* :class:`~streamsync.sinks.rsync.RsyncEngine`, :class:`~streamsync.sinks.tar.TarEngine`
  - data engines;
* :class:`~streamsync.sinks.recording.RecordingSink` - captures every call.
"""

from __future__ import annotations

from .recording import RecordingSink
from .replica import ReplicaSink

__all__ = ["ReplicaSink", "RecordingSink"]
