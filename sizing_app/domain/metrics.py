"""Volatility, performance and execution-quality metrics used by position sizing.

Pure numpy so sizing, reports and benchmarks share one definition, checked against TA-Lib and empyrical.
"""

from __future__ import annotations

import math
import numbers
import re
from datetime import UTC, datetime, timedelta

import numpy as np

__all__ = [
    "arrival_slippage_bps",
    "atr",
    "atr_pct",
    "atr_regime_ratio",
    "bars_per_year",
    "daily_sharpe",
    "finite_or_none",
    "fill_rate",
    "maker_ratio",
    "max_drawdown",
    "normalize_interval",
    "on_interval_grid",
    "realized_volatility",
    "regime_ratio",
    "true_range",
    "weighted_mean",
]

# Crypto markets never close, so a year is every calendar day, not 252 sessions.
DAYS_PER_YEAR = 365
BASIS_POINTS = 1e4

_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 7 * 86_400}
_SECONDS_PER_YEAR = DAYS_PER_YEAR * 86_400
# Exchange interval notation (Binance, ccxt): an upper-case "M" is a month, a lower-case "m" a minute.
_INTERVAL_PATTERN = re.compile(r"([0-9]+)([smhdwM])")

_MICROSECONDS_PER_MILLISECOND = 1_000
_MICROSECONDS_PER_DAY = 86_400 * 1_000_000
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _float_series(values, name: str) -> np.ndarray:
    series = np.asarray(values, dtype=np.float64)
    if series.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {series.shape}")
    return series


def _ohlc_series(high, low, close) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    high = _float_series(high, "high")
    low = _float_series(low, "low")
    close = _float_series(close, "close")
    if not len(high) == len(low) == len(close):
        raise ValueError(
            f"high, low and close must have the same length, got {len(high)}, {len(low)}, {len(close)}"
        )
    return high, low, close


def _positive_integer(value, name: str) -> int:
    # Booleans are ints in Python; a period of True is a bug, not a period of 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def finite_or_none(value) -> float | None:
    """value as a float when it is a finite number; None for None, NaN and infinities."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def true_range(high, low, close) -> np.ndarray:
    """True range per bar, as TA-Lib's TRANGE.

    TR[i] = max(H[i] - L[i], |H[i] - C[i-1]|, |L[i] - C[i-1]|) for i >= 1. Index 0 is NaN
    because the first bar has no previous close to measure a gap from.
    """
    high, low, close = _ohlc_series(high, low, close)
    ranges = np.full(len(close), np.nan)
    if len(close) < 2:
        return ranges
    previous_close = close[:-1]
    ranges[1:] = np.maximum.reduce(
        [
            high[1:] - low[1:],
            np.abs(high[1:] - previous_close),
            np.abs(low[1:] - previous_close),
        ]
    )
    return ranges


# Inputs near the float limit overflow to inf in a product or a sum; every caller treats a
# non-finite result as "no value", so the overflow is expected, not a warning.
_overflow_is_not_finite = np.errstate(over="ignore", invalid="ignore")

@_overflow_is_not_finite
def atr(high, low, close, period: int = 14) -> np.ndarray:
    """Wilder's average true range, identical to ``talib.ATR(high, low, close, timeperiod=period)``.

    The result has the input's length. Indices 0..period-1 are NaN; index ``period`` is the plain
    mean of TR[1..period]; after that ATR[i] = (ATR[i-1] * (period - 1) + TR[i]) / period.
    Fewer than ``period + 1`` bars give all NaN. Raises ValueError on mismatched lengths or
    ``period < 1``.
    """
    period = _positive_integer(period, "period")
    return _wilder_average(true_range(high, low, close), period)


def _wilder_average(ranges: np.ndarray, period: int) -> np.ndarray:
    """Wilder's smoothing of true ranges (index 0 unused), NaN before index ``period``."""
    averages = np.full(len(ranges), np.nan)
    if len(ranges) <= period:
        return averages
    # TA-Lib's operation order (left-to-right sum, then divide; multiply, add, divide) so results
    # match it bit for bit rather than merely within rounding; numpy's pairwise sum would not.
    # Each step depends on the previous one, so no numpy: a plain loop over Python floats, which
    # appends to a list because per-element stores into a numpy array cost twice as much. The
    # period as a float (exact: an int converts to the same double either way) saves a
    # conversion per operation.
    ranges_list = ranges.tolist()
    average = sum(ranges_list[1 : period + 1]) / period
    smoothed = [average]
    append = smoothed.append
    keep, divisor = float(period - 1), float(period)
    for range_value in ranges_list[period + 1 :]:
        average = (average * keep + range_value) / divisor
        append(average)
    averages[period:] = smoothed
    return averages


