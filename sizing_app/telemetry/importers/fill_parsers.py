"""Fill file parsers: Binance myTrades JSON, ccxt trade JSON, freqtrade trade lists and the project's CSV.

Each yields a FillRow per valid fill (money as exact Decimal) or a RowError per bad row.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from ...domain.assets import pair_of
from ..rules import RowError
from .rows import (
    FileError,
    FillRow,
    RowProblem,
    datetime_to_us,
    epoch_us,
    integer_timestamp,
    money,
    normalize_symbol,
    now_us,
    time_problem,
)
from .sources import iter_json_array, iter_lines, json_decimal, sniff

BINANCE_JSON = "binance-json"
CCXT_JSON = "ccxt-json"
FREQTRADE_JSON = "freqtrade-json"
PROJECT_CSV = "csv"
FILL_FORMATS = (BINANCE_JSON, CCXT_JSON, FREQTRADE_JSON, PROJECT_CSV)

BINANCE_FIELDS = (
    "symbol", "id", "orderId", "price", "qty", "commission", "commissionAsset", "time", "isBuyer", "isMaker",
)
CCXT_FIELDS = ("id", "timestamp", "symbol", "side", "price", "amount")
FREQTRADE_TRADE_COLUMNS = ("timestamp", "id", "type", "side", "price", "amount", "cost")
CSV_COLUMNS = (
    "symbol", "trade_id", "order_id", "side", "qty", "price", "fee", "fee_asset", "is_maker", "realized_pnl",
    "arrival_price", "executed_at",
)
CSV_REQUIRED = ("symbol", "trade_id", "side", "qty", "price", "executed_at")

TRADE_ID_MAX = 64
ORDER_REF_MAX = 64
FEE_ASSET_MAX = 16
_SIDES = {"buy": "buy", "sell": "sell"}
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}
_ZERO = Decimal("0")
# freqtrade names trade files PAIR-trades.json(.gz) with the pair's '/' as '_', e.g. XRP_ETH-trades.json.gz.
_FREQTRADE_NAME = re.compile(r"^([A-Za-z0-9]+)_([A-Za-z0-9]+)(?:_[A-Za-z0-9]+)?-trades\.json(?:\.gz)?$")


def symbol_from_freqtrade_name(path: Path) -> str | None:
    pair = pair_from_freqtrade_name(path)
    return "".join(pair) if pair else None


def pair_from_freqtrade_name(path: Path) -> tuple[str, str] | None:
    """(base, quote) of a freqtrade PAIR-trades.json(.gz) file's name, e.g. XRP_ETH-trades.json.gz."""
    match = _FREQTRADE_NAME.match(Path(path).name)
    return (match.group(1).upper(), match.group(2).upper()) if match else None


def detect_fill_format(path: Path, first_element=None) -> str:
    """JSON formats are told apart by their first element; anything not starting with '[' is the CSV."""
    if first_element is None:
        return PROJECT_CSV if sniff(path) != "[" else detect_json_fill_format(path)
    return _json_format_of(first_element)


def detect_json_fill_format(path: Path) -> str:
    for entry in iter_json_array(path, parse_float=json_decimal):
        return _json_format_of(entry.value)
    raise FileError("the JSON array is empty: no fills")


def _json_format_of(value) -> str:
    if isinstance(value, dict):
        if "isBuyer" in value or "commissionAsset" in value:
            return BINANCE_JSON
        if "amount" in value or "takerOrMaker" in value:
            return CCXT_JSON
    if isinstance(value, list) and len(value) == len(FREQTRADE_TRADE_COLUMNS):
        return FREQTRADE_JSON
    raise FileError(
        "cannot tell the trade format from the first element (expected a Binance myTrades object, a ccxt trade "
        f"or a freqtrade [timestamp, id, type, side, price, amount, cost] list); pass --format "
        f"({', '.join(FILL_FORMATS)})"
    )


def parse_fills(path: Path, fmt: str, *, symbol: str | None = None,
                current_us: int | None = None) -> Iterator[FillRow | RowError]:
    """Rows of a fills file. `symbol`, when given, is the symbol of files that carry none
    (freqtrade lists) and must match the symbol of every row of the others."""
    current_us = now_us() if current_us is None else current_us
    if fmt == PROJECT_CSV:
        return parse_project_csv(iter_lines(path), symbol=symbol, current_us=current_us)
    elements = iter_json_array(path, parse_float=json_decimal)
    if fmt == BINANCE_JSON:
        return _parse_json(elements, _binance_fill, symbol, current_us)
    if fmt == CCXT_JSON:
        return _parse_json(elements, _ccxt_fill, symbol, current_us)
    if fmt == FREQTRADE_JSON:
        symbol = symbol or symbol_from_freqtrade_name(path)
        if symbol is None:
            raise FileError(
                "a freqtrade trades list carries no symbol and the file name is not PAIR-trades.json(.gz): "
                "pass --symbol"
            )
        pair = pair_from_freqtrade_name(path)
        named = pair if pair and "".join(pair) == symbol else None

        def freqtrade_fill(number, value, raw, symbol, current_us):
            return _freqtrade_fill(number, value, raw, symbol, current_us)._replace(pair=named)

        return _parse_json(elements, freqtrade_fill, symbol, current_us)
    raise ValueError(f"unknown fill format {fmt!r}; expected one of {', '.join(FILL_FORMATS)}")


