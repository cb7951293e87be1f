"""Candle file parsers: Binance public kline CSV and freqtrade candle JSON, plain or gzipped.

Each yields a CandleRow per valid bar or a RowError per bad one; BarSeries adds the cross-row rules.
"""
from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .rows import (
    EARLIEST_US,
    FUTURE_SLACK_US,
    MICROSECONDS_FROM,
    CandleRow,
    FileError,
    RowError,
    RowProblem,
    format_us,
    integer_timestamp,
    now_us,
    time_problem,
)
from .sources import iter_json_array, iter_lines, sniff

BINANCE_CSV = "binance-csv"
FREQTRADE_JSON = "freqtrade-json"
CANDLE_FORMATS = (BINANCE_CSV, FREQTRADE_JSON)

BINANCE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)
FREQTRADE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_PRICE_NAMES = ("open", "high", "low", "close")
_HEADER_FIELD = re.compile(r"[A-Za-z_][A-Za-z_ ]*")
_INF = math.inf


def detect_candle_format(path: Path) -> str:
    """freqtrade JSON starts with '[', a Binance CSV with a digit or a header word."""
    first = sniff(path)
    if first == "[":
        return FREQTRADE_JSON
    if first.isdigit() or first.isalpha():
        return BINANCE_CSV
    raise FileError(
        f"cannot tell the candle format from the first character {first!r}; "
        f"pass --format ({', '.join(CANDLE_FORMATS)})"
    )


def parse_candles(path: Path, fmt: str, *, current_us: int | None = None) -> Iterator[CandleRow | RowError]:
    current_us = now_us() if current_us is None else current_us
    if fmt == BINANCE_CSV:
        return parse_binance_klines(iter_lines(path), current_us=current_us)
    if fmt == FREQTRADE_JSON:
        return parse_freqtrade_candles(iter_json_array(path), current_us=current_us)
    raise ValueError(f"unknown candle format {fmt!r}; expected one of {', '.join(CANDLE_FORMATS)}")


def candle_problems(open_time_us: int, prices: tuple[float, float, float, float], volume: float,
                    current_us: int, time_name: str) -> list[str]:
    """Every rule a parsed bar breaks (empty list: the bar is valid)."""
    problems = []
    values = dict(zip(_PRICE_NAMES, prices))
    values["volume"] = volume
    not_finite = [name for name, value in values.items() if not math.isfinite(value)]
    if not_finite:
        problems.append("non-finite " + ", ".join(f"{name} {values[name]!r}" for name in not_finite))
    moment = time_problem(open_time_us, current_us, time_name)
    if moment:
        problems.append(moment)
    for name in _PRICE_NAMES:
        if values[name] <= 0:
            problems.append(f"non-positive price: {name} {values[name]!r}")
    if volume < 0:
        problems.append(f"negative volume {volume!r}")
    open_, high, low, close = prices
    if high < low:
        problems.append(f"high {high!r} below low {low!r}")
    if high < max(open_, close):
        problems.append(f"high {high!r} below max(open, close) {max(open_, close)!r}")
    if low > min(open_, close):
        problems.append(f"low {low!r} above min(open, close) {min(open_, close)!r}")
    return problems


def _checked_bar(line: int, open_time: int, open_: float, high: float, low: float, close: float,
                 volume: float, raw: str, latest_us: int, current_us: int, time_name: str) -> CandleRow | RowError:
    open_time_us = open_time if open_time >= MICROSECONDS_FROM else open_time * 1000
    # One chained comparison covers every rule for the common valid bar (NaN fails every comparison).
    if (EARLIEST_US <= open_time_us <= latest_us and 0 < low <= open_ <= high < _INF and low <= close <= high
            and 0 <= volume < _INF):
        return CandleRow(line, open_time_us, open_, high, low, close, volume, raw)
    problems = candle_problems(open_time_us, (open_, high, low, close), volume, current_us, time_name)
    return RowError(line, "; ".join(problems), raw)


def _float_fields(names: tuple[str, ...], texts) -> list[float]:
    values = []
    for name, text in zip(names, texts):
        try:
            values.append(float(text))
        except (TypeError, ValueError):
            raise RowProblem(f"{name} {text!r} is not a number") from None
    return values


