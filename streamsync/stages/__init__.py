"""The pure pipeline stages (design.md section 3), each usable alone, in
``toolz.pipe`` and in ``dask.bag.map_partitions``:

* :func:`skip_processed` - ``Changelog`` -> ``(Changelog, skipped)``
* :func:`classify` - ``(Changelog, records)`` -> ``(Changelog, decisions)``
* :func:`plan` - ``(Changelog, decisions)`` -> ``ChangelogPlan``
* :func:`gate_entries` - ``ChangelogPlan`` -> ``ChangelogPlan`` (entry ops gated)
* :func:`batch_plans` - ``ChangelogPlan`` -> ``Batch``
"""

from .batch import batch_plans, batch_sizes
from .classify import classify, classify_records, lookups
from .gate import gate_entries, gate_limit, is_gated
from .plan import STAT_NAMES, fold_plan, plan
from .skip import is_processed, skip_processed

__all__ = ["skip_processed", "is_processed", "classify", "classify_records", "lookups",
           "plan", "fold_plan", "STAT_NAMES", "gate_entries", "gate_limit", "is_gated",
           "batch_plans", "batch_sizes"]
