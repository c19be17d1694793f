"""Temporary: fused path delegates to the composed stages."""
from __future__ import annotations

from ..parse import parse_processed


def fused_plan(changelog, data, *, view, options, gated, prefetch):
    from ..pipeline import plan_records
    recs = list(parse_processed(data, path=changelog.path))
    return plan_records(changelog, recs, view=view, options=options, gated=gated,
                        prefetch=prefetch)
