"""The plan's execution-health module: a thin compatibility layer over selectors/health.py.

As in the plan, `symbol_size_factor` (the persisted factor) and `size_multiplier` are looked up in
this module at each call, so replacing them here (the plan's tests do) changes the result.
"""
import sys

from ..selectors import health
from ..sizing.steps import inverse_vol_size
from ..sizing.steps import persisted_factor as symbol_size_factor
from ..sizing.steps import regime_multiplier as volatility_regime_scale
from ..sizing.steps import sharpe_multiplier as size_multiplier

__all__ = ["compute_execution_health", "inverse_vol_size", "size_multiplier", "symbol_size_factor",
           "volatility_regime_scale"]

_THIS_MODULE = sys.modules[__name__]


def compute_execution_health(symbol: str | None = None) -> dict:
    """One symbol's health, or every active symbol's plus the latest recompute run (selectors.health)."""
    return health.compute_execution_health(symbol, steps=_THIS_MODULE)
