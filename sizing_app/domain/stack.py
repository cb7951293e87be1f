"""The engine's existing sizing stack, as pure functions: inverse volatility, ATR regime, Sharpe.

Each step is a multiplier, bounded and neutral (1.0) without data; a size is the gross target times
the steps in this order, times the intelligence factor. No Django here.
"""
from __future__ import annotations

import math
from typing import Any

from .metrics import finite_or_none


class SizingError(ValueError):
    """A stack step returned something that is not a finite, non-negative multiplier."""


def checked_multiplier(name: str, value: Any) -> float:
    """A stack step's output as a float, or SizingError: steps may be swapped (the plan's tests do)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SizingError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise SizingError(f"{name} must be finite and non-negative, got {number!r}")
    return number + 0.0  # -0.0 becomes 0.0: SQLite stores it so, and the row hash must match what is read back


def inverse_vol_multiplier(realized_volatility: float | None, target_volatility: float) -> float:
    """Scale toward a target annualized volatility, bounded to [0.25, 2.0]; neutral without data."""
    vol = finite_or_none(realized_volatility)
    if vol is None or vol <= 0:
        return 1.0
    return min(max(target_volatility / vol, 0.25), 2.0)


def regime_multiplier(atr_regime_ratio: float | None) -> float:
    """Cut size when recent ATR% runs above its long-run level, bounded to [0.5, 1.25]."""
    ratio = finite_or_none(atr_regime_ratio)
    if ratio is None or ratio <= 0:
        return 1.0
    return min(max(1.0 / ratio, 0.5), 1.25)


def sharpe_multiplier(sharpe: float | None, confidence: float = 1.0) -> float:
    """Sharpe-aware multiplier in (0.5, 1.5): 1.0 at Sharpe 0 or when undefined.

    `confidence` in [0, 1] shrinks it toward 1.0 as the score shrinks its Sharpe component (by the
    days with exposure): one fill's 7-day Sharpe of +/-7.22 must not move size by half.
    """
    value = finite_or_none(sharpe)
    if value is None:
        return 1.0
    weight = min(max(finite_or_none(confidence) or 0.0, 0.0), 1.0)
    return 1.0 + 0.5 * math.tanh(value / 2.0) * weight


# The whole multiplier (final size / gross target) never leaves these bounds, whatever the steps
# (their own bounds multiply to 0.0156x-7.5x); settings may narrow them.
TOTAL_FLOOR = 0.1
TOTAL_CEILING = 3.0


def bound_total(gross_target: float, size: float, total_min: float, total_max: float) -> tuple[float, bool]:
    """(final size, whether the bound bit): size as the stack gave it, or gross_target times the bound.

    The product is kept as it was multiplied when inside the bound, so a size still equals the
    plan's stack bit for bit there.
    """
    if gross_target <= 0.0:
        return size, False
    total = size / gross_target
    if total < total_min:
        return gross_target * total_min, True
    if total > total_max:
        return gross_target * total_max, True
    return size, False
