"""The plan's module for the inverse-volatility and ATR-regime steps: a thin alias of sizing/steps.py.

Kept so code written against the plan (`sizing_app.position_sizing`) still runs; the product imports
sizing.steps. volatility_regime_scale is the plan's name of sizing.steps.regime_multiplier.
"""
from .sizing.steps import inverse_vol_size
from .sizing.steps import regime_multiplier as volatility_regime_scale

__all__ = ["inverse_vol_size", "volatility_regime_scale"]
