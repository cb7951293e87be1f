"""Pure scoring: from one symbol's input arrays to metrics, stack multipliers, score and factor.

No Django here, so every rule is testable with plain arrays and the same code serves the
bulk recompute, the live `compute_symbol_score` and the benchmarks.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import accounting, bars, metrics
from .metrics import finite_or_none
from .stack import inverse_vol_multiplier, regime_multiplier, sharpe_multiplier

FACTOR_FLOOR = 0.25
FACTOR_CEILING = 2.0
# Each +2 of score doubles the size, each -2 halves it: 2.0x at +2, 0.25x at -4.
SCORE_PER_DOUBLING = 2.0

MS_PER_DAY = 86_400_000
SHARPE_WINDOW_DAYS = 7
MS_PER_HOUR = 3_600_000
HOURS_PER_YEAR = 365 * 24
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
    previous: float | None, proposed: float, *, hours: float, step_per_hour: float,
    factor_min: float = FACTOR_FLOOR, factor_max: float = FACTOR_CEILING,
) -> float:
    """Move from the previous persisted factor toward `proposed` by at most x(1 + step)^hours or /(1 + step)^hours.

    In time, not per recompute: the same market moves the factor as fast whatever the recompute
    interval (6 minutes allow x1.10^0.1 at the default 10 % an hour). With no previous factor the
    walk starts from the neutral 1.0, so a new symbol ramps in.
    """
    start = previous if previous is not None and math.isfinite(previous) and previous > 0 else 1.0
    if math.isnan(proposed):
        proposed = start  # an undefined proposal keeps the factor where it was
    hours = hours if hours > 0 else 0.0  # NaN, or a previous dated later (clock skew): no move
    log_reach = hours * math.log1p(step_per_hour)
    if log_reach >= math.log(FACTOR_CEILING / FACTOR_FLOOR):
        bounded = proposed  # long enough for any move within the clamp (and no overflow)
    else:
        reach = math.exp(log_reach)
        bounded = min(max(proposed, start / reach), start * reach)
    return min(max(bounded, max(FACTOR_FLOOR, factor_min)), min(FACTOR_CEILING, factor_max))


@dataclass
class SymbolInputs:
    """One symbol's raw inputs for one as-of bucket, each as it was known at as_of; times are epoch ms (UTC).

    Candles: the configured interval's closed bars of the lookback (ascending), raw; the metrics read
    them as canonical hourly bars (domain/bars.py). last_candle_close_ms: when the newest closed
    candle closed, None without any. Fills: every fill executed before as_of, in execution order
    (time, then trade id), for the position accounting; fill_fee_asset "" means the source did not
    say (the quote currency); fill_source_pnl is the source's own realized PnL, NaN where it gives
    none; fill_arrival is NaN where unknown. Orders: those submitted in the execution window and
    terminal before as_of, with the quantity filled by then. capital_base None: the default
    (accounting.default_capital).
    """

    symbol: str
    as_of_ms: int
    lookback_days: int
    interval: str = "1h"
    capital_base: float | None = None
    base_asset: str = ""
    quote_asset: str = ""
    max_candle_age_ms: int = 3 * 3_600_000
    candle_open_ms: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    open: np.ndarray = field(default_factory=lambda: np.empty(0))
    high: np.ndarray = field(default_factory=lambda: np.empty(0))
    low: np.ndarray = field(default_factory=lambda: np.empty(0))
    close: np.ndarray = field(default_factory=lambda: np.empty(0))
    volume: np.ndarray = field(default_factory=lambda: np.empty(0))
    last_candle_close_ms: int | None = None
    fill_time_ms: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    fill_side: np.ndarray = field(default_factory=lambda: np.empty(0))
    fill_qty: np.ndarray = field(default_factory=lambda: np.empty(0))
    fill_price: np.ndarray = field(default_factory=lambda: np.empty(0))
    fill_fee: np.ndarray = field(default_factory=lambda: np.empty(0))
    fill_fee_asset: list[str] = field(default_factory=list)
    fill_source_pnl: np.ndarray = field(default_factory=lambda: np.empty(0))
    fill_arrival: np.ndarray = field(default_factory=lambda: np.empty(0))
    fill_is_maker: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    fee_prices: dict[str, accounting.FeePrices] = field(default_factory=dict)
    order_requested_qty: np.ndarray = field(default_factory=lambda: np.empty(0))
    order_filled_qty: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __post_init__(self):
        # Columns a source may lack default per row: no fee, no source PnL, no arrival, taker, and
        # candles whose open is unknown (the close stands in) and whose volume is unknown (NaN: never
        # taken for an empty placeholder).
        fills, candles = self.fill_time_ms.size, self.candle_open_ms.size
        defaults = {"fill_fee": (fills, 0.0), "fill_source_pnl": (fills, np.nan), "fill_arrival": (fills, np.nan),
                    "fill_is_maker": (fills, False), "volume": (candles, np.nan)}
        for name, (size, value) in defaults.items():
            if getattr(self, name).size != size:
                setattr(self, name, np.full(size, value, dtype=bool if value is False else float))
        if self.open.size != candles:
            self.open = self.close
        if len(self.fill_fee_asset) != fills:
            self.fill_fee_asset = [""] * fills
        if self.last_candle_close_ms is None and candles:
            self.last_candle_close_ms = int(self.candle_open_ms[-1]) + metrics.interval_milliseconds(self.interval)

    def fills(self) -> accounting.Fills:
        return accounting.Fills(time_ms=self.fill_time_ms, side=self.fill_side, qty=self.fill_qty,
                                price=self.fill_price, fee=self.fill_fee, fee_asset=self.fill_fee_asset,
                                source_realized_pnl=self.fill_source_pnl)

    def known_at_as_of(self) -> SymbolInputs:
        """These inputs without anything not yet known at as_of: fills at or after it, candles not closed by it.

        The selectors read only what was known; this keeps the pure computation point-in-time whoever
        built the inputs.
        """
        fills_known = int(np.searchsorted(self.fill_time_ms, self.as_of_ms, side="left"))
        closes = self.candle_open_ms + metrics.interval_milliseconds(self.interval)
        candles_known = int(np.searchsorted(closes, self.as_of_ms, side="right"))
        if fills_known == self.fill_time_ms.size and candles_known == self.candle_open_ms.size:
            return self
        fill_names = ("fill_time_ms", "fill_side", "fill_qty", "fill_price", "fill_fee", "fill_source_pnl",
                      "fill_arrival", "fill_is_maker")
        candle_names = ("candle_open_ms", "open", "high", "low", "close", "volume")
        changes = {name: getattr(self, name)[:fills_known] for name in fill_names}
        changes.update({name: getattr(self, name)[:candles_known] for name in candle_names})
        changes["fill_fee_asset"] = list(self.fill_fee_asset[:fills_known])
        if candles_known < self.candle_open_ms.size:
            changes["last_candle_close_ms"] = int(closes[candles_known - 1]) if candles_known else None
        return dataclasses.replace(self, **changes)

    def raw_candles(self) -> bars.Bars:
        return bars.Bars(self.candle_open_ms, self.open, self.high, self.low, self.close, self.volume)


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

    The level at its start (the end of the day before) is the base of the first return.
    """
    last_day_start = ((as_of_ms - 1) // MS_PER_DAY) * MS_PER_DAY
    return last_day_start - (SHARPE_WINDOW_DAYS - 1) * MS_PER_DAY


def sharpe_sample_times(as_of_ms: int) -> np.ndarray:
    """The 8 instants whose levels make the 7 daily returns: each UTC day's end, the last at as_of."""
    window_start = _sharpe_window_start_ms(as_of_ms)
    day_ends = window_start + MS_PER_DAY * np.arange(SHARPE_WINDOW_DAYS, dtype=np.int64)
    return np.append(day_ends, np.int64(as_of_ms))


def _daily_sharpe_of_samples(sample_ms: np.ndarray, levels: np.ndarray) -> float | None:
    # A level at a day's end belongs to the day that ended: labelled 1 ms before the boundary.
    return metrics.daily_sharpe(sample_ms - 1, levels)


@dataclass(frozen=True)
class Marks:
    """The raw candles' closes by close time: the mark of a position at any instant."""

    close_ms: np.ndarray
    close: np.ndarray

    def at(self, sample_ms: np.ndarray) -> np.ndarray:
        """The close of the last candle closed at or before each instant; NaN before the first."""
        index = np.searchsorted(self.close_ms, sample_ms, side="right") - 1
        return np.where(index >= 0, self.close[np.maximum(index, 0)] if self.close.size else np.nan, np.nan)


def _exposure_days(fill_ms: np.ndarray, ledger: accounting.Ledger, window_start: int, as_of_ms: int) -> int:
    """UTC days of the Sharpe window with a fill, or with a position held at the day's start."""
    day_starts = window_start + MS_PER_DAY * np.arange(SHARPE_WINDOW_DAYS, dtype=np.int64)
    day_starts = day_starts[day_starts < as_of_ms]
    if not len(ledger):
        return 0
    held_before = np.searchsorted(fill_ms, day_starts, side="left") - 1
    held = (held_before >= 0) & (ledger.qty[np.maximum(held_before, 0)] != 0.0)
    traded = np.zeros(day_starts.size, dtype=bool)
    recent = fill_ms[fill_ms >= window_start]
    traded[np.unique((recent - window_start) // MS_PER_DAY).astype(np.int64)] = True
    return int((held | traded).sum())


def compute_metrics(inputs: SymbolInputs) -> dict[str, float | int | None]:
    """Every metric the score and the stack use; None where the data cannot define it.

    Market metrics read the canonical hourly bars of the lookback (domain/bars.py); equity is the
    symbol's marked-to-market account from its fills (domain/accounting.py).
    """
    inputs = inputs.known_at_as_of()
    as_of = inputs.as_of_ms
    window_end = bars.closed_hours_end(as_of)
    window_start = window_end - inputs.lookback_days * MS_PER_DAY
    raw = inputs.raw_candles()
    hourly = bars.hourly_bars(raw, start_ms=window_start, end_ms=window_end)
    high, low, close = hourly.high, hourly.low, hourly.close
    result: dict[str, float | int | None] = {"candle_count": len(hourly)}
    interval_ms = metrics.interval_milliseconds(inputs.interval)
    priced = np.isfinite(inputs.close) & (inputs.close > 0)  # a close of 0, NaN or inf marks nothing
    marks = Marks(inputs.candle_open_ms[priced] + interval_ms, inputs.close[priced])
    result["last_close"] = finite_or_none(inputs.close[-1]) if inputs.close.size else None
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
    result["realized_volatility"] = finite_or_none(metrics.realized_volatility(close, HOURS_PER_YEAR))
    sharpe_samples = sharpe_sample_times(as_of)
    result["market_sharpe_7d"] = (
        _daily_sharpe_of_samples(sharpe_samples, marks.at(sharpe_samples)) if close.size else None
    )

    fills = inputs.fills()
    ledger = accounting.account(fills, base=inputs.base_asset, quote=inputs.quote_asset,
                                fee_prices=inputs.fee_prices)
    capital = inputs.capital_base or accounting.default_capital(ledger, fills, since_ms=window_start) or 1.0
    result["capital"] = finite_or_none(capital)
    sharpe_equity = accounting.equity_curve(ledger, fills.time_ms, marks.close_ms, marks.close, sharpe_samples,
                                            capital)
    result["active_days"] = _exposure_days(fills.time_ms, ledger, _sharpe_window_start_ms(as_of), as_of)
    result["sharpe_7d"] = (
        finite_or_none(_daily_sharpe_of_samples(sharpe_samples, sharpe_equity)) if len(ledger) else None
    )
    # Drawdown over the lookback: E at its start, at every hour's close and at as_of.
    hour_closes = np.arange(window_start, window_end + 1, MS_PER_HOUR, dtype=np.int64)
    drawdown_samples = np.append(hour_closes, np.int64(as_of)) if hour_closes[-1] != as_of else hour_closes
    drawdown_equity = accounting.equity_curve(ledger, fills.time_ms, marks.close_ms, marks.close, drawdown_samples,
                                              capital)
    result["max_drawdown"] = finite_or_none(metrics.max_drawdown(drawdown_equity)) if len(ledger) else None

    position = accounting.position_at(ledger, fills.time_ms, marks.close_ms, marks.close, as_of)
    result.update(
        position_qty=finite_or_none(position.qty), avg_cost=finite_or_none(position.avg_cost),
        realized_pnl=finite_or_none(position.realized_pnl), fees_quote=finite_or_none(position.fees),
        unconverted_fee_count=position.unconverted_fees, unrealized_pnl=finite_or_none(position.unrealized_pnl),
        equity=finite_or_none(drawdown_equity[-1]),
        last_candle_at_ms=inputs.last_candle_close_ms,
        last_fill_at_ms=int(fills.time_ms[-1]) if len(fills) else None,
    )
    source = inputs.fill_source_pnl
    given = np.isfinite(source) if source.size else np.zeros(0, dtype=bool)
    result["source_realized_pnl"] = finite_or_none(source[given].sum()) if given.any() else None

    recent = inputs.fill_time_ms >= as_of - EXECUTION_WINDOW_DAYS * MS_PER_DAY
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


def input_is_stale(inputs: SymbolInputs) -> bool:
    """Whether the newest closed candle is older than the allowed age (or there is none, while fills are)."""
    if inputs.last_candle_close_ms is None:
        return inputs.fill_time_ms.size > 0
    return inputs.as_of_ms - inputs.last_candle_close_ms > inputs.max_candle_age_ms


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
    inputs: SymbolInputs, *, previous_factor: float | None, hours_since_previous: float, target_volatility: float,
    step_per_hour: float, factor_min: float = FACTOR_FLOOR, factor_max: float = FACTOR_CEILING,
) -> Evaluation:
    """Compute a symbol's full snapshot content for one bucket.

    Stale input (the candle feed stopped) keeps its metrics for diagnosis but proposes nothing:
    neutral stack multipliers and a neutral raw factor, toward which the persisted factor walks.
    """
    values = compute_metrics(inputs)
    score, components = score_components(values)
    sharpe_confidence = components["sharpe_7d"]["confidence"]
    if values["candle_count"] == 0 and values["last_fill_at_ms"] is None:
        status = "no_data"
    elif input_is_stale(inputs):
        status = "stale_input"
    elif any(component["value"] is None for component in components.values()):
        status = "partial"
    else:
        status = "ok"
    stale = status == "stale_input"
    raw_factor = 1.0 if stale else score_to_size_factor(score, factor_min, factor_max)
    return Evaluation(
        metrics=values,
        inverse_vol_multiplier=1.0 if stale else inverse_vol_multiplier(values["realized_volatility"],
                                                                         target_volatility),
        regime_multiplier=1.0 if stale else regime_multiplier(values["atr_regime_ratio"]),
        sharpe_multiplier=1.0 if stale else sharpe_multiplier(values["sharpe_7d"], sharpe_confidence),
        score=score,
        components=components,
        raw_size_factor=raw_factor,
        size_factor=limit_step(previous_factor, raw_factor, hours=hours_since_previous,
                               step_per_hour=step_per_hour, factor_min=factor_min, factor_max=factor_max),
        status=status,
    )