def parse_binance_klines(lines, *, current_us: int) -> Iterator[CandleRow | RowError]:
    """Binance kline CSV (data.binance.vision): 12 columns, optional header row, ms or us open_time.

    Only open_time and OHLCV are kept (the Candle model has no column for the rest); close_time
    is not checked, since halted bars legitimately close early.
    """
    latest_us = current_us + FUTURE_SLACK_US
    expected = len(BINANCE_COLUMNS)
    seen_content = False
    for number, raw in lines:
        text = raw.rstrip("\r\n")
        fields = text.split(",")
        if not seen_content:
            if not text.strip():
                continue
            seen_content = True
            if _HEADER_FIELD.fullmatch(fields[0].strip()):
                if len(fields) != expected:
                    raise FileError(
                        f"line {number}: the header has {len(fields)} columns; a Binance kline file has "
                        f"{expected} ({','.join(BINANCE_COLUMNS)})"
                    )
                continue
        if len(fields) != expected:
            if not text.strip():
                continue  # blank lines (typically a trailing one) carry no row
            yield RowError(number, f"expected {expected} columns, got {len(fields)}", raw)
            continue
        try:
            open_time = int(fields[0])
        except ValueError:
            yield RowError(number, f"open_time {fields[0]!r} is not an integer (epoch ms or us)", raw)
            continue
        try:
            open_, high, low, close, volume = (
                float(fields[1]), float(fields[2]), float(fields[3]), float(fields[4]), float(fields[5])
            )
        except ValueError:
            try:
                _float_fields(BINANCE_COLUMNS[1:6], fields[1:6])
            except RowProblem as problem:
                yield RowError(number, str(problem), raw)
            continue
        yield _checked_bar(number, open_time, open_, high, low, close, volume, raw, latest_us, current_us,
                           "open_time")


def parse_freqtrade_candles(elements, *, current_us: int) -> Iterator[CandleRow | RowError]:
    """freqtrade candle JSON: [[timestamp_ms, open, high, low, close, volume], ...]."""
    latest_us = current_us + FUTURE_SLACK_US
    expected = len(FREQTRADE_COLUMNS)
    for number, value, raw in elements:
        if not isinstance(value, list):
            yield RowError(number, f"expected a list [{', '.join(FREQTRADE_COLUMNS)}], got {type(value).__name__}",
                           raw)
            continue
        if len(value) != expected:
            yield RowError(number, f"expected {expected} columns, got {len(value)}", raw)
            continue
        try:
            open_time = integer_timestamp(value[0], "timestamp")
            if any(isinstance(item, bool) or item is None for item in value[1:]):
                bad = next(
                    (name, item) for name, item in zip(FREQTRADE_COLUMNS[1:], value[1:])
                    if isinstance(item, bool) or item is None
                )
                raise RowProblem(f"{bad[0]} {bad[1]!r} is not a number")
            open_, high, low, close, volume = _float_fields(FREQTRADE_COLUMNS[1:], value[1:])
        except RowProblem as problem:
            yield RowError(number, str(problem), raw)
            continue
        yield _checked_bar(number, open_time, open_, high, low, close, volume, raw, latest_us, current_us,
                           "timestamp")


@dataclass
class Gap:
    after_us: int
    next_us: int
    missing_bars: int

    def __str__(self) -> str:
        bars = "bar" if self.missing_bars == 1 else "bars"
        return f"{self.missing_bars} missing {bars} after {format_us(self.after_us)} (next bar {format_us(self.next_us)})"


@dataclass
class BarSeries:
    """Cross-row rules for one file's bars: duplicate open times (errors), gaps and spacing (warnings).

    Keys are kept in compact arrays; a lookup set is built only if the file turns out not to be
    in ascending order, so a sorted million-row file costs 16 MB, not a dict of a million ints.
    """

    interval_us: int | None
    _times: array = field(default_factory=lambda: array("q"))
    _lines: array = field(default_factory=lambda: array("q"))
    _first_line: dict[int, int] | None = None
    _last: int = -(2**63)
    zero_volume: int = 0

    def add(self, row: CandleRow) -> int | None:
        """Record a bar; return the line of an earlier bar with the same open time, else None."""
        moment = row.open_time_us
        if moment > self._last:
            self._last = moment
        else:
            if self._first_line is None:
                self._first_line = dict(zip(self._times, self._lines))
            earlier = self._first_line.get(moment)
            if earlier is not None:
                return earlier
        if self._first_line is not None:
            self._first_line[moment] = row.line
        self._times.append(moment)
        self._lines.append(row.line)
        if row.volume == 0:
            self.zero_volume += 1
        return None

    def __len__(self) -> int:
        return len(self._times)

    @property
    def in_order(self) -> bool:
        return self._first_line is None

    @property
    def first_us(self) -> int | None:
        return min(self._times) if self._times else None

    @property
    def last_us(self) -> int | None:
        return max(self._times) if self._times else None

    def spacing(self) -> tuple[list[Gap], int]:
        """(gaps, number of bars closer to their predecessor than one interval)."""
        if self.interval_us is None or len(self._times) < 2:
            return [], 0
        times = self._times if self.in_order else array("q", sorted(self._times))
        gaps, too_close = [], 0
        step = self.interval_us
        previous = times[0]
        for moment in times[1:]:
            distance = moment - previous
            if distance > step:
                gaps.append(Gap(previous, moment, -(-distance // step) - 1))
            elif distance < step:
                too_close += 1
            previous = moment
        return gaps, too_close
