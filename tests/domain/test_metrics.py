"""Tests for sizing_app.metrics: hand-computed values, TA-Lib/empyrical agreement on real candles, properties.

Sections follow the module's function order.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import empyrical
import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

# pytest-django usually puts the project root on sys.path; these tests must also run under -p no:django.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from sizing_app.domain.metrics import (  # noqa: E402  (after the sys.path set-up above)
    arrival_slippage_bps,
    atr,
    atr_pct,
    atr_regime_ratio,
    bars_per_year,
    daily_sharpe,
    fill_rate,
    maker_ratio,
    max_drawdown,
    realized_volatility,
    true_range,
    weighted_mean,
)
from tests.shared_data import shared_data_file  # noqa: E402

REFERENCE_RTOL = 1e-9
MS_PER_DAY = 86_400_000

# Five bars: a normal bar, an inside move, a gap up and a gap down, so every TR branch wins once.
HIGH = [10.0, 12.0, 11.0, 15.0, 6.0]
LOW = [8.0, 9.0, 7.0, 13.0, 5.0]
CLOSE = [9.0, 11.0, 8.0, 14.0, 5.5]

BTC_FILE = "market/BTCUSDT-1h-2023-01_2023-05.csv"
FREQTRADE_FILES = ["market/ETH_BTC-5m.json", "market/LTC_BTC-5m.json", "market/XRP_ETH-1m.json"]
ALL_FILES = [BTC_FILE, *FREQTRADE_FILES]


@cache
def _load_candles(relative: str) -> dict[str, np.ndarray]:
    path = shared_data_file(relative)
    if path.suffix == ".csv":
        rows = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(5))
    else:
        with path.open() as handle:
            rows = np.array(json.load(handle), dtype=np.float64)
    return {
        "time_ms": rows[:, 0].astype(np.int64),
        "high": rows[:, 2].copy(),
        "low": rows[:, 3].copy(),
        "close": rows[:, 4].copy(),
    }


def candles(relative: str) -> dict[str, np.ndarray]:
    # The cache would also memoise a skip, so resolve the path first on every call.
    shared_data_file(relative)
    return _load_candles(relative)


def reference_daily_sharpe(time_ms, values) -> float:
    index = pd.to_datetime(np.asarray(time_ms), unit="ms", utc=True)
    series = pd.Series(np.asarray(values, dtype=np.float64), index=index)
    series = series.sort_index(kind="stable")
    daily_returns = series.resample("1D").last().ffill().pct_change().dropna()
    return empyrical.sharpe_ratio(daily_returns, annualization=365)


def utc(year, month, day, hour=0, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- true_range -----------------------------------------------------------------------------


def test_true_range_by_hand():
    # TR[1] = max(12-9, |12-9|, |9-9|)      = 3   (bar range)
    # TR[2] = max(11-7, |11-11|, |7-11|)    = 4   (range and low gap tie)
    # TR[3] = max(15-13, |15-8|, |13-8|)    = 7   (gap up: high vs previous close)
    # TR[4] = max(6-5, |6-14|, |5-14|)      = 9   (gap down: low vs previous close)
    ranges = true_range(HIGH, LOW, CLOSE)
    assert math.isnan(ranges[0])
    np.testing.assert_array_equal(ranges[1:], [3.0, 4.0, 7.0, 9.0])


def test_true_range_short_inputs_are_nan():
    assert true_range([], [], []).shape == (0,)
    assert np.isnan(true_range([2.0], [1.0], [1.5])).all()


def test_true_range_matches_talib_trange():
    ranges = true_range(HIGH, LOW, CLOSE)
    expected = talib.TRANGE(np.array(HIGH), np.array(LOW), np.array(CLOSE))
    np.testing.assert_array_equal(ranges, expected)


def test_true_range_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        true_range([1.0, 2.0], [1.0], [1.0, 2.0])


# --- atr ------------------------------------------------------------------------------------


def test_atr_seed_and_wilder_steps_by_hand():
    # period 2: ATR[2] = (TR1 + TR2) / 2 = (3 + 4) / 2          = 3.5    (seed: plain mean)
    #           ATR[3] = (3.5 * 1 + 7) / 2                        = 5.25   (Wilder step)
    #           ATR[4] = (5.25 * 1 + 9) / 2                       = 7.125
    values = atr(HIGH, LOW, CLOSE, period=2)
    assert np.isnan(values[:2]).all()
    np.testing.assert_array_equal(values[2:], [3.5, 5.25, 7.125])


def test_atr_period_three_by_hand():
    # period 3: ATR[3] = (3 + 4 + 7) / 3 = 14/3; ATR[4] = (14/3 * 2 + 9) / 3 = (28/3 + 27/3) / 3 = 55/9
    values = atr(HIGH, LOW, CLOSE, period=3)
    assert np.isnan(values[:3]).all()
    assert values[3] == pytest.approx(14 / 3, rel=1e-15)
    assert values[4] == pytest.approx(55 / 9, rel=1e-15)


def test_atr_period_one_is_true_range():
    # (ATR_prev * 0 + TR) / 1 = TR, and the seed is TR[1] itself.
    np.testing.assert_array_equal(atr(HIGH, LOW, CLOSE, period=1), true_range(HIGH, LOW, CLOSE))


def test_atr_warm_up_positions_with_default_period():
    bars = 20
    values = atr(np.full(bars, 11.0), np.full(bars, 9.0), np.full(bars, 10.0))
    # Indices 0..13 NaN, index 14 is the first value (mean of TR[1..14] = 2).
    assert np.isnan(values[:14]).all()
    np.testing.assert_array_equal(values[14:], np.full(bars - 14, 2.0))


@pytest.mark.parametrize("bars", [0, 1, 2, 3])
def test_atr_too_short_is_all_nan(bars):
    # Period 3 needs period + 1 = 4 bars: one to provide the previous close, three true ranges.
    values = atr(HIGH[:bars], LOW[:bars], CLOSE[:bars], period=3)
    assert values.shape == (bars,)
    assert np.isnan(values).all()


def test_atr_accepts_lists_and_integer_arrays():
    from_lists = atr([10, 12, 11, 15], [8, 9, 7, 13], [9, 11, 8, 14], period=2)
    from_arrays = atr(np.array([10, 12, 11, 15]), np.array([8, 9, 7, 13]), np.array([9, 11, 8, 14]), period=2)
    assert from_lists.dtype == np.float64
    np.testing.assert_array_equal(from_lists, from_arrays)


@pytest.mark.parametrize("period", [0, -1, 2.5, True])
def test_atr_rejects_invalid_period(period):
    with pytest.raises(ValueError):
        atr(HIGH, LOW, CLOSE, period=period)


def test_atr_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        atr(HIGH, LOW[:-1], CLOSE)


@pytest.mark.parametrize("relative", ALL_FILES)
@pytest.mark.parametrize("period", [1, 14, 168])
def test_atr_matches_talib_on_real_candles(relative, period):
    bars = candles(relative)
    ours = atr(bars["high"], bars["low"], bars["close"], period=period)
    expected = talib.ATR(bars["high"], bars["low"], bars["close"], timeperiod=period)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_allclose(ours, expected, rtol=REFERENCE_RTOL, atol=0, equal_nan=True)


def test_atr_spans_the_btc_trading_halt():
    # The 2023-03-24 12:00 bar is flat (O=H=L=C) and 13:00 is missing; ATR must stay finite across it.
    bars = candles(BTC_FILE)
    halt = np.flatnonzero(bars["time_ms"] == epoch_ms(utc(2023, 3, 24, 12)))
    assert halt.size == 1
    values = atr(bars["high"], bars["low"], bars["close"])
    assert np.isfinite(values[halt[0] - 2 : halt[0] + 3]).all()


# --- atr_pct --------------------------------------------------------------------------------


def test_atr_pct_by_hand():
    # period 2: 3.5 / 8 * 100 = 43.75; 5.25 / 14 * 100 = 37.5; 7.125 / 5.5 * 100 = 129.5454...
    values = atr_pct(HIGH, LOW, CLOSE, period=2)
    assert np.isnan(values[:2]).all()
    np.testing.assert_allclose(values[2:], [43.75, 37.5, 712.5 / 5.5], rtol=1e-15)


@pytest.mark.parametrize("relative", ALL_FILES)
def test_atr_pct_matches_talib_on_real_candles(relative):
    bars = candles(relative)
    expected = talib.ATR(bars["high"], bars["low"], bars["close"], timeperiod=14) / bars["close"] * 100
    ours = atr_pct(bars["high"], bars["low"], bars["close"])
    np.testing.assert_allclose(ours, expected, rtol=REFERENCE_RTOL, atol=0, equal_nan=True)


# --- atr_regime_ratio -----------------------------------------------------------------------


def test_atr_regime_ratio_by_hand():
    # Same last close on both sides, so it cancels: ATR2[4] / ATR3[4] = 7.125 / (55/9) = 64.125 / 55
    assert atr_regime_ratio(HIGH, LOW, CLOSE, short=2, long=3) == pytest.approx(64.125 / 55, rel=1e-15)


def test_atr_regime_ratio_undefined_cases():
    # Five bars cannot warm up a period-5 ATR (needs six).
    assert atr_regime_ratio(HIGH, LOW, CLOSE, short=2, long=5) is None
    assert atr_regime_ratio([], [], []) is None
    flat = np.full(30, 100.0)
    assert atr_regime_ratio(flat, flat, flat, short=3, long=10) is None
    closes_with_nan = np.array(CLOSE)
    closes_with_nan[-1] = np.nan
    assert atr_regime_ratio(HIGH, LOW, closes_with_nan, short=2, long=3) is None


def test_atr_regime_ratio_on_real_candles():
    bars = candles(BTC_FILE)
    high, low, close = bars["high"], bars["low"], bars["close"]
    expected = (talib.ATR(high, low, close, 14)[-1] / close[-1]) / (talib.ATR(high, low, close, 168)[-1] / close[-1])
    assert atr_regime_ratio(high, low, close) == pytest.approx(expected, rel=REFERENCE_RTOL)


# --- realized_volatility --------------------------------------------------------------------


def test_realized_volatility_by_hand():
    # closes 1, e, 1 -> log returns +1, -1; mean 0; sample var = (1 + 1) / (2 - 1) = 2; * sqrt(4) -> 2*sqrt(2)
    assert realized_volatility([1.0, math.e, 1.0], periods_per_year=4) == pytest.approx(2 * math.sqrt(2), rel=1e-12)
    # closes 1, e, e^3 -> log returns 1, 2; sample std = sqrt(0.5); * sqrt(8760)
    expected = math.sqrt(0.5) * math.sqrt(8760)
    assert realized_volatility([1.0, math.e, math.e**3], bars_per_year("1h")) == pytest.approx(expected, rel=1e-12)


def test_realized_volatility_constant_prices_is_zero():
    assert realized_volatility([5.0, 5.0, 5.0], 365) == 0.0


@pytest.mark.parametrize(
    "closes",
    [[], [1.0], [1.0, 2.0], [1.0, 0.0, 2.0], [1.0, -2.0, 3.0], [1.0, np.nan, 2.0, 3.0], [1.0, np.inf, 2.0]],
)
def test_realized_volatility_undefined_is_none(closes):
    assert realized_volatility(closes, 365) is None


@pytest.mark.parametrize("periods", [0, -1, math.inf, math.nan])
def test_realized_volatility_rejects_invalid_periods_per_year(periods):
    with pytest.raises(ValueError):
        realized_volatility([1.0, 2.0, 3.0], periods)


@pytest.mark.parametrize(
    ("relative", "interval"), [(BTC_FILE, "1h"), (FREQTRADE_FILES[0], "5m"), (FREQTRADE_FILES[2], "1m")]
)
def test_realized_volatility_matches_pandas_on_real_candles(relative, interval):
    close = pd.Series(candles(relative)["close"])
    expected = np.log(close).diff().dropna().std(ddof=1) * math.sqrt(bars_per_year(interval))
    assert realized_volatility(close.to_numpy(), bars_per_year(interval)) == pytest.approx(expected, rel=REFERENCE_RTOL)


# --- bars_per_year --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ("1s", 365 * 86_400),
        ("1m", 365 * 1440),  # 525600
        ("5m", 365 * 288),  # 105120
        ("15m", 365 * 96),  # 35040
        ("30m", 365 * 48),  # 17520
        ("1h", 8760),
        ("2h", 4380),
        ("4h", 2190),
        ("12h", 730),
        ("1d", 365),
        ("3d", 365 / 3),
        ("1w", 365 / 7),
        ("1M", 12),
    ],
)
def test_bars_per_year(interval, expected):
    assert bars_per_year(interval) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("interval", ["", "h", "0h", "1x", "1 h", "1hour", "-1h", "1.5h", "1H", None, 60])
def test_bars_per_year_rejects_unknown_interval(interval):
    with pytest.raises(ValueError):
        bars_per_year(interval)


# --- daily_sharpe ---------------------------------------------------------------------------

# Day 1 closes at 100 (an earlier 90 is superseded), day 2 at 110, day 3 has no observation
# and day 4 at 121. Daily levels 100, 110, 110, 121 -> returns 0.1, 0, 0.1.
SHARPE_TIMES = [utc(2024, 1, 1, 1), utc(2024, 1, 1, 23), utc(2024, 1, 2, 12), utc(2024, 1, 4, 0)]
SHARPE_VALUES = [90.0, 100.0, 110.0, 121.0]
# mean = 0.2/3 = 1/15; deviations 1/30, -1/15, 1/30; sum of squares 6/900; sample var 1/300;
# Sharpe = (1/15) * sqrt(300) * sqrt(365) = (2/sqrt(3)) * sqrt(365) = 2 * sqrt(365/3) ~= 22.0605
SHARPE_EXPECTED = 2 * math.sqrt(365 / 3)


def test_daily_sharpe_by_hand_with_missing_day():
    assert daily_sharpe(SHARPE_TIMES, SHARPE_VALUES) == pytest.approx(SHARPE_EXPECTED, rel=1e-12)


def test_daily_sharpe_missing_day_counts_as_zero_return():
    # Without the carried-forward day the returns would be 0.1, 0.1: zero std, hence None.
    assert daily_sharpe([utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)], [100.0, 110.0, 121.0]) is None
    assert daily_sharpe(SHARPE_TIMES, SHARPE_VALUES) is not None


def test_daily_sharpe_matches_reference_by_hand_example():
    time_ms = [epoch_ms(moment) for moment in SHARPE_TIMES]
    assert reference_daily_sharpe(time_ms, SHARPE_VALUES) == pytest.approx(SHARPE_EXPECTED, rel=1e-12)


def test_daily_sharpe_epoch_ms_and_datetimes_agree():
    time_ms = [epoch_ms(moment) for moment in SHARPE_TIMES]
    naive = [moment.replace(tzinfo=None) for moment in SHARPE_TIMES]
    plus_two = timezone(timedelta(hours=2))
    shifted_zone = [moment.astimezone(plus_two) for moment in SHARPE_TIMES]
    as_datetime64 = np.array([np.datetime64(moment, "ms") for moment in naive])
    results = [
        daily_sharpe(time_ms, SHARPE_VALUES),
        daily_sharpe(np.array(time_ms, dtype=np.int64), SHARPE_VALUES),
        daily_sharpe(np.array(time_ms, dtype=np.float64), SHARPE_VALUES),
        daily_sharpe(SHARPE_TIMES, SHARPE_VALUES),
        daily_sharpe(naive, SHARPE_VALUES),
        daily_sharpe(shifted_zone, SHARPE_VALUES),
        daily_sharpe(as_datetime64, SHARPE_VALUES),
        daily_sharpe(pd.DatetimeIndex(SHARPE_TIMES), SHARPE_VALUES),
    ]
    for result in results:
        assert result == pytest.approx(SHARPE_EXPECTED, rel=1e-12)


def test_daily_sharpe_buckets_by_utc_day_not_local_day():
    # 2024-01-02 01:00 at UTC+2 is 2024-01-01 23:00 UTC, so it closes day 1, not day 2.
    plus_two = timezone(timedelta(hours=2))
    times = [datetime(2024, 1, 2, 1, tzinfo=plus_two), utc(2024, 1, 2, 12), utc(2024, 1, 3, 12)]
    as_utc_days = [utc(2024, 1, 1, 23), utc(2024, 1, 2, 12), utc(2024, 1, 3, 12)]
    values = [100.0, 103.0, 101.0]
    assert daily_sharpe(times, values) == daily_sharpe(as_utc_days, values)
    assert daily_sharpe(times, values) is not None


def test_daily_sharpe_unsorted_times_and_ties():
    order = [3, 1, 0, 2]
    shuffled_times = [SHARPE_TIMES[index] for index in order]
    shuffled_values = [SHARPE_VALUES[index] for index in order]
    assert daily_sharpe(shuffled_times, shuffled_values) == pytest.approx(SHARPE_EXPECTED, rel=1e-12)
    # Two observations at the same instant: the later array position (100) wins over 95.
    tied_times = [*SHARPE_TIMES[:2], SHARPE_TIMES[1], *SHARPE_TIMES[2:]]
    tied_values = [90.0, 95.0, 100.0, 110.0, 121.0]
    assert daily_sharpe(tied_times, tied_values) == pytest.approx(SHARPE_EXPECTED, rel=1e-12)


def test_daily_sharpe_skips_nan_levels_like_pandas_last():
    # The NaN at 23:30 on day 1 is not an observation, so day 1 still closes at 100.
    times = [*SHARPE_TIMES, utc(2024, 1, 1, 23, 30)]
    values = [*SHARPE_VALUES, np.nan]
    assert daily_sharpe(times, values) == pytest.approx(SHARPE_EXPECTED, rel=1e-12)
    assert reference_daily_sharpe([epoch_ms(moment) for moment in times], values) == pytest.approx(SHARPE_EXPECTED)


@pytest.mark.parametrize(
    ("times", "values"),
    [
        ([], []),
        ([utc(2024, 1, 1)], [100.0]),
        ([utc(2024, 1, 1, 1), utc(2024, 1, 1, 20)], [100.0, 120.0]),  # one day: no return
        ([utc(2024, 1, 1), utc(2024, 1, 2)], [100.0, 110.0]),  # one return: no sample std
        ([utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)], [100.0, 100.0, 100.0]),  # zero std
        ([utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)], [0.0, 100.0, 90.0]),  # infinite return
        ([utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)], [100.0, np.inf, 90.0]),
        ([utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)], [np.nan, np.nan, np.nan]),
    ],
)
def test_daily_sharpe_undefined_is_none(times, values):
    assert daily_sharpe(times, values) is None


@pytest.mark.parametrize(
    ("times", "values"),
    [
        ([utc(2024, 1, 1), utc(2024, 1, 2)], [1.0]),
        (["2024-01-01", "2024-01-02", "2024-01-03"], [1.0, 2.0, 3.0]),
        ([True, False, True], [1.0, 2.0, 3.0]),
        ([0.0, np.nan, 2 * MS_PER_DAY], [1.0, 2.0, 3.0]),
        (np.array(["2024-01-01", "NaT", "2024-01-03"], dtype="datetime64[ms]"), [1.0, 2.0, 3.0]),
    ],
)
def test_daily_sharpe_rejects_bad_input(times, values):
    with pytest.raises(ValueError):
        daily_sharpe(times, values)


def test_daily_sharpe_matches_empyrical_on_whole_btc_file():
    bars = candles(BTC_FILE)
    expected = reference_daily_sharpe(bars["time_ms"], bars["close"])
    assert daily_sharpe(bars["time_ms"], bars["close"]) == pytest.approx(expected, rel=REFERENCE_RTOL)


@pytest.mark.parametrize("first_bar", [0, 7, 500, 1234, 1700, 2000, 2900, 3623 - 192])
def test_daily_sharpe_matches_empyrical_on_btc_eight_day_windows(first_bar):
    # 192 hourly bars = 8 days, starting off midnight so the first and last days are partial.
    bars = candles(BTC_FILE)
    window = slice(first_bar, first_bar + 192)
    time_ms, close = bars["time_ms"][window], bars["close"][window]
    expected = reference_daily_sharpe(time_ms, close)
    assert math.isfinite(expected)
    assert daily_sharpe(time_ms, close) == pytest.approx(expected, rel=REFERENCE_RTOL)


def test_daily_sharpe_matches_empyrical_on_btc_with_missing_days():
    # Remove two whole UTC days so the carry-forward path is exercised on real prices.
    bars = candles(BTC_FILE)
    day = bars["time_ms"] // MS_PER_DAY
    gap_days = [epoch_ms(utc(2023, 3, 10)) // MS_PER_DAY, epoch_ms(utc(2023, 3, 14)) // MS_PER_DAY]
    kept = ~np.isin(day, gap_days)
    window = kept & (bars["time_ms"] >= epoch_ms(utc(2023, 3, 5))) & (bars["time_ms"] < epoch_ms(utc(2023, 3, 20)))
    time_ms, close = bars["time_ms"][window], bars["close"][window]
    expected = reference_daily_sharpe(time_ms, close)
    assert daily_sharpe(time_ms, close) == pytest.approx(expected, rel=REFERENCE_RTOL)


def test_daily_sharpe_real_candles_as_datetimes_match_epoch_ms():
    bars = candles(BTC_FILE)
    time_ms, close = bars["time_ms"][:500], bars["close"][:500]
    moments = [datetime.fromtimestamp(ms / 1000, tz=UTC) for ms in time_ms.tolist()]
    assert daily_sharpe(moments, close) == daily_sharpe(time_ms, close)


@pytest.mark.parametrize("relative", FREQTRADE_FILES)
def test_daily_sharpe_matches_empyrical_on_freqtrade_candles(relative):
    bars = candles(relative)
    expected = reference_daily_sharpe(bars["time_ms"], bars["close"])
    assert daily_sharpe(bars["time_ms"], bars["close"]) == pytest.approx(expected, rel=REFERENCE_RTOL)


def test_daily_sharpe_shuffled_real_candles_match_sorted():
    bars = candles(FREQTRADE_FILES[0])
    permutation = np.random.default_rng(7).permutation(len(bars["close"]))
    shuffled = daily_sharpe(bars["time_ms"][permutation], bars["close"][permutation])
    assert shuffled == daily_sharpe(bars["time_ms"], bars["close"])


# --- arrival_slippage_bps -------------------------------------------------------------------


def test_arrival_slippage_by_hand():
    # buy at 100.5 vs arrival 100: +1 * 0.5 / 100 * 1e4 = +50 bps (cost)
    # sell at 100.5 vs arrival 100: -1 * 0.5 / 100 * 1e4 = -50 bps (price improvement)
    assert arrival_slippage_bps("buy", 100.5, 100.0) == pytest.approx(50.0, rel=1e-12)
    assert arrival_slippage_bps("sell", 100.5, 100.0) == pytest.approx(-50.0, rel=1e-12)
    # sell at 99 vs 100: -1 * -1 / 100 * 1e4 = +100 bps (sold below arrival: cost)
    assert arrival_slippage_bps("SELL", 99.0, 100.0) == pytest.approx(100.0, rel=1e-12)
    assert arrival_slippage_bps(1, 100.0, 100.0) == 0.0


def test_arrival_slippage_scalar_returns_float():
    result = arrival_slippage_bps("Buy", 101, 100)
    assert type(result) is float
    assert result == pytest.approx(100.0, rel=1e-12)


def test_arrival_slippage_arrays():
    # (101 - 100)/100 * 1e4 = 100; sell (99 - 100)/100 * 1e4 * -1 = 100; buy 99.9 vs 100 = -10
    result = arrival_slippage_bps(np.array(["buy", "sell", "BUY"]), np.array([101.0, 99.0, 99.9]), 100.0)
    assert isinstance(result, np.ndarray)
    np.testing.assert_allclose(result, [100.0, 100.0, -10.0], rtol=1e-12)
    mixed = arrival_slippage_bps(["buy", -1, 1.0], [101.0, 99.0, 99.9], [100.0, 100.0, 100.0])
    np.testing.assert_allclose(mixed, [100.0, 100.0, -10.0], rtol=1e-12)
    numeric = arrival_slippage_bps(np.array([1, -1]), [101.0, 101.0], [100.0, 100.0])
    np.testing.assert_allclose(numeric, [100.0, -100.0], rtol=1e-12)


@pytest.mark.parametrize("side", ["long", "", 0, 2, -2, 0.5, True, None, ["buy", "hold"], [1, 0]])
def test_arrival_slippage_rejects_unknown_side(side):
    with pytest.raises(ValueError):
        arrival_slippage_bps(side, 100.0, 100.0)


@pytest.mark.parametrize("arrival", [0.0, -1.0, np.nan, np.inf, [100.0, 0.0]])
def test_arrival_slippage_rejects_non_positive_arrival(arrival):
    with pytest.raises(ValueError):
        arrival_slippage_bps("buy", 100.0, arrival)


# --- weighted_mean --------------------------------------------------------------------------


def test_weighted_mean_by_hand():
    # (1*1 + 2*1 + 3*2) / (1 + 1 + 2) = 9 / 4 = 2.25
    assert weighted_mean([1.0, 2.0, 3.0], [1.0, 1.0, 2.0]) == 2.25


def test_weighted_mean_ignores_non_finite_pairs():
    # Only (1, 1) and (3, 1) survive: (1 + 3) / 2 = 2
    assert weighted_mean([1.0, np.nan, 3.0, 7.0], [1.0, 5.0, 1.0, np.inf]) == 2.0


@pytest.mark.parametrize(
    ("values", "weights"),
    [([], []), ([1.0, 2.0], [0.0, 0.0]), ([np.nan], [1.0]), ([1.0, 2.0], [1.0, -1.0])],
)
def test_weighted_mean_zero_total_weight_is_none(values, weights):
    assert weighted_mean(values, weights) is None


def test_weighted_mean_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        weighted_mean([1.0, 2.0], [1.0])


# --- fill_rate ------------------------------------------------------------------------------


def test_fill_rate_by_hand():
    # (10 + 0 + 5) / (10 + 10 + 5) = 15 / 25 = 0.6; an unweighted mean of rates would say 2/3.
    assert fill_rate([10.0, 0.0, 5.0], [10.0, 10.0, 5.0]) == pytest.approx(0.6, rel=1e-15)


@pytest.mark.parametrize(("filled", "requested"), [([], []), ([0.0], [0.0]), ([1.0], [-1.0]), ([1.0], [np.nan])])
def test_fill_rate_undefined_is_none(filled, requested):
    assert fill_rate(filled, requested) is None


def test_fill_rate_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        fill_rate([1.0, 2.0], [3.0])


# --- maker_ratio ----------------------------------------------------------------------------


def test_maker_ratio_by_hand():
    # maker 1 + 4 of total 1 + 3 + 4 = 8 -> 5/8 = 0.625
    assert maker_ratio([1.0, 3.0, 4.0], [True, False, True]) == 0.625
    assert maker_ratio([1.0, 3.0], np.array([1, 0])) == 0.25


@pytest.mark.parametrize(("quantities", "flags"), [([], []), ([0.0, 0.0], [True, False])])
def test_maker_ratio_zero_total_is_none(quantities, flags):
    assert maker_ratio(quantities, flags) is None


@pytest.mark.parametrize("flags", [["true", "false"], [2, 0], [None, True]])
def test_maker_ratio_rejects_non_boolean_flags(flags):
    with pytest.raises(ValueError):
        maker_ratio([1.0, 2.0], flags)


def test_maker_ratio_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        maker_ratio([1.0, 2.0], [True])


# --- max_drawdown ---------------------------------------------------------------------------


def test_max_drawdown_by_hand():
    # Peaks 100, 120, 120, 120, 120, 130; troughs 90 -> 30/120 = 0.25, then 60 -> 60/120 = 0.5.
    assert max_drawdown([100.0, 120.0, 90.0, 110.0, 60.0, 130.0]) == 0.5


@pytest.mark.parametrize("equity", [[], [100.0], [100.0, 100.0, 101.0, 150.0]])
def test_max_drawdown_zero_cases(equity):
    assert max_drawdown(equity) == 0.0


def test_max_drawdown_total_loss_is_one():
    assert max_drawdown([100.0, 50.0, 0.0, 10.0]) == 1.0


@pytest.mark.parametrize("equity", [[100.0, -1.0], [100.0, np.nan], [np.inf, 1.0]])
def test_max_drawdown_rejects_invalid_levels(equity):
    with pytest.raises(ValueError):
        max_drawdown(equity)


@pytest.mark.parametrize("relative", ALL_FILES)
def test_max_drawdown_matches_empyrical_on_real_candles(relative):
    close = candles(relative)["close"]
    expected = -empyrical.max_drawdown(close[1:] / close[:-1] - 1)
    assert max_drawdown(close) == pytest.approx(expected, rel=REFERENCE_RTOL)


# --- properties -----------------------------------------------------------------------------

positive_prices = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def ohlc_bars(draw):
    bar_count = draw(st.integers(min_value=0, max_value=60))
    lows = draw(st.lists(positive_prices, min_size=bar_count, max_size=bar_count))
    spans = draw(st.lists(st.floats(min_value=0, max_value=1e4), min_size=bar_count, max_size=bar_count))
    positions = draw(st.lists(st.floats(min_value=0, max_value=1), min_size=bar_count, max_size=bar_count))
    low = np.array(lows, dtype=np.float64)
    high = low + np.array(spans, dtype=np.float64)
    close = low + (high - low) * np.array(positions, dtype=np.float64)
    return high, low, close


@settings(max_examples=150, deadline=None)
@given(bars=ohlc_bars(), period=st.integers(min_value=1, max_value=20))
def test_property_atr_non_negative_and_nan_exactly_before_warm_up(bars, period):
    high, low, close = bars
    values = atr(high, low, close, period)
    assert values.shape == close.shape
    defined_from = period if len(close) > period else len(close)
    assert np.isnan(values[:defined_from]).all()
    assert not np.isnan(values[defined_from:]).any()
    assert (values[defined_from:] >= 0).all()
    expected = talib.ATR(high, low, close, timeperiod=period)
    np.testing.assert_allclose(values, expected, rtol=REFERENCE_RTOL, atol=0, equal_nan=True)


@settings(max_examples=150, deadline=None)
@given(equity=st.lists(st.floats(min_value=0, max_value=1e12), max_size=50))
def test_property_max_drawdown_in_unit_interval(equity):
    assert 0.0 <= max_drawdown(equity) <= 1.0


quantities = st.floats(min_value=0, max_value=1e9)


@settings(max_examples=150, deadline=None)
@given(orders=st.lists(st.tuples(quantities, st.floats(min_value=0, max_value=1)), min_size=1, max_size=30))
def test_property_fill_rate_in_unit_interval(orders):
    requested = [order_qty for order_qty, _ in orders]
    filled = [order_qty * share for order_qty, share in orders]
    result = fill_rate(filled, requested)
    if sum(requested) > 0:
        assert result is not None
        assert 0.0 <= result <= 1.0
    else:
        assert result is None


@settings(max_examples=150, deadline=None)
@given(fills=st.lists(st.tuples(quantities, st.booleans()), max_size=30))
def test_property_maker_ratio_in_unit_interval(fills):
    result = maker_ratio([qty for qty, _ in fills], [flag for _, flag in fills])
    if sum(qty for qty, _ in fills) > 0:
        assert result is not None
        assert 0.0 <= result <= 1.0
    else:
        assert result is None


@settings(max_examples=200, deadline=None)
@given(
    observations=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10 * MS_PER_DAY), st.floats(allow_nan=True, allow_infinity=True)),
        max_size=40,
    )
)
def test_property_daily_sharpe_never_nan(observations):
    result = daily_sharpe([time for time, _ in observations], [value for _, value in observations])
    assert result is None or (isinstance(result, float) and math.isfinite(result))


@settings(max_examples=150, deadline=None)
@given(
    observations=st.lists(
        st.tuples(st.integers(min_value=0, max_value=12 * MS_PER_DAY), positive_prices), min_size=1, max_size=40
    )
)
def test_property_daily_sharpe_agrees_with_empyrical(observations):
    time_ms = [time for time, _ in observations]
    values = [value for _, value in observations]
    result = daily_sharpe(time_ms, values)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = reference_daily_sharpe(time_ms, values)
    if result is None:
        # Undefined for us means undefined, or a float-noise std, for the reference.
        assert not math.isfinite(expected) or abs(expected) > 1e6
    else:
        assert result == pytest.approx(expected, rel=REFERENCE_RTOL)


@settings(max_examples=150, deadline=None)
@given(fill=positive_prices, arrival=positive_prices)
def test_property_slippage_sign_flips_with_side(fill, arrival):
    bought = arrival_slippage_bps("buy", fill, arrival)
    sold = arrival_slippage_bps("sell", fill, arrival)
    assert sold == -bought
    assert arrival_slippage_bps(1, fill, arrival) == bought
    assert arrival_slippage_bps(-1, fill, arrival) == sold
    assert (bought > 0) == (fill > arrival)
