"""What size_for would apply to a symbol now: the policy-applied factor and the stack, from the hot state.

The latest-factor API answers this, so an engine reading factors over REST applies exactly what
an in-process size_for would: the same functions, the same policy, no query once warm.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..conf import sizing_settings
from ..domain.stack import bound_total
from ..models import Override
from ..policy.resolution import policy_apply
from .hot_state import LatestFactor, hot_state
from .steps import inverse_vol_size, persisted_factor, regime_multiplier, sharpe_multiplier


@dataclass(frozen=True)
class SizingTerms:
    """The multipliers a size for `symbol` would get now, and why (mode, override, staleness)."""

    symbol: str
    latest: LatestFactor | None
    mode: str
    override: Override | None
    stale: bool
    fallback_reason: str
    intel_factor: float  # proposed: the persisted (or pinned) factor within the clamp, 1.0 when stale
    applied_factor: float  # multiplied in: intel_factor in live mode, 1.0 in shadow and off
    inverse_vol_multiplier: float
    regime_multiplier: float
    sharpe_multiplier: float

    @property
    def total_multiplier(self) -> float:
        """final size / gross target, as size_for multiplies it (same order) and bounds it."""
        config = sizing_settings()
        product = (1.0 * self.inverse_vol_multiplier * self.regime_multiplier * self.sharpe_multiplier
                   * self.applied_factor)
        return bound_total(1.0, product, config.total_min, config.total_max)[0]


def sizing_terms(symbol: str, now: datetime) -> SizingTerms:
    intel = persisted_factor(symbol)
    policy = hot_state.policy(symbol, now)
    intel_factor, applied_factor, fallback_reason = policy_apply(intel=intel, policy=policy)
    return SizingTerms(
        symbol=symbol, latest=hot_state.latest(symbol), mode=policy.mode, override=policy.override,
        stale=bool(intel.get("stale", False)), fallback_reason=fallback_reason, intel_factor=intel_factor,
        applied_factor=applied_factor, inverse_vol_multiplier=inverse_vol_size(symbol, 1.0),
        regime_multiplier=regime_multiplier(symbol), sharpe_multiplier=sharpe_multiplier(symbol),
    )