def atr_pct(high, low, close, period: int = 14) -> np.ndarray:
    """ATR as a percentage of the close, comparable across price levels and symbols."""
    high, low, close = _ohlc_series(high, low, close)
    with np.errstate(divide="ignore", invalid="ignore"):
        return atr(high, low, close, period) / close * 100.0


def atr_regime_ratio(high, low, close, short: int = 14, long: int = 168) -> float | None:
    """Latest short-period ATR% divided by latest long-period ATR%.

    Above 1 the recent market is more violent than its longer-run norm, below 1 calmer.
    None when the input is too short for the long period or either value is zero or not finite.
    """
    high, low, close = _ohlc_series(high, low, close)
    short_pct = atr_pct(high, low, close, short)
    long_pct = atr_pct(high, low, close, long)
    if len(close) == 0:
        return None
    return regime_ratio(short_pct[-1], long_pct[-1])


def regime_ratio(recent_atr_pct: float, usual_atr_pct: float) -> float | None:
    """The ATR regime ratio from the two latest ATR% values (see atr_regime_ratio).

    For callers that already hold both ATR% series and should not compute them twice.
    """
    recent, usual = float(recent_atr_pct), float(usual_atr_pct)
    if not (math.isfinite(recent) and math.isfinite(usual)) or recent == 0 or usual == 0:
        return None
    return finite_or_none(recent / usual)


def realized_volatility(close, periods_per_year: float) -> float | None:
    """Annualised realised volatility: sample std (ddof=1) of log returns times sqrt(periods_per_year).

    None if there are fewer than 2 returns, or if any close is non-finite or <= 0: a log return
    is undefined there, and silently dropping bars would understate the volatility.
    """
    if not (isinstance(periods_per_year, numbers.Real) and periods_per_year > 0 and math.isfinite(periods_per_year)):
        raise ValueError(f"periods_per_year must be a positive finite number, got {periods_per_year!r}")
    close = _float_series(close, "close")
    if len(close) < 3 or not np.all(np.isfinite(close)) or not np.all(close > 0):
        return None
    log_returns = np.diff(np.log(close))
    return finite_or_none(np.std(log_returns, ddof=1) * math.sqrt(periods_per_year))


def bars_per_year(interval: str) -> float:
    """Number of bars of an exchange interval ("1m", "5m", "1h", "4h", "1d", "1w", "1M") in a 365-day year.

    Units: s, m (minute), h, d, w and M (month, 12 a year). Raises ValueError for anything else.
    """
    match = _INTERVAL_PATTERN.fullmatch(interval) if isinstance(interval, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"unknown interval {interval!r}; expected e.g. '1m', '5m', '1h', '4h', '1d'")
    count, unit = int(match.group(1)), match.group(2)
    bars = 12.0 / count if unit == "M" else _SECONDS_PER_YEAR / (count * _SECONDS_PER_UNIT[unit])
    if not bars > 0:  # a count so large that a year holds no measurable fraction of a bar
        raise ValueError(f"interval {interval!r} is too long")
    return bars


def interval_milliseconds(interval: str) -> int:
    """The length of a fixed-length interval ("1m" .. "1w") in milliseconds; months have none (ValueError)."""
    bars_per_year(interval)  # the same validation and message
    match = _INTERVAL_PATTERN.fullmatch(interval)
    count, unit = int(match.group(1)), match.group(2)
    if unit == "M":
        raise ValueError(f"interval {interval!r} has no fixed length")
    return count * _SECONDS_PER_UNIT[unit] * 1000


