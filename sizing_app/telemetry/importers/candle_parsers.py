"""Candle file parsers: Binance public kline CSV and freqtrade candle JSON, plain or gzipped.

They yield CandleBlocks (columns of valid bars) and RowErrors (bad rows); BarSeries adds the cross-row rules.
"""
from __future__ import annotations

import gzip
import io
import math
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..rules import RowError
from .rows import (
    EARLIEST_US,
    FUTURE_SLACK_US,
    MICROSECONDS_FROM,
    CandleRow,
    FileError,
    RowProblem,
    integer_timestamp,
    now_us,
    time_problem,
)
from .sources import (
    corrupt_error,
    iter_json_array,
    open_binary,
    sniff,
    undecodable_error,
)

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
CHUNK_BYTES = 4 << 20  # ~30,000 kline rows per block
JSON_BLOCK_ROWS = 5_000
_NEWLINE, _COMMA = ord("\n"), ord(",")
_MAX_EXACT_FLOAT_INT = 2**53


@dataclass
class CandleBlock:
    """Valid bars in file order, as columns. raw(i) gives row i's text exactly as in the file."""

    lines: np.ndarray  # int64 line numbers (JSON: line where the element starts)
    open_time_us: np.ndarray  # int64
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    raw: Callable[[int], str]

    def __len__(self) -> int:
        return len(self.lines)

    def row(self, index: int) -> CandleRow:
        return CandleRow(
            int(self.lines[index]), int(self.open_time_us[index]), float(self.open[index]), float(self.high[index]),
            float(self.low[index]), float(self.close[index]), float(self.volume[index]), self.raw(index),
        )

    def select(self, keep: np.ndarray) -> CandleBlock:
        """The bars where `keep` is True (raw() keeps pointing at the right rows)."""
        positions = np.flatnonzero(keep)
        return CandleBlock(
            self.lines[keep], self.open_time_us[keep], self.open[keep], self.high[keep], self.low[keep],
            self.close[keep], self.volume[keep], lambda index, raw=self.raw: raw(int(positions[index])),
        )

    @classmethod
    def from_rows(cls, rows: list[CandleRow]) -> CandleBlock:
        columns = list(zip(*rows)) if rows else [()] * 8
        raws = list(columns[7])
        return cls(
            np.array(columns[0], dtype=np.int64), np.array(columns[1], dtype=np.int64),
            *(np.array(columns[index], dtype=np.float64) for index in range(2, 7)),
            raw=raws.__getitem__,
        )


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


def parse_candles(path: Path, fmt: str, *, current_us: int | None = None) -> Iterator[CandleBlock | RowError]:
    current_us = now_us() if current_us is None else current_us
    if fmt == BINANCE_CSV:
        return parse_binance_klines(path, current_us=current_us)
    if fmt == FREQTRADE_JSON:
        return parse_freqtrade_candles(iter_json_array(path), current_us=current_us)
    raise ValueError(f"unknown candle format {fmt!r}; expected one of {', '.join(CANDLE_FORMATS)}")


def candle_rows(items: Iterable[CandleBlock | RowError]) -> Iterator[CandleRow | RowError]:
    """Flatten parser output to one CandleRow or RowError per row, in line order (for tests and tools)."""
    out: list[CandleRow | RowError] = []
    for item in items:
        if isinstance(item, RowError):
            out.append(item)
        else:
            out.extend(item.row(index) for index in range(len(item)))
    return iter(sorted(out, key=lambda entry: entry.line))


# --- row rules ---------------------------------------------------------------------------------------------------


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


def _valid_mask(open_time_us, open_, high, low, close, volume, latest_us: int) -> np.ndarray:
    """The vectorized twin of _checked_bar's fast test."""
    return ((open_time_us >= EARLIEST_US) & (open_time_us <= latest_us) & (low > 0) & (low <= open_)
            & (open_ <= high) & (high < _INF) & (low <= close) & (close <= high) & (volume >= 0) & (volume < _INF))


def _float_fields(names: tuple[str, ...], texts) -> list[float]:
    values = []
    for name, text in zip(names, texts):
        try:
            values.append(float(text))
        except (TypeError, ValueError):
            raise RowProblem(f"{name} {text!r} is not a number") from None
    return values


