"""The stack's steps as sizing reads them: each symbol's persisted multipliers and factor, from the hot state.

Nothing here computes a score: the recompute persisted every number, and stale or missing data is
neutral. The plan's names for these (position_sizing, risk_autotune, signal_generator's
symbol_size_factor) are thin aliases of these functions.
"""
from __future__ import annotations

from django.utils import timezone

from ..conf import snapshot_is_stale
from .hot_state import hot_state


def inverse_vol_size(symbol: str, base_size: float) -> float:
    """base_size scaled toward the target volatility, the multiplier bounded to [0.25, 2.0]."""
    latest = hot_state.latest(symbol)
    return base_size * (latest.inverse_vol_multiplier if latest is not None else 1.0)


def regime_multiplier(symbol: str) -> float:
    """Multiplier in [0.5, 1.25]: below 1 when recent ATR% runs above its long-run level."""
    latest = hot_state.latest(symbol)
    return latest.regime_multiplier if latest is not None else 1.0


def sharpe_multiplier(symbol: str) -> float:
    """Sharpe-aware multiplier in (0.5, 1.5), neutral (1.0) when the Sharpe is undefined."""
    latest = hot_state.latest(symbol)
    return latest.sharpe_multiplier if latest is not None else 1.0


def persisted_factor(symbol: str) -> dict:
    """The latest persisted factor in the plan's dict shape plus provenance.

    {"symbol", "score", "size_factor", "components", "snapshot_id", "as_of", "stale", "fallback_reason"}.
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
