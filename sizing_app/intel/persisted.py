"""The latest persisted size factor of a symbol, in the plan's dict shape plus provenance.

This is what sizing uses: it never computes a score, and neutralizes stale or missing data.
"""
from django.utils import timezone

from ..conf import snapshot_is_stale
from ..latest import hot_state


def symbol_size_factor(symbol: str) -> dict:
    """{"symbol", "score", "size_factor", "components", "snapshot_id", "as_of", "stale", "fallback_reason"}.

    No snapshot: factor 1.0, fallback "no_snapshot". Older than max age (or dated ahead of this
    clock, see conf.snapshot_is_stale): 1.0, stale, "stale_snapshot".
    """
    latest = hot_state.latest(symbol)
    if latest is None:
        return {
            "symbol": symbol, "score": None, "size_factor": 1.0, "components": {}, "snapshot_id": None,
            "as_of": None, "stale": False, "fallback_reason": "no_snapshot",
        }
    age = (timezone.now() - latest.as_of).total_seconds()
    stale = snapshot_is_stale(age)
    return {
        "symbol": symbol, "score": latest.score, "size_factor": 1.0 if stale else latest.size_factor,
        "components": latest.components, "snapshot_id": latest.snapshot_id, "as_of": latest.as_of,
        "stale": stale, "fallback_reason": "stale_snapshot" if stale else "",
    }