_UNIT_SECONDS_DESCENDING = (("w", 7 * 86_400), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
# Binance's weekly bars open on Mondays; 1970-01-01 was a Thursday, the first Monday 1970-01-05.
_FIRST_MONDAY_SECONDS = 4 * 86_400


def normalize_interval(interval: str) -> str:
    """An exchange interval in its one spelling: the largest unit that divides it ("60m" -> "1h", "24h" -> "1d").

    Weeks are not derived from days: Binance's week bars open on Mondays, "7d" bars on the epoch grid.
    Raises ValueError for anything bars_per_year refuses.
    """
    bars_per_year(interval)
    match = _INTERVAL_PATTERN.fullmatch(interval)
    count, unit = int(match.group(1)), match.group(2)
    if unit in ("M", "w"):
        return interval if str(count) == match.group(1) else f"{count}{unit}"
    seconds = count * _SECONDS_PER_UNIT[unit]
    for name, size in _UNIT_SECONDS_DESCENDING[1:]:
        if seconds % size == 0:
            return f"{seconds // size}{name}"
    raise AssertionError("unreachable: seconds divide by 1")


def on_interval_grid(open_time_us: np.ndarray, interval: str) -> np.ndarray:
    """For each open time (epoch microseconds), whether a bar of `interval` can open there.

    Bars open on multiples of their length since 1970-01-01 00:00 UTC, weeks on Mondays and months
    on the first of the month at midnight; anything else is not an exchange bar (a shifted timestamp).
    """
    open_time_us = np.asarray(open_time_us, dtype=np.int64)
    match = _INTERVAL_PATTERN.fullmatch(normalize_interval(interval))
    count, unit = int(match.group(1)), match.group(2)
    if unit == "M":
        moments = open_time_us.astype("datetime64[us]")
        months = moments.astype("datetime64[M]")
        starts = months.astype("datetime64[us]") == moments
        return starts & (months.astype(np.int64) % count == 0)
    length_us = count * _SECONDS_PER_UNIT[unit] * 1_000_000
    offset_us = _FIRST_MONDAY_SECONDS * 1_000_000 if unit == "w" else 0
    return (open_time_us - offset_us) % length_us == 0


def _datetime_microseconds(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _UNIX_EPOCH) // _ONE_MICROSECOND


# Epoch milliseconds whose microseconds still fit in int64 (about +/-292,000 years).
_MAX_EPOCH_MILLISECONDS = np.iinfo(np.int64).max // 1000


def _millisecond_microseconds(milliseconds) -> int:
    if isinstance(milliseconds, numbers.Integral):
        return int(milliseconds) * _MICROSECONDS_PER_MILLISECOND
    milliseconds = float(milliseconds)
    if not math.isfinite(milliseconds):
        raise ValueError(f"times must be finite, got {milliseconds!r}")
    return round(milliseconds * _MICROSECONDS_PER_MILLISECOND)


def _epoch_microseconds(times) -> np.ndarray:
    """UTC epoch microseconds for datetimes (naive means UTC), datetime64 values or epoch milliseconds."""
    raw = np.asarray(times)
    if raw.ndim != 1:
        raise ValueError(f"times must be one-dimensional, got shape {raw.shape}")
    if raw.dtype.kind == "M":
        if np.any(np.isnat(raw)):
            raise ValueError("times must not contain NaT")
        return raw.astype("datetime64[us]").astype(np.int64)
    if raw.dtype.kind in "iu":
        if len(raw) and (raw.max() > _MAX_EPOCH_MILLISECONDS or raw.min() < -_MAX_EPOCH_MILLISECONDS):
            raise ValueError("times are out of range for epoch milliseconds")
        return raw.astype(np.int64) * _MICROSECONDS_PER_MILLISECOND
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)):
            raise ValueError("times must be finite")
        return np.round(raw * _MICROSECONDS_PER_MILLISECOND).astype(np.int64)
    if raw.dtype.kind != "O":
        raise ValueError(f"times must be datetimes or epoch milliseconds, got dtype {raw.dtype}")
    microseconds = np.empty(len(raw), dtype=np.int64)
    for index, moment in enumerate(raw):
        try:
            if isinstance(moment, datetime):
                microseconds[index] = _datetime_microseconds(moment)
            elif isinstance(moment, np.datetime64) and not np.isnat(moment):
                microseconds[index] = moment.astype("datetime64[us]").astype(np.int64)
            elif isinstance(moment, numbers.Real) and not isinstance(moment, (bool, np.bool_)):
                microseconds[index] = _millisecond_microseconds(moment)
            else:
                raise ValueError(f"times must be datetimes or epoch milliseconds, got {moment!r}")
        except OverflowError:
            raise ValueError(f"time {moment!r} is out of range") from None
    return microseconds


