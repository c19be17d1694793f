"""Remote replicas over SSH.

A replica written ``[user@]host:/path`` is served by a ``streamsync serve``
process started on the remote side over ssh: entry and meta ops travel as JSON
lines (orjson) over its stdin/stdout after a version handshake, and the
remote's :class:`~streamsync.sinks.replica.ReplicaSink` applies them. File data
goes by rsync over the same ssh connection (a ControlMaster socket), or by tar
over ssh.

* :mod:`~streamsync.remote.spec` - parsing ``[user@]host:/path``;
* :mod:`~streamsync.remote.protocol` - the wire format and its codecs;
* :mod:`~streamsync.remote.server` - the ``serve`` loop;
* :mod:`~streamsync.remote.client` - :class:`RemoteReplica`, the sink the
  dispatcher talks to (reconnects with backoff, replays the interrupted request).
"""

from .spec import ReplicaSpec, parse_replica

__all__ = ["ReplicaSpec", "parse_replica"]
