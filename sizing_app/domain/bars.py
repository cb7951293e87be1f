"""Canonical hourly bars: every candle interval that divides an hour becomes the same closed 1h bars.

The metrics read hours, so 1m, 5m and 1h candles of one market give the same ATR, regime and
volatility, and a window is a span of time, not a count of bars. Pure numpy, no Django.

- An hour's bar is its candles' first open, highest high, lowest low, last close and summed volume.
- Empty candles (volume 0 and no range: the placeholder an exchange writes when nothing traded)
  carry no price and are ignored; an hour with nothing else, or with no candle at all, between two
  traded hours is a flat bar at the previous close (what the exchange itself writes as an empty
  hourly kline), so a window of N hours holds N bars wherever the market traded around it.
- Only closed hours count: an hour is in once it has ended at or before as_of.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class Bars:
    """OHLCV bars, ascending by open time (epoch ms)."""

    open_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.open_ms.size)

    @classmethod
    def empty(cls) -> Bars:
        nothing = np.empty(0)
        return cls(np.empty(0, dtype=np.int64), nothing, nothing, nothing, nothing, nothing)


def closed_hours_end(as_of_ms: int) -> int:
    """The open time of the first hour not yet closed at as_of: windows end here."""
    return (as_of_ms // MS_PER_HOUR) * MS_PER_HOUR


def hourly_bars(candles: Bars, *, start_ms: int, end_ms: int) -> Bars:
    """Closed hourly bars with open times in [start_ms, end_ms) from candles of any interval dividing an hour.

    start_ms and end_ms are hour boundaries. Hours before the first traded one are absent (there is
    no price to carry), as are hours after the last (a feed that stopped is stale input, not a flat market).
    """
    if start_ms % MS_PER_HOUR or end_ms % MS_PER_HOUR:
        raise ValueError("hourly windows start and end on the hour")
    traded = ~((candles.volume == 0) & (candles.high == candles.low))
    in_window = (candles.open_ms >= start_ms) & (candles.open_ms < end_ms)
    keep = traded & in_window
    open_ms = candles.open_ms[keep]
    if open_ms.size == 0:
        return Bars.empty()
    hour = (open_ms // MS_PER_HOUR) * MS_PER_HOUR
    starts = np.flatnonzero(np.concatenate(([True], hour[1:] != hour[:-1])))
    ends = np.append(starts[1:], hour.size) - 1
    hours = hour[starts]
    opens = candles.open[keep][starts]
    closes = candles.close[keep][ends]
    highs = np.maximum.reduceat(candles.high[keep], starts)
    lows = np.minimum.reduceat(candles.low[keep], starts)
    volumes = np.add.reduceat(candles.volume[keep], starts)
    # Hours between the first and the last traded one that traded nothing: flat at the previous close.
    grid = np.arange(hours[0], hours[-1] + MS_PER_HOUR, MS_PER_HOUR, dtype=np.int64)
    if grid.size == hours.size:
        return Bars(hours, opens, highs, lows, closes, volumes)
    slot = (hours - hours[0]) // MS_PER_HOUR
    previous_traded = np.searchsorted(hours, grid, side="right") - 1
    carried = closes[previous_traded]
    filled = [np.array(carried) for _ in range(4)]
    for column, values in zip(filled, (opens, highs, lows, closes)):
        column[slot] = values
    volume = np.zeros(grid.size)
    volume[slot] = volumes
    return Bars(grid, filled[0], filled[1], filled[2], filled[3], volume)
