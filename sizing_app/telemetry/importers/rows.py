"""Normalized rows, row errors and the time rules every import parser shares.

Pure Python (no Django), so each validation rule is testable on plain strings and numbers.
"""
from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import NamedTuple

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Bitcoin's genesis block is 2009-01-03: nothing tradable is older, so anything earlier is a unit mix-up.
EARLIEST_US = 1_230_768_000_000_000  # 2009-01-01T00:00:00Z
# Binance's spot dumps switched open_time to microseconds in 2025. Milliseconds stay below 1e14 until
# the year 5138 and microseconds are above it from 1973, so the magnitude decides per value.
MICROSECONDS_FROM = 10**14
FUTURE_SLACK_US = 86_400 * 1_000_000  # one day: clocks drift, exchanges do not trade tomorrow

# Mirrors sizing_app.models.SYMBOL_PATTERN (kept here so parsers need no Django; a test checks they agree).
SYMBOL_PATTERN = r"^[A-Z0-9]{2,32}$"
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)

# Fill money columns are DecimalField(max_digits=30, decimal_places=12).
MONEY_DECIMAL_PLACES = 12
MONEY_INTEGER_DIGITS = 18
_MONEY_STEP = Decimal(1).scaleb(-MONEY_DECIMAL_PLACES)
_MONEY_LIMIT = Decimal(10) ** MONEY_INTEGER_DIGITS
_WIDE = Context(prec=80)


class FileError(Exception):
    """The whole file is unusable (encoding, empty, not the expected format): nothing from it is imported."""


class CandleRow(NamedTuple):
    line: int
    open_time_us: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    raw: str


class FillRow(NamedTuple):
    line: int
    symbol: str
    trade_id: str
    order_ref: str  # the order id the file gives (exchange or client), "" when none
    side: str  # "buy" or "sell"
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool
    realized_pnl: Decimal | None
    arrival_price: Decimal | None
    executed_at_us: int
    raw: str
    pair: tuple[str, str] | None = None  # (base, quote) when the source names them apart ("XRP/ETH")


class RowProblem(ValueError):
    """Raised inside a parser for one row; becomes a RowError with the row's line and text."""


def now_us() -> int:
    return time.time_ns() // 1_000


def epoch_us(value: int) -> int:
    """An epoch timestamp in milliseconds or microseconds (told apart by magnitude) as microseconds."""
    return value if value >= MICROSECONDS_FROM else value * 1_000


def time_problem(moment_us: int, current_us: int, name: str) -> str | None:
    """Why a timestamp is out of range, or None when it is plausible."""
    if moment_us < EARLIEST_US:
        return f"{name} {format_us(moment_us)} is before 2009-01-01 (seconds instead of milliseconds?)"
    if moment_us > current_us + FUTURE_SLACK_US:
        return f"{name} {format_us(moment_us)} is more than a day in the future"
    return None


def us_to_datetime(moment_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=moment_us)


def datetime_to_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def format_us(moment_us: int) -> str:
    """A UTC time as short as exact: 2023-03-24T12:00Z, ...:11.620Z, or full microseconds."""
    try:
        moment = us_to_datetime(moment_us)
    except OverflowError:
        return f"{moment_us} us since 1970"
    if moment_us % 60_000_000 == 0:
        return moment.strftime("%Y-%m-%dT%H:%MZ")
    if moment_us % 1_000_000 == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if moment_us % 1_000 == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def integer_timestamp(value, name: str) -> int:
    """An epoch integer from JSON (int, integral float) or text; RowProblem otherwise."""
    if isinstance(value, bool):
        raise RowProblem(f"{name} must be an epoch integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Decimal)) and value == value and value not in (float("inf"), float("-inf")):
        if value == int(value):
            return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise RowProblem(f"{name} must be an epoch integer (ms or us), got {value!r}")


def money(value, name: str, *, positive: bool = False) -> Decimal:
    """An exact decimal for a money column: finite, at most 12 decimal places and 18 integer digits.

    Floats from JSON should arrive as Decimal (json parse_float=Decimal) so nothing is rounded.
    """
    if isinstance(value, bool) or value is None:
        raise RowProblem(f"{name} must be a number, got {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise RowProblem(f"{name} {value!r} is not a number") from None
    else:
        raise RowProblem(f"{name} must be a number, got {value!r}")
    if not number.is_finite():
        raise RowProblem(f"{name} is not finite ({value})")
    if abs(number) >= _MONEY_LIMIT:
        raise RowProblem(f"{name} {value} is too large (at most {MONEY_INTEGER_DIGITS} digits before the point)")
    exact = number.quantize(_MONEY_STEP, context=_WIDE)
    if exact != number:
        raise RowProblem(f"{name} {value} has more than {MONEY_DECIMAL_PLACES} decimal places")
    if positive and exact <= 0:
        raise RowProblem(f"non-positive {name} {value}")
    return exact + 0  # "+ 0" turns -0 into 0 so equal values compare and print alike


def normalize_symbol(value, name: str = "symbol") -> str:
    """'XRP/ETH' (ccxt), 'BTC/USDT:USDT' (ccxt derivatives), 'xrpeth' -> 'XRPETH'."""
    if not isinstance(value, str):
        raise RowProblem(f"{name} must be text, got {value!r}")
    symbol = value.strip().split(":", 1)[0].replace("/", "").replace("_", "").replace("-", "").upper()
    if not _SYMBOL_RE.fullmatch(symbol):
        raise RowProblem(f"malformed {name} {value!r}: expected 2-32 letters or digits, e.g. BTCUSDT or BTC/USDT")
    return symbol
