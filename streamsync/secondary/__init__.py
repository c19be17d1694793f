"""The secondary side: what a replica does with entry and meta ops.

* :mod:`.namespace` - the small protocol a target implements (gfid -> kind,
  name -> gfid, directory -> location, create with a gfid, link, rename,
  unlink, rmdir, attributes);
* :mod:`.rules` - gsyncd's per-op rules (spec 4.3-4.6, newest fixes adopted),
  written once over that protocol;
* :mod:`.gfid_mount` - the protocol over a GlusterFS aux-gfid mount (a real
  secondary volume: ``glusterfs.gfid.newfile`` blobs, ``.gfid/<gfid>`` paths).

Two backends implement the protocol: :class:`streamsync.sinks.replica.ReplicaSink`
(the brick-layout directory replica, also behind ``streamsync serve``) and
:class:`.gfid_mount.GfidMount` (driven by :class:`streamsync.sinks.volume.VolumeSink`).
"""
