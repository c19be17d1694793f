"""GlusterFS fop numbers and names, and which record shapes each fop takes.

The journal stores a fop as its number in GlusterFS's ``glusterfs_fop_t`` enum;
processed text and streamsync records carry the upper-case name of
``gf_fop_list``.

>>> FOP_NAMES[23], FOP_NUMBERS["RENAME"]
('CREATE', 8)
>>> "MKDIR" in ENTRY_FOPS, "SETATTR" in ENTRY_FOPS
(True, False)
"""

from __future__ import annotations

__all__ = [
    "FOP_NAMES",
    "FOP_NUMBERS",
    "ENTRY_FOPS",
    "NEWENTRY_FOPS",
    "NAMED_FOPS",
    "DELETE_FOPS",
    "META_FOPS",
]

# glusterfs_fop_t as of GlusterFS 10.x (libglusterfs/src/glusterfs/glusterfs-fops.x)
_FOP_LIST = (
    "NULL", "STAT", "READLINK", "MKNOD", "MKDIR", "UNLINK", "RMDIR", "SYMLINK",
    "RENAME", "LINK", "TRUNCATE", "OPEN", "READ", "WRITE", "STATFS", "FLUSH",
    "FSYNC", "SETXATTR", "GETXATTR", "REMOVEXATTR", "OPENDIR", "FSYNCDIR",
    "ACCESS", "CREATE", "FTRUNCATE", "FSTAT", "LK", "LOOKUP", "READDIR",
    "INODELK", "FINODELK", "ENTRYLK", "FENTRYLK", "XATTROP", "FXATTROP",
    "FGETXATTR", "FSETXATTR", "RCHECKSUM", "SETATTR", "FSETATTR", "READDIRP",
    "FORGET", "RELEASE", "RELEASEDIR", "GETSPEC", "FREMOVEXATTR", "FALLOCATE",
    "DISCARD", "ZEROFILL", "IPC", "SEEK", "LEASE", "COMPOUND", "GETACTIVELK",
    "SETACTIVELK", "PUT", "ICREATE", "NAMELINK", "COPY_FILE_RANGE",
)

#: fop number -> name
FOP_NAMES: dict[int, str] = dict(enumerate(_FOP_LIST))
#: fop name -> number
FOP_NUMBERS: dict[str, int] = {name: num for num, name in FOP_NAMES.items()}

#: fops that carry ``mode uid gid`` plus one name
NEWENTRY_FOPS = frozenset({"CREATE", "MKNOD", "MKDIR"})
#: fops that carry one name only
NAMED_FOPS = frozenset({"LINK", "SYMLINK"})
#: fops that carry one name plus an optional captured delete path
DELETE_FOPS = frozenset({"UNLINK", "RMDIR"})
#: every fop that can appear in an ``E`` record
ENTRY_FOPS = NEWENTRY_FOPS | NAMED_FOPS | DELETE_FOPS | frozenset({"RENAME"})
#: fops that are journaled as ``M`` records
META_FOPS = frozenset({"SETATTR", "FSETATTR", "SETXATTR", "FSETXATTR", "REMOVEXATTR",
                       "FREMOVEXATTR", "XATTROP", "FXATTROP"})