def daily_sharpe(times, values) -> float | None:
    """Annualised Sharpe ratio of daily simple returns of a price or equity level series (risk-free 0).

    Each UTC calendar day takes its last observation; days between the first and last day
    without one carry the previous day's level (a 0 return), so quiet days are not skipped.
    Sharpe = mean / std(ddof=1) * sqrt(365), which equals
    ``empyrical.sharpe_ratio(series.resample("1D").last().ffill().pct_change().dropna(), annualization=365)``.

    ``times`` are datetimes (naive means UTC), datetime64 values or epoch milliseconds, in any
    order; at equal times the later array position wins. NaN levels are skipped like pandas'
    ``last()`` does. Fewer than 2 returns, zero std or a non-finite result give None, never NaN.
    """
    microseconds = _epoch_microseconds(times)
    levels = _float_series(values, "values")
    if len(microseconds) != len(levels):
        raise ValueError(f"times and values must have the same length, got {len(microseconds)} and {len(levels)}")
    observed = ~np.isnan(levels)
    microseconds, levels = microseconds[observed], levels[observed]
    if len(levels) == 0:
        return None

    # A stable sort keeps duplicates of one instant in array order, so "last of the day" is the later one.
    chronological = np.argsort(microseconds, kind="stable")
    days = microseconds[chronological] // _MICROSECONDS_PER_DAY
    levels = levels[chronological]
    closes_a_day = np.append(days[1:] != days[:-1], True)
    observed_days = days[closes_a_day] - days[0]
    day_closes = levels[closes_a_day]

    calendar = np.arange(observed_days[-1] + 1)
    latest_observed = np.searchsorted(observed_days, calendar, side="right") - 1
    daily_levels = day_closes[latest_observed]
    if len(daily_levels) < 3:
        return None

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        daily_returns = daily_levels[1:] / daily_levels[:-1] - 1.0
        mean = np.mean(daily_returns)
        spread = np.std(daily_returns, ddof=1)
        if not (math.isfinite(mean) and math.isfinite(spread)) or spread == 0:
            return None
        return finite_or_none(mean / spread * math.sqrt(DAYS_PER_YEAR))


_SIDE_SIGNS = {"buy": 1.0, "sell": -1.0}


def _single_side_sign(side) -> float:
    if isinstance(side, str):
        sign = _SIDE_SIGNS.get(side.lower())
    elif isinstance(side, numbers.Real) and not isinstance(side, (bool, np.bool_)) and side in (1, -1):
        sign = float(side)
    else:
        sign = None
    if sign is None:
        raise ValueError(f"side must be 'buy', 'sell', +1 or -1, got {side!r}")
    return sign


def _side_sign(side) -> np.ndarray:
    numeric_sides = np.asarray(side)
    if numeric_sides.dtype.kind in "iuf":
        if not np.all((numeric_sides == 1) | (numeric_sides == -1)):
            raise ValueError(f"side must be 'buy', 'sell', +1 or -1, got {side!r}")
        return numeric_sides.astype(np.float64)
    sides = np.asarray(side, dtype=object)
    signs = np.empty(sides.shape)
    for position, single_side in np.ndenumerate(sides):
        signs[position] = _single_side_sign(single_side)
    return signs


@_overflow_is_not_finite
def arrival_slippage_bps(side, fill_price, arrival_price):
    """Slippage against the arrival (decision-time) price in basis points; positive is a cost.

    side * (fill - arrival) / arrival * 1e4, with side "buy"/"sell" (any case) or +1/-1, so buying
    above or selling below the arrival price is positive. Scalars give a float, arrays an array
    (inputs broadcast). Raises ValueError for an unknown side or an arrival price that is not
    positive and finite, since the cost is relative to it.
    """
    sign = _side_sign(side)
    fill = np.asarray(fill_price, dtype=np.float64)
    arrival = np.asarray(arrival_price, dtype=np.float64)
    if not np.all(np.isfinite(arrival) & (arrival > 0)):
        raise ValueError(f"arrival_price must be positive and finite, got {arrival_price!r}")
    slippage = sign * (fill - arrival) / arrival * BASIS_POINTS
    if slippage.ndim == 0:
        return float(slippage)
    return slippage


