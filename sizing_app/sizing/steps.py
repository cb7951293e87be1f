"""The stack's steps as sizing reads them: each symbol's persisted multipliers and factor, from the hot state.

Nothing here computes a score: the recompute persisted every number, and stale or missing data is
neutral. The plan's names for these (position_sizing, risk_autotune, signal_generator's
symbol_size_factor) are thin aliases of these functions.
"""
from __future__ import annotations

from django.utils import timezone

from ..conf import snapshot_is_stale
from ..models import SizingSnapshot
from .hot_state import LatestFactor, hot_state

STALE_INPUT = SizingSnapshot.Status.STALE_INPUT


def fallback_reason_of(latest: LatestFactor | None) -> str:
    """Why sizing may not trust a symbol's latest snapshot, or "" when it may.

    no_snapshot; stale_snapshot (older than the max age, or dated ahead of this clock); stale_input
    (fresh, but computed from a candle feed that had stopped). Sizing is neutral for each.
    """
    if latest is None:
        return "no_snapshot"
    if snapshot_is_stale((timezone.now() - latest.as_of).total_seconds()):
        return "stale_snapshot"
    if latest.status == STALE_INPUT:
        return "stale_input"
    return ""


def _trusted(symbol: str) -> LatestFactor | None:
    latest = hot_state.latest(symbol)
    return latest if not fallback_reason_of(latest) else None


def inverse_vol_size(symbol: str, base_size: float) -> float:
    """base_size scaled toward the target volatility, the multiplier bounded to [0.25, 2.0]."""
    latest = _trusted(symbol)
    return base_size * (latest.inverse_vol_multiplier if latest is not None else 1.0)


def regime_multiplier(symbol: str) -> float:
    """Multiplier in [0.5, 1.25]: below 1 when recent ATR% runs above its long-run level."""
    latest = _trusted(symbol)
    return latest.regime_multiplier if latest is not None else 1.0


def sharpe_multiplier(symbol: str) -> float:
    """Sharpe-aware multiplier in (0.5, 1.5), neutral (1.0) when the Sharpe is undefined."""
    latest = _trusted(symbol)
    return latest.sharpe_multiplier if latest is not None else 1.0


def persisted_factor(symbol: str) -> dict:
    """The latest persisted factor in the plan's dict shape plus provenance.

    {"symbol", "score", "size_factor", "components", "snapshot_id", "as_of", "stale", "fallback_reason"}.
    No snapshot: factor 1.0, fallback "no_snapshot". Stale (see fallback_reason_of): 1.0, stale,
    "stale_snapshot" or "stale_input".
    """
    latest = hot_state.latest(symbol)
    reason = fallback_reason_of(latest)
    if latest is None:
        return {
            "symbol": symbol, "score": None, "size_factor": 1.0, "components": {}, "snapshot_id": None,
            "as_of": None, "stale": False, "fallback_reason": reason,
        }
    stale = bool(reason)
    return {
        "symbol": symbol, "score": latest.score, "size_factor": 1.0 if stale else latest.size_factor,
        "components": latest.components, "snapshot_id": latest.snapshot_id, "as_of": latest.as_of,
        "stale": stale, "fallback_reason": reason,
    }