def _csv_timestamp(text: str) -> int:
    """An epoch integer; integral decimals such as '1672531200000.0' are accepted like the fast path does."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and value.is_integer() and abs(value) < _MAX_EXACT_FLOAT_INT:
        return int(value)
    raise RowProblem(f"open_time {text!r} is not an integer (epoch ms or us)")


# --- Binance kline CSV -------------------------------------------------------------------------------------------


def _binary_chunks(path: Path) -> Iterator[tuple[int, bytes]]:
    """(number of the chunk's first line, complete UTF-8-checked lines ending in a newline), BOM removed."""
    path = Path(path)
    line, offset, pending = 1, 0, b""
    compressed = False
    try:
        with open_binary(path) as handle:
            compressed = not isinstance(handle, io.BufferedReader)
            first = True
            while True:
                block = handle.read(CHUNK_BYTES)
                if first:
                    first = False
                    if not block:
                        raise FileError("empty file (0 bytes)")
                    if block.startswith(b"\xef\xbb\xbf"):
                        block, offset = block[3:], 3
                data = pending + block if pending else block
                if not block:
                    if data:
                        yield from _checked_chunk(data + b"\n", line, offset, compressed)
                    return
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    pending = data
                    continue
                chunk, pending = data[:cut], data[cut:]
                yield from _checked_chunk(chunk, line, offset, compressed)
                line += chunk.count(b"\n")
                offset += len(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise corrupt_error(path, exc) from None


def _checked_chunk(chunk: bytes, line: int, offset: int, compressed: bool) -> Iterator[tuple[int, bytes]]:
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = line + chunk.count(b"\n", 0, exc.start)
        raise undecodable_error(chunk, exc, offset, bad_line, compressed) from None
    yield line, chunk


def parse_binance_klines(path: Path, *, current_us: int) -> Iterator[CandleBlock | RowError]:
    """Binance kline CSV (data.binance.vision): 12 columns, optional header row, ms or us open_time.

    Only open_time and OHLCV are kept (the Candle model has no column for the rest); close_time
    is not checked, since halted bars legitimately close early. Whole chunks are parsed by numpy;
    a chunk with any irregular row goes through the per-row parser, which names each problem.
    """
    latest_us = current_us + FUTURE_SLACK_US
    header_checked = False
    for first_line, chunk in _binary_chunks(path):
        if not header_checked:
            first_line, chunk, header_checked = _skip_header(first_line, chunk)
            if not chunk:
                continue
        block = _fast_block(chunk, first_line, latest_us)
        if block is not None:
            yield block
            continue
        rows: list[CandleRow] = []
        for item in _parse_kline_lines(_numbered_lines(chunk, first_line), current_us=current_us):
            if isinstance(item, RowError):
                yield item
            else:
                rows.append(item)
        if rows:
            yield CandleBlock.from_rows(rows)


def _numbered_lines(chunk: bytes, first_line: int) -> Iterator[tuple[int, str]]:
    for index, text in enumerate(chunk.decode("utf-8").split("\n")[:-1]):
        yield first_line + index, text + "\n"


def _skip_header(first_line: int, chunk: bytes) -> tuple[int, bytes, bool]:
    """Drop leading blank lines and a header row; (first line left, rest of chunk, whether content was seen)."""
    position = 0
    while position < len(chunk):
        end = chunk.index(b"\n", position) + 1
        text = chunk[position:end].decode("utf-8").rstrip("\r\n")
        if text.strip():
            fields = text.split(",")
            if _HEADER_FIELD.fullmatch(fields[0].strip()):
                if len(fields) != len(BINANCE_COLUMNS):
                    raise FileError(
                        f"line {first_line}: the header has {len(fields)} columns; a Binance kline file has "
                        f"{len(BINANCE_COLUMNS)} ({','.join(BINANCE_COLUMNS)})"
                    )
                return first_line + 1, chunk[end:], True
            return first_line, chunk[position:], True
        position, first_line = end, first_line + 1
    return first_line, b"", False


def _fast_block(chunk: bytes, first_line: int, latest_us: int) -> CandleBlock | None:
    """Parse a chunk of complete lines with numpy; None if any line is irregular (wrong column count,
    blank, unparsable or invalid), so the per-row parser can say exactly what is wrong."""
    buffer = np.frombuffer(chunk, dtype=np.uint8)
    newlines = np.flatnonzero(buffer == _NEWLINE)
    count = len(newlines)
    commas = np.flatnonzero(buffer == _COMMA)
    expected = len(BINANCE_COLUMNS) - 1
    if count == 0 or len(commas) != expected * count:
        return None
    starts = np.empty(count, dtype=np.int64)
    starts[0] = 0
    starts[1:] = newlines[:-1] + 1
    grid = commas.reshape(count, expected)
    # Each line's own 11 commas lie inside it, and the total is 11 per line: so every line has exactly 12 fields.
    if not ((grid[:, 0] > starts) & (grid[:, -1] < newlines)).all():
        return None
    try:
        values = np.loadtxt(io.StringIO(chunk.decode("utf-8")), delimiter=",", usecols=range(6),
                            dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        return None
    if values.shape[0] != count:
        return None
    stamps = values[:, 0]
    if not ((stamps == np.trunc(stamps)) & (np.abs(stamps) < _MAX_EXACT_FLOAT_INT)).all():
        return None
    stamps = stamps.astype(np.int64)
    open_time_us = np.where(stamps >= MICROSECONDS_FROM, stamps, stamps * 1000)
    open_, high, low, close, volume = (np.ascontiguousarray(values[:, index]) for index in range(1, 6))
    if not _valid_mask(open_time_us, open_, high, low, close, volume, latest_us).all():
        return None

    def raw(index: int) -> str:
        return chunk[starts[index]:newlines[index] + 1].decode("utf-8")

    lines = np.arange(first_line, first_line + count, dtype=np.int64)
    return CandleBlock(lines, open_time_us, open_, high, low, close, volume, raw)


def _parse_kline_lines(lines: Iterable[tuple[int, str]], *, current_us: int) -> Iterator[CandleRow | RowError]:
    """The per-row parser: one CandleRow or RowError per non-blank line (no header here)."""
    latest_us = current_us + FUTURE_SLACK_US
    expected = len(BINANCE_COLUMNS)
    for number, raw in lines:
        text = raw.rstrip("\r\n")
        fields = text.split(",")
        if len(fields) != expected:
            if not text.strip():
                continue  # blank lines carry no row
            yield RowError(number, f"expected {expected} columns, got {len(fields)}", raw)
            continue
        try:
            open_time = _csv_timestamp(fields[0])
            open_, high, low, close, volume = _float_fields(BINANCE_COLUMNS[1:6], fields[1:6])
        except RowProblem as problem:
            yield RowError(number, str(problem), raw)
            continue
        yield _checked_bar(number, open_time, open_, high, low, close, volume, raw, latest_us, current_us,
                           "open_time")


# --- freqtrade JSON ----------------------------------------------------------------------------------------------


def parse_freqtrade_candles(elements, *, current_us: int) -> Iterator[CandleBlock | RowError]:
    """freqtrade candle JSON: [[timestamp_ms, open, high, low, close, volume], ...]."""
    latest_us = current_us + FUTURE_SLACK_US
    expected = len(FREQTRADE_COLUMNS)
    rows: list[CandleRow] = []
    for number, element, value, raw in elements:
        if not isinstance(value, list):
            yield RowError(
                number, f"expected a list [{', '.join(FREQTRADE_COLUMNS)}], got {type(value).__name__}", raw, element
            )
            continue
        if len(value) != expected:
            yield RowError(number, f"expected {expected} columns, got {len(value)}", raw, element)
            continue
        try:
            open_time = integer_timestamp(value[0], "timestamp")
            for name, item in zip(FREQTRADE_COLUMNS[1:], value[1:]):
                if isinstance(item, bool) or item is None:
                    raise RowProblem(f"{name} {item!r} is not a number")
            open_, high, low, close, volume = _float_fields(FREQTRADE_COLUMNS[1:], value[1:])
        except RowProblem as problem:
            yield RowError(number, str(problem), raw, element)
            continue
        item = _checked_bar(number, open_time, open_, high, low, close, volume, raw, latest_us, current_us,
                            "timestamp")
        if isinstance(item, RowError):
            yield RowError(item.line, item.reason, item.raw, element)
            continue
        rows.append(item)
        if len(rows) >= JSON_BLOCK_ROWS:
            yield CandleBlock.from_rows(rows)
            rows = []
    if rows:
        yield CandleBlock.from_rows(rows)