def _parse_json(elements, convert, symbol: str | None, current_us: int) -> Iterator[FillRow | RowError]:
    for number, element, value, raw in elements:
        try:
            yield convert(number, value, raw, symbol, current_us)
        except RowProblem as problem:
            yield RowError(number, str(problem), raw, element)


def _text(value, name: str, limit: int, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise RowProblem(f"missing {name}")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RowProblem(f"{name} must be text or an integer, got {value!r}")
    text = str(value).strip()
    if len(text) > limit:
        raise RowProblem(f"{name} {text[:20]!r}... is longer than {limit} characters")
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise RowProblem(f"{name} contains control characters")
    return text


def _side(value, name: str = "side") -> str:
    side = _SIDES.get(value.strip().lower()) if isinstance(value, str) else None
    if side is None:
        raise RowProblem(f"unknown side {value!r} in {name} (expected buy or sell)")
    return side


def _flag(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise RowProblem(f"{name} must be true or false, got {value!r}")


def _timestamp(value, name: str, current_us: int) -> int:
    moment = epoch_us(integer_timestamp(value, name))
    problem = time_problem(moment, current_us, name)
    if problem:
        raise RowProblem(problem)
    return moment


def _checked_symbol(value, expected: str | None, name: str = "symbol") -> str:
    symbol = normalize_symbol(value, name)
    if expected is not None and symbol != expected:
        raise RowProblem(f"{name} {value!r} does not match --symbol {expected}")
    return symbol


def _missing(value: dict, fields: tuple[str, ...]) -> None:
    absent = [name for name in fields if name not in value]
    if absent:
        raise RowProblem(f"missing field{'s' if len(absent) > 1 else ''} {', '.join(absent)}")


def _binance_fill(number: int, value, raw: str, symbol: str | None, current_us: int) -> FillRow:
    """A myTrades entry: side from isBuyer, fee = commission in commissionAsset, is_maker = isMaker."""
    if not isinstance(value, dict):
        raise RowProblem(f"expected a myTrades object, got {type(value).__name__}")
    _missing(value, BINANCE_FIELDS)
    buyer = value["isBuyer"]
    if not isinstance(buyer, bool):
        raise RowProblem(f"unknown side: isBuyer must be true or false, got {buyer!r}")
    return FillRow(
        line=number,
        symbol=_checked_symbol(value["symbol"], symbol),
        trade_id=_text(value["id"], "id", TRADE_ID_MAX),
        order_ref=_text(value["orderId"], "orderId", ORDER_REF_MAX, required=False),
        side="buy" if buyer else "sell",
        qty=money(value["qty"], "qty", positive=True),
        price=money(value["price"], "price", positive=True),
        fee=money(value["commission"], "commission"),
        fee_asset=_text(value["commissionAsset"], "commissionAsset", FEE_ASSET_MAX, required=False),
        is_maker=_flag(value["isMaker"], "isMaker"),
        realized_pnl=None,
        arrival_price=None,
        executed_at_us=_timestamp(value["time"], "time", current_us),
        raw=raw,
    )


def _ccxt_fee(value) -> tuple[Decimal, str]:
    fee = value.get("fee")
    if fee is None and isinstance(value.get("fees"), list) and len(value["fees"]) == 1:
        fee = value["fees"][0]
    if fee is None:
        return _ZERO, ""  # public trades (and some exchanges) report no fee: recorded as 0, asset blank
    if not isinstance(fee, dict):
        raise RowProblem(f"fee must be an object {{cost, currency}} or null, got {fee!r}")
    cost = fee.get("cost")
    return (_ZERO if cost is None else money(cost, "fee.cost"),
            _text(fee.get("currency"), "fee.currency", FEE_ASSET_MAX, required=False))


def _ccxt_fill(number: int, value, raw: str, symbol: str | None, current_us: int) -> FillRow:
    """A ccxt unified trade (fetch_my_trades / fetch_trades); a null takerOrMaker counts as taker."""
    if not isinstance(value, dict):
        raise RowProblem(f"expected a ccxt trade object, got {type(value).__name__}")
    _missing(value, CCXT_FIELDS)
    liquidity = value.get("takerOrMaker")
    if liquidity not in ("maker", "taker", None):
        raise RowProblem(f"takerOrMaker must be 'maker', 'taker' or null, got {liquidity!r}")
    fee, fee_asset = _ccxt_fee(value)
    return FillRow(
        line=number,
        symbol=_checked_symbol(value["symbol"], symbol),
        pair=pair_of(value["symbol"]),
        trade_id=_text(value["id"], "id", TRADE_ID_MAX),
        order_ref=_text(value.get("order"), "order", ORDER_REF_MAX, required=False),
        side=_side(value["side"]),
        qty=money(value["amount"], "amount", positive=True),
        price=money(value["price"], "price", positive=True),
        fee=fee,
        fee_asset=fee_asset,
        is_maker=liquidity == "maker",
        realized_pnl=None,
        arrival_price=None,
        executed_at_us=_timestamp(value["timestamp"], "timestamp", current_us),
        raw=raw,
    )


def _freqtrade_fill(number: int, value, raw: str, symbol: str, current_us: int) -> FillRow:
    """freqtrade's compact trade list [timestamp_ms, id, type, side, price, amount, cost]."""
    if not isinstance(value, list):
        raise RowProblem(f"expected a list [{', '.join(FREQTRADE_TRADE_COLUMNS)}], got {type(value).__name__}")
    if len(value) != len(FREQTRADE_TRADE_COLUMNS):
        raise RowProblem(f"expected {len(FREQTRADE_TRADE_COLUMNS)} columns, got {len(value)}")
    timestamp, trade_id, _order_type, side, price, amount, _cost = value
    return FillRow(
        line=number,
        symbol=symbol,
        trade_id=_text(trade_id, "id", TRADE_ID_MAX),
        order_ref="",
        side=_side(side),
        qty=money(amount, "amount", positive=True),
        price=money(price, "price", positive=True),
        fee=_ZERO,
        fee_asset="",
        is_maker=False,
        realized_pnl=None,
        arrival_price=None,
        executed_at_us=_timestamp(timestamp, "timestamp", current_us),
        raw=raw,
    )


def _iso_or_epoch(text: str, current_us: int) -> int:
    text = text.strip()
    if not text:
        raise RowProblem("missing executed_at")
    if text.isdigit():
        return _timestamp(int(text), "executed_at", current_us)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RowProblem(f"executed_at {text!r} is neither ISO-8601 nor epoch milliseconds") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RowProblem(f"executed_at {text!r} has no timezone (add Z or +00:00)")
    moment_us = datetime_to_us(moment)
    problem = time_problem(moment_us, current_us, "executed_at")
    if problem:
        raise RowProblem(problem)
    return moment_us


def _optional_money(text: str, name: str, *, positive: bool = False) -> Decimal | None:
    return None if not text.strip() else money(text, name, positive=positive)


def _csv_flag(text: str, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise RowProblem(f"{name} must be true or false, got {text!r}")


class _RawLines:
    """Feeds csv.reader while remembering the raw text of the record it is reading."""

    def __init__(self, lines: Iterable[tuple[int, str]]):
        self._lines = iter(lines)
        self.record: list[str] = []
        self.first_line = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        number, text = next(self._lines)
        if not self.record:
            self.first_line = number
        self.record.append(text)
        return text

    def take(self) -> tuple[int, str]:
        raw, self.record = "".join(self.record), []
        return self.first_line, raw


def parse_project_csv(lines, *, symbol: str | None, current_us: int) -> Iterator[FillRow | RowError]:
    """The project's CSV: a header naming the columns (any order), then one fill per row."""
    source = _RawLines(lines)
    reader = csv.reader(source)
    header = None
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a NUL byte or an unterminated quote
            number, raw = source.take()
            yield RowError(number, f"unreadable CSV row: {exc}", raw)
            continue
        number, raw = source.take()
        if not fields or not "".join(fields).strip():
            continue
        if header is None:
            header = [name.strip() for name in fields]
            unknown = sorted(set(header) - set(CSV_COLUMNS))
            missing = [name for name in CSV_REQUIRED if name not in header]
            if unknown or missing or len(set(header)) != len(header):
                raise FileError(
                    f"line {number}: the header must name the columns {','.join(CSV_COLUMNS)} "
                    f"(missing: {', '.join(missing) or '-'}; unknown: {', '.join(unknown) or '-'})"
                )
            continue
        if len(fields) != len(header):
            yield RowError(number, f"expected {len(header)} columns, got {len(fields)}", raw)
            continue
        row = dict(zip(header, fields))
        try:
            yield FillRow(
                line=number,
                symbol=_checked_symbol(row["symbol"], symbol),
                pair=pair_of(row["symbol"]),
                trade_id=_text(row["trade_id"], "trade_id", TRADE_ID_MAX),
                order_ref=_text(row.get("order_id", ""), "order_id", ORDER_REF_MAX, required=False),
                side=_side(row["side"]),
                qty=money(row["qty"], "qty", positive=True),
                price=money(row["price"], "price", positive=True),
                fee=_optional_money(row.get("fee", ""), "fee") or _ZERO,
                fee_asset=_text(row.get("fee_asset", ""), "fee_asset", FEE_ASSET_MAX, required=False),
                is_maker=_csv_flag(row.get("is_maker", ""), "is_maker"),
                realized_pnl=_optional_money(row.get("realized_pnl", ""), "realized_pnl"),
                arrival_price=_optional_money(row.get("arrival_price", ""), "arrival_price", positive=True),
                executed_at_us=_iso_or_epoch(row["executed_at"], current_us),
                raw=raw,
            )
        except RowProblem as problem:
            yield RowError(number, str(problem), raw)
    if header is None:
        raise FileError("empty file (no header row)")
