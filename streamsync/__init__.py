"""streamsync: GlusterFS geo-replication changelog processing as generator stages.

The pipeline, one module per stage::

    discover -> decode | parse -> skip processed -> gate entries -> classify
             -> plan -> batch by size -> dispatch (sinks: replica, data, state, archive)

>>> from streamsync import parse_processed, render_processed
>>> recs = list(parse_processed(b"D 00000000-0000-0000-0000-000000000001\\n"))
>>> recs[0].gfid
'00000000-0000-0000-0000-000000000001'
"""

from .errors import (ConfigError, JournalError, LockHeld, ParseError, SourceError, StateError,
                     StreamsyncError, SyncError, UnsupportedJournal)
from .escaping import escape, unescape
from .ops import (Batch, ChangelogPlan, EntryFailure, EntryOp, FailureInfo, MetaFailure, MetaOp,
                  data_item)
from .parse import parse_processed, render_processed
from .records import (GFID_PREFIX, MINUS_INFINITY, ROOT_GFID, Changelog, DataRecord, EntryRecord,
                      MetaRecord, Record, Stat, Stime, record_from_dict)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "ConfigError", "JournalError", "LockHeld", "ParseError", "SourceError", "StateError",
    "StreamsyncError", "SyncError", "UnsupportedJournal",
    "escape", "unescape",
    "Batch", "ChangelogPlan", "EntryFailure", "EntryOp", "FailureInfo", "MetaFailure", "MetaOp",
    "data_item",
    "parse_processed", "render_processed",
    "GFID_PREFIX", "MINUS_INFINITY", "ROOT_GFID", "Changelog", "DataRecord", "EntryRecord",
    "MetaRecord", "Record", "Stat", "Stime", "record_from_dict",
]
