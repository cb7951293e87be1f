"""Pure scoring: from one symbol's input arrays to metrics, stack multipliers, score and factor.

No Django here, so every rule is testable with plain arrays and the same code serves the
bulk recompute, the live `compute_symbol_score` and the benchmarks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import metrics
from .metrics import finite_or_none
from .stack import inverse_vol_multiplier, regime_multiplier, sharpe_multiplier

FACTOR_FLOOR = 0.25
FACTOR_CEILING = 2.0
# Each +2 of score doubles the size, each -2 halves it: 2.0x at +2, 0.25x at -4.
SCORE_PER_DOUBLING = 2.0

MS_PER_DAY = 86_400_000
SHARPE_WINDOW_DAYS = 7
EXECUTION_WINDOW_DAYS = 7
ATR_PERIOD = 14
REGIME_SHORT_PERIOD = 14
REGIME_LONG_PERIOD = 168


@dataclass(frozen=True)
class Component:
    """How one metric contributes: weight * confidence * tanh(direction * (value - center) / scale)."""

    name: str
    weight: float
    center: float
    scale: float
    direction: int
    full_sample: int  # sample size at which the component counts fully; fewer shrinks it to 0


COMPONENTS = (
    Component("sharpe_7d", weight=1.0, center=0.0, scale=2.0, direction=+1, full_sample=5),
    Component("max_drawdown", weight=1.0, center=0.02, scale=0.05, direction=-1, full_sample=5),
    Component("atr_regime", weight=0.75, center=0.0, scale=1.0, direction=-1, full_sample=1),
    Component("slippage_bps", weight=1.0, center=2.0, scale=10.0, direction=-1, full_sample=30),
    Component("fill_rate", weight=0.5, center=0.9, scale=0.1, direction=+1, full_sample=20),
    Component("maker_ratio", weight=0.5, center=0.5, scale=0.25, direction=+1, full_sample=30),
)
MAX_ABS_SCORE = sum(component.weight for component in COMPONENTS)


def score_to_size_factor(score: float, factor_min: float = FACTOR_FLOOR, factor_max: float = FACTOR_CEILING) -> float:
    """Map a score to a size factor: continuous, non-decreasing, 1.0 at 0, clamped to the bounds.

    Non-finite scores give the neutral 1.0: an undefined score must never move size.
    """
    if isinstance(score, bool) or not isinstance(score, (int, float, np.floating, np.integer)):
        raise TypeError(f"score must be a number, got {type(score).__name__}")
    factor_min = max(FACTOR_FLOOR, factor_min)
    factor_max = min(FACTOR_CEILING, factor_max)
    if factor_min > factor_max:
        raise ValueError(f"factor bounds are inverted: min {factor_min} > max {factor_max}")
    try:
        score = float(score)
    except OverflowError:  # an integer beyond float range: finite, so it clamps like any huge score
        return factor_max if score > 0 else factor_min
    if not math.isfinite(score):
        return 1.0
    # Clamp the exponent first so huge scores cannot overflow.
    exponent = min(max(score / SCORE_PER_DOUBLING, math.log2(factor_min)), math.log2(factor_max))
    return min(max(2.0**exponent, factor_min), factor_max)


def limit_step(
    previous: float | None, proposed: float, max_step: float,
    factor_min: float = FACTOR_FLOOR, factor_max: float = FACTOR_CEILING,
) -> float:
    """Move from the previous persisted factor toward `proposed` by at most +/- max_step (relative).

    With no previous factor the walk starts from the neutral 1.0, so a new symbol ramps in.
    """
    start = previous if previous is not None and math.isfinite(previous) and previous > 0 else 1.0
    if math.isnan(proposed):
        proposed = start  # an undefined proposal keeps the factor where it was
    bounded = min(max(proposed, start * (1.0 - max_step)), start * (1.0 + max_step))
    return min(max(bounded, max(FACTOR_FLOOR, factor_min)), min(FACTOR_CEILING, factor_max))


@dataclass
class SymbolInputs:
    """One symbol's raw inputs for one as-of bucket; times are epoch milliseconds (UTC).

    Candles are closed bars before as_of, ascending. Fills cover the lookback, ascending;
    fill_net_pnl is NaN where the fill carries no realized PnL; fill_arrival is NaN where unknown,
    and may be NaN before the execution window too, where slippage is not measured.
    Orders are the terminal orders submitted in the execution window.
    """

    symbol: str
    as_of_ms: int
    lookback_days: int
    interval: str = "1h"
    capital_base: float = 100_000.0
    candle_open_ms: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    high: np.ndarray = field(default_factory=lambda: np.empty(0))
    low: np.ndarray = field(default_factory=lambda: np.empty(0))
    close: np.ndarray = field(default_factory=lambda: np.empty(0))
    fill_time_ms: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    fill_side: np.ndarray = field(default_factory=lambda: np.empty(0))
    fill_qty: np.ndarray = field(default_factory=lambda: np.empty(0))
    fill_price: np.ndarray = field(default_factory=lambda: np.empty(0))
    fill_arrival: np.ndarray = field(default_factory=lambda: np.empty(0))
    fill_is_maker: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    fill_net_pnl: np.ndarray = field(default_factory=lambda: np.empty(0))
    order_requested_qty: np.ndarray = field(default_factory=lambda: np.empty(0))
    order_filled_qty: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass
class Evaluation:
    """Everything a snapshot stores, computed from SymbolInputs."""

    metrics: dict[str, float | int | None]
    inverse_vol_multiplier: float
    regime_multiplier: float
    sharpe_multiplier: float
    score: float
    components: dict[str, dict[str, float | int | None]]
    raw_size_factor: float
    size_factor: float
    status: str


def _sharpe_window_start_ms(as_of_ms: int) -> int:
    """Start of the first of the 7 UTC days whose returns make the Sharpe ending at as_of.

    The last level before it (the close of the day before) is the base of the first return.
    """
    last_day_start = ((as_of_ms - 1) // MS_PER_DAY) * MS_PER_DAY
    return last_day_start - (SHARPE_WINDOW_DAYS - 1) * MS_PER_DAY


def equity_curve(inputs: SymbolInputs) -> tuple[np.ndarray, np.ndarray]:
    """(times, equity): capital base plus cumulative net realized PnL over the lookback.

    Equity is floored at 0: losing more than the capital is a 100% drawdown, not a negative level.
    """
    has_pnl = np.isfinite(inputs.fill_net_pnl)
    times = inputs.fill_time_ms[has_pnl]
    equity = np.maximum(inputs.capital_base + np.cumsum(inputs.fill_net_pnl[has_pnl]), 0.0)
    start_ms = inputs.as_of_ms - inputs.lookback_days * MS_PER_DAY
    return np.concatenate(([start_ms], times)), np.concatenate(([inputs.capital_base], equity))


def _windowed_daily_sharpe(times: np.ndarray, values: np.ndarray, as_of_ms: int) -> float | None:
    """Daily Sharpe of a level series over the 7 UTC days ending at as_of (7 returns)."""
    window_start = _sharpe_window_start_ms(as_of_ms)
    before = times < window_start
    inside = ~before
    if not before.any():
        return None  # no level known before the window: the first return would be invented
    base_time = window_start - 1  # the last level before the window closes day D-7
    series_times = np.concatenate(([base_time], times[inside], [as_of_ms - 1]))
    last_value = values[inside][-1] if inside.any() else values[before][-1]
    series_values = np.concatenate(([values[before][-1]], values[inside], [last_value]))
    return metrics.daily_sharpe(series_times, series_values)


def compute_metrics(inputs: SymbolInputs) -> dict[str, float | int | None]:
    """Every metric the score and the stack use; None where the data cannot define it."""
    high, low, close = inputs.high, inputs.low, inputs.close
    result: dict[str, float | int | None] = {"candle_count": int(close.size)}
    result["last_close"] = finite_or_none(close[-1]) if close.size else None
    if close.size:
        # Wilder's recursion is a Python loop: compute each period's ATR% once and share it.
        atr_pct_by_period = {
            period: metrics.atr_pct(high, low, close, period)[-1]
            for period in {ATR_PERIOD, REGIME_SHORT_PERIOD, REGIME_LONG_PERIOD}
        }
        result["atr_pct"] = finite_or_none(atr_pct_by_period[ATR_PERIOD])
        result["atr_regime_ratio"] = finite_or_none(
            metrics.regime_ratio(atr_pct_by_period[REGIME_SHORT_PERIOD], atr_pct_by_period[REGIME_LONG_PERIOD])
        )
    else:
        result["atr_pct"] = result["atr_regime_ratio"] = None
    result["realized_volatility"] = finite_or_none(
        metrics.realized_volatility(close, metrics.bars_per_year(inputs.interval))
    )
    result["market_sharpe_7d"] = (
        _windowed_daily_sharpe(inputs.candle_open_ms, close, inputs.as_of_ms) if close.size else None
    )

    equity_times, equity = equity_curve(inputs)
    window_start = _sharpe_window_start_ms(inputs.as_of_ms)
    pnl_times = equity_times[1:]
    result["active_days"] = int(np.unique(pnl_times[pnl_times >= window_start] // MS_PER_DAY).size)
    result["sharpe_7d"] = finite_or_none(_windowed_daily_sharpe(equity_times, equity, inputs.as_of_ms))
    result["max_drawdown"] = finite_or_none(metrics.max_drawdown(equity)) if equity.size > 1 else None

    recent = inputs.fill_time_ms >= inputs.as_of_ms - EXECUTION_WINDOW_DAYS * MS_PER_DAY
    qty = inputs.fill_qty[recent]
    result["fill_count"] = int(qty.size)
    arrival = inputs.fill_arrival[recent]
    benchmarked = np.isfinite(arrival) & (arrival > 0)
    result["benchmarked_fill_count"] = int(benchmarked.sum())
    if benchmarked.any():
        slippage = metrics.arrival_slippage_bps(
            inputs.fill_side[recent][benchmarked], inputs.fill_price[recent][benchmarked], arrival[benchmarked]
        )
        result["slippage_bps"] = finite_or_none(metrics.weighted_mean(slippage, qty[benchmarked]))
    else:
        result["slippage_bps"] = None
    result["maker_ratio"] = finite_or_none(metrics.maker_ratio(qty, inputs.fill_is_maker[recent])) if qty.size else None
    result["order_count"] = int(inputs.order_requested_qty.size)
    result["fill_rate"] = (
        finite_or_none(metrics.fill_rate(inputs.order_filled_qty, inputs.order_requested_qty))
        if inputs.order_requested_qty.size else None
    )
    return result


def score_components(values: dict[str, float | int | None]) -> tuple[float, dict[str, dict[str, Any]]]:
    """Weighted, sample-shrunk sum of bounded component contributions; missing data adds 0."""
    regime = finite_or_none(values.get("atr_regime_ratio"))
    component_values = {
        "sharpe_7d": (finite_or_none(values.get("sharpe_7d")), values.get("active_days", 0)),
        "max_drawdown": (finite_or_none(values.get("max_drawdown")), values.get("active_days", 0)),
        "atr_regime": (math.log2(regime) if regime and regime > 0 else None, 1 if regime else 0),
        "slippage_bps": (finite_or_none(values.get("slippage_bps")), values.get("benchmarked_fill_count", 0)),
        "fill_rate": (finite_or_none(values.get("fill_rate")), values.get("order_count", 0)),
        "maker_ratio": (finite_or_none(values.get("maker_ratio")), values.get("fill_count", 0)),
    }
    score = 0.0
    components: dict[str, dict[str, Any]] = {}
    for component in COMPONENTS:
        value, sample = component_values[component.name]
        sample = finite_or_none(sample) or 0.0
        confidence = min(1.0, max(sample, 0.0) / component.full_sample) if value is not None else 0.0
        contribution = 0.0
        if value is not None and confidence > 0:
            strength = math.tanh(component.direction * (value - component.center) / component.scale)
            contribution = component.weight * confidence * strength
        score += contribution
        components[component.name] = {
            "value": value, "sample": int(sample), "confidence": confidence,
            "weight": component.weight, "contribution": contribution,
        }
    return score, components


def evaluate(
    inputs: SymbolInputs, *, previous_factor: float | None, target_volatility: float, max_step: float,
    factor_min: float = FACTOR_FLOOR, factor_max: float = FACTOR_CEILING,
) -> Evaluation:
    """Compute a symbol's full snapshot content for one bucket."""
    values = compute_metrics(inputs)
    score, components = score_components(values)
    raw_factor = score_to_size_factor(score, factor_min, factor_max)
    if values["candle_count"] == 0 and values["fill_count"] == 0:
        status = "no_data"
    elif any(component["value"] is None for component in components.values()):
        status = "partial"
    else:
        status = "ok"
    return Evaluation(
        metrics=values,
        inverse_vol_multiplier=inverse_vol_multiplier(values["realized_volatility"], target_volatility),
        regime_multiplier=regime_multiplier(values["atr_regime_ratio"]),
        sharpe_multiplier=sharpe_multiplier(values["sharpe_7d"]),
        score=score,
        components=components,
        raw_size_factor=raw_factor,
        size_factor=limit_step(previous_factor, raw_factor, max_step, factor_min, factor_max),
        status=status,
    )
