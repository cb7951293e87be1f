"""The engine's inverse-volatility and ATR-regime sizing steps, read from the latest snapshot.

Both multipliers are computed by the recompute (scoring.py) and are neutral without data.
"""
from .latest import hot_state


def inverse_vol_size(symbol: str, base_size: float) -> float:
    """base_size scaled toward the target volatility, the multiplier bounded to [0.25, 2.0]."""
    latest = hot_state.latest(symbol)
    return base_size * (latest.inverse_vol_multiplier if latest is not None else 1.0)


def volatility_regime_scale(symbol: str) -> float:
    """Multiplier in [0.5, 1.25]: below 1 when recent ATR% runs above its long-run level."""
    latest = hot_state.latest(symbol)
    return latest.regime_multiplier if latest is not None else 1.0
