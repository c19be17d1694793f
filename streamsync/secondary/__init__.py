"""The secondary side: what a replica does with entry and meta ops.

* :mod:`.namespace` - the small protocol a target implements (gfid -> kind,
  name -> gfid, directory -> location, create with a gfid, link, rename,
  unlink, rmdir, attributes);
* :mod:`.rules` - gsyncd's per-op rules (spec 4.3-4.6, newest fixes adopted),
  written once over that protocol;
* :mod:`.gfid_mount` - the protocol over a GlusterFS aux-gfid mount (a real
  secondary volume: ``glusterfs.gfid.newfile`` blobs, ``.gfid/<gfid>`` paths).

The brick-layout directory replica (:class:`streamsync.sinks.replica.ReplicaSink`)
still carries its own copy of the rules; moving it onto :mod:`.rules` is the
next step of the split (issue 11).
"""