@_overflow_is_not_finite
def weighted_mean(values, weights) -> float | None:
    """Weighted mean ignoring pairs whose value or weight is not finite; None when the weights sum to 0."""
    values = np.atleast_1d(_float_series(np.ravel(values), "values"))
    weights = np.atleast_1d(_float_series(np.ravel(weights), "weights"))
    if len(values) != len(weights):
        raise ValueError(f"values and weights must have the same length, got {len(values)} and {len(weights)}")
    usable = np.isfinite(values) & np.isfinite(weights)
    values, weights = values[usable], weights[usable]
    total_weight = np.sum(weights)
    if total_weight == 0:
        return None
    return finite_or_none(np.sum(values * weights) / total_weight)


def _quantities(values, name: str) -> np.ndarray:
    return _float_series(np.ravel(values), name)


@_overflow_is_not_finite
def fill_rate(filled_qty, requested_qty) -> float | None:
    """Quantity-weighted fill rate, sum(filled) / sum(requested); None unless sum(requested) is positive and finite.

    Weighting by quantity stops many tiny fully filled orders hiding one large unfilled order.
    """
    filled = _quantities(filled_qty, "filled_qty")
    requested = _quantities(requested_qty, "requested_qty")
    if len(filled) != len(requested):
        raise ValueError(
            f"filled_qty and requested_qty must have the same length, got {len(filled)} and {len(requested)}"
        )
    total_requested = np.sum(requested)
    if not (math.isfinite(total_requested) and total_requested > 0):
        return None
    return finite_or_none(np.sum(filled) / total_requested)


def _boolean_flags(flags, name: str) -> np.ndarray:
    raw = np.ravel(np.asarray(flags))
    if raw.dtype.kind == "b":
        return raw
    # Truthiness of arbitrary objects would turn the string "false" into a maker fill.
    if raw.dtype.kind in "iuf" and np.all((raw == 0) | (raw == 1)):
        return raw.astype(bool)
    if raw.dtype.kind == "O" and all(isinstance(flag, (bool, np.bool_)) for flag in raw):
        return raw.astype(bool)
    raise ValueError(f"{name} must be booleans (or 0/1), got dtype {raw.dtype}")


@_overflow_is_not_finite
def maker_ratio(fill_qty, is_maker) -> float | None:
    """Share of filled quantity executed as maker; None unless the total fill quantity is positive and finite."""
    quantities = _quantities(fill_qty, "fill_qty")
    maker = _boolean_flags(is_maker, "is_maker")
    if len(quantities) != len(maker):
        raise ValueError(f"fill_qty and is_maker must have the same length, got {len(quantities)} and {len(maker)}")
    total = np.sum(quantities)
    if not (math.isfinite(total) and total > 0):
        return None
    return finite_or_none(np.sum(quantities[maker]) / total)


def max_drawdown(equity) -> float:
    """Largest peak-to-trough fall of an equity or price level series, as a positive fraction in [0, 1].

    0 for a non-decreasing series or fewer than 2 points. Equals
    ``-empyrical.max_drawdown(simple returns of the series)``, since empyrical compounds those
    returns back into the same levels scaled by the first one. Levels must be finite and
    non-negative (ValueError otherwise); a zero peak has nothing to lose and counts as no drawdown.
    """
    levels = _float_series(equity, "equity")
    if not np.all(np.isfinite(levels)) or np.any(levels < 0):
        raise ValueError("equity must be finite and non-negative")
    if len(levels) < 2:
        return 0.0
    peaks = np.maximum.accumulate(levels)
    drawdowns = np.zeros_like(levels)
    np.divide(peaks - levels, peaks, out=drawdowns, where=peaks > 0)
    return float(np.max(drawdowns))
