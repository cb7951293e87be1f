"""Canonical hourly bars (sizing_app.domain.bars): any candle interval that divides an hour gives the same metrics.

Checked by hand on a few candles, and on the real 1m XRP/ETH and 5m ETH/BTC candles in ../shared/data
against the same candles aggregated to 1h by pandas (first open, max high, min low, last close,
summed volume, the exchange's empty placeholder minutes left out).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:  # these tests also run under -p no:django
    sys.path.insert(0, str(PROJECT_ROOT))

from sizing_app.domain import bars, scoring  # noqa: E402
from tests.shared_data import shared_data_file  # noqa: E402

MS_PER_MINUTE = 60_000
MS_PER_HOUR = 3_600_000
T0 = 1_700_002_800_000  # an hour boundary


def candles(rows) -> bars.Bars:
    """(minute offset, open, high, low, close, volume) rows as 1m Bars from T0."""
    array = np.array(rows, dtype=float)
    return bars.Bars((T0 + array[:, 0] * MS_PER_MINUTE).astype(np.int64), array[:, 1], array[:, 2], array[:, 3],
                     array[:, 4], array[:, 5])


def test_an_hour_is_first_open_highest_high_lowest_low_last_close_summed_volume():
    hourly = bars.hourly_bars(candles([
        (0, 10, 11, 9, 10.5, 1),
        (1, 10.5, 12, 10, 11, 2),
        (59, 11, 11.5, 8, 9, 3),
        (60, 9, 9.5, 8.5, 9.2, 4),  # the next hour
    ]), start_ms=T0, end_ms=T0 + 2 * MS_PER_HOUR)
    assert hourly.open_ms.tolist() == [T0, T0 + MS_PER_HOUR]
    assert hourly.open.tolist() == [10, 9]
    assert hourly.high.tolist() == [12, 9.5]
    assert hourly.low.tolist() == [8, 8.5]
    assert hourly.close.tolist() == [9, 9.2]
    assert hourly.volume.tolist() == [6, 4]


def test_empty_placeholder_minutes_carry_no_price():
    # Binance writes a minute nothing traded in as O=H=L=C=the previous close with volume 0.
    hourly = bars.hourly_bars(candles([
        (0, 7, 7, 7, 7, 0),  # placeholder at a stale price outside the hour's range
        (1, 10, 11, 9, 10.5, 1),
        (2, 10.5, 10.5, 10.5, 10.5, 0),
    ]), start_ms=T0, end_ms=T0 + MS_PER_HOUR)
    assert (hourly.open[0], hourly.high[0], hourly.low[0], hourly.close[0]) == (10, 11, 9, 10.5)


def test_hours_without_a_trade_between_traded_hours_are_flat_at_the_previous_close():
    hourly = bars.hourly_bars(candles([
        (0, 10, 11, 9, 10.5, 1),
        (180, 12, 13, 11, 12.5, 1),  # two hours later
    ]), start_ms=T0, end_ms=T0 + 4 * MS_PER_HOUR)
    assert len(hourly) == 4
    assert hourly.close.tolist() == [10.5, 10.5, 10.5, 12.5]
    assert (hourly.high[1], hourly.low[1], hourly.volume[1]) == (10.5, 10.5, 0.0)


def test_only_closed_hours_in_the_window_count():
    rows = [(minute, 10, 11, 9, 10, 1) for minute in range(0, 150)]
    hourly = bars.hourly_bars(candles(rows), start_ms=T0 + MS_PER_HOUR, end_ms=T0 + 2 * MS_PER_HOUR)
    assert hourly.open_ms.tolist() == [T0 + MS_PER_HOUR]
    assert bars.closed_hours_end(T0 + 2 * MS_PER_HOUR + 59 * MS_PER_MINUTE) == T0 + 2 * MS_PER_HOUR
    with pytest.raises(ValueError, match="on the hour"):
        bars.hourly_bars(candles(rows), start_ms=T0 + 1, end_ms=T0 + MS_PER_HOUR)


def _freqtrade_candles(relative: str) -> pd.DataFrame:
    rows = json.loads(shared_data_file(relative).read_text())
    frame = pd.DataFrame(rows, columns=["time_ms", "open", "high", "low", "close", "volume"])
    return frame.astype({"time_ms": "int64"})


def _pandas_hourly(frame: pd.DataFrame) -> pd.DataFrame:
    """The reference aggregation: pandas resample of the traded candles into UTC hours."""
    traded = frame[~((frame.volume == 0) & (frame.high == frame.low))]
    indexed = traded.set_index(pd.to_datetime(traded.time_ms, unit="ms", utc=True))
    hourly = indexed.resample("1h").agg({"open": "first", "high": "max", "low": "min", "close": "last",
                                         "volume": "sum"})
    hourly["close"] = hourly["close"].ffill()  # an hour that traded nothing: flat at the previous close
    for column in ("open", "high", "low"):
        hourly[column] = hourly[column].fillna(hourly["close"])
    hourly["time_ms"] = (hourly.index.asi8 // 1_000_000).astype("int64")
    return hourly.reset_index(drop=True)


def _inputs(frame: pd.DataFrame, interval: str, as_of_ms: int) -> scoring.SymbolInputs:
    return scoring.SymbolInputs(
        symbol="REAL", as_of_ms=as_of_ms, lookback_days=30, interval=interval,
        candle_open_ms=frame.time_ms.to_numpy(np.int64), open=frame.open.to_numpy(float),
        high=frame.high.to_numpy(float), low=frame.low.to_numpy(float), close=frame.close.to_numpy(float),
        volume=frame.volume.to_numpy(float),
    )


@pytest.mark.parametrize(("relative", "interval"), [("market/XRP_ETH-1m.json", "1m"), ("market/ETH_BTC-5m.json", "5m")])
def test_real_fine_candles_and_their_pandas_hours_give_the_same_market_metrics(relative, interval):
    fine = _freqtrade_candles(relative)
    as_of_ms = (int(fine.time_ms.iloc[-1]) // MS_PER_HOUR) * MS_PER_HOUR  # the last whole hour's end
    hourly = _pandas_hourly(fine)
    hourly = hourly[hourly.time_ms < as_of_ms]
    from_fine = scoring.compute_metrics(_inputs(fine, interval, as_of_ms))
    from_hours = scoring.compute_metrics(_inputs(hourly, "1h", as_of_ms))
    assert from_fine["candle_count"] == from_hours["candle_count"] == len(hourly)
    for name in ("atr_pct", "atr_regime_ratio", "realized_volatility"):
        expected = from_hours[name]
        if relative.startswith("market/ETH_BTC"):
            assert expected is not None, name  # 20 days: the 168-hour regime is defined
        if expected is None:
            assert from_fine[name] is None, name
        else:
            assert from_fine[name] == pytest.approx(expected, rel=1e-9, abs=0), name


def test_the_same_market_at_1m_and_5m_gives_the_same_metrics():
    fine = _freqtrade_candles("market/XRP_ETH-1m.json")
    fine = fine[~((fine.volume == 0) & (fine.high == fine.low))]
    indexed = fine.set_index(pd.to_datetime(fine.time_ms, unit="ms", utc=True))
    five = indexed.resample("5min").agg({"open": "first", "high": "max", "low": "min", "close": "last",
                                         "volume": "sum"}).dropna()
    five["time_ms"] = (five.index.asi8 // 1_000_000).astype("int64")
    as_of_ms = (int(fine.time_ms.iloc[-1]) // MS_PER_HOUR) * MS_PER_HOUR
    one_minute = scoring.compute_metrics(_inputs(fine, "1m", as_of_ms))
    five_minutes = scoring.compute_metrics(_inputs(five.reset_index(drop=True), "5m", as_of_ms))
    for name in ("candle_count", "atr_pct", "realized_volatility"):
        assert one_minute[name] == pytest.approx(five_minutes[name], rel=1e-9), name
