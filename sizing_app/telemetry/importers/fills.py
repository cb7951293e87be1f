"""Importing fill files (Binance myTrades, ccxt, freqtrade trades, the project's CSV) into the database."""
from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path

from django.db import connection
from django.db.models import Q

from ...models import Fill, Order, Symbol
from ..rules import RowError, describe_changes
from .fill_parsers import FILL_FORMATS, detect_fill_format, parse_fills
from .report import ImportReport
from .rows import (
    FileError,
    FillRow,
    RowProblem,
    datetime_to_us,
    format_us,
    normalize_symbol,
    us_to_datetime,
)
from .run import (
    BATCH_SIZE,
    LOOKUP_CHUNK,
    SQLITE_MONEY_DIGITS,
    SQLITE_MONEY_RTOL,
    Progress,
    advisory_lock,
    import_run,
    progress_total,
    symbol_registered,
)


def fills_import(
    *, path: str | Path, fmt: str | None = None, symbol: str | None = None, skip_invalid: bool = False,
    progress: Progress | None = None, reject_dir: str | Path | None = None, current_us: int | None = None,
) -> ImportReport:
    """Import one fills file (Binance myTrades JSON, ccxt trades JSON, freqtrade trades list, project CSV).

    `symbol`: the symbol of a freqtrade trades list (default: from its PAIR-trades.json name); for the
    other formats every row's symbol must equal it. Raises ValueError for bad arguments.
    """
    path = Path(path)
    if fmt is not None and fmt not in FILL_FORMATS:
        raise ValueError(f"unknown fill format {fmt!r}; expected one of {', '.join(FILL_FORMATS)}")
    if symbol is not None:
        try:
            symbol = normalize_symbol(symbol, "--symbol")
        except RowProblem as problem:
            raise ValueError(str(problem)) from None
    report = ImportReport(path=str(path), kind="fills", symbol=symbol or "", skip_invalid=skip_invalid)
    try:
        report.format = fmt or detect_fill_format(path)
    except FileError as exc:
        report.file_error = str(exc)
        return report
    total = progress_total(path, report.format, progress)

    def body() -> None:
        advisory_lock("fills")
        rows = parse_fills(path, report.format, symbol=symbol, current_us=current_us)
        _FillWriter(report, skip_invalid, progress, total).run(rows)

    return import_run(report, path, report.format, skip_invalid, reject_dir, body)


_FILL_VALUES = ("side", "qty", "price", "fee", "fee_asset", "is_maker", "realized_pnl", "arrival_price", "executed_at")
_MONEY_VALUES = {"qty", "price", "fee", "realized_pnl", "arrival_price"}


class _FillWriter:
    def __init__(self, report: ImportReport, skip_invalid: bool, progress: Progress | None, total: int | None):
        self.report = report
        self.skip_invalid = skip_invalid
        self.progress = progress
        self.total = total
        self.symbols: dict[str, Symbol] = {}
        self.refused: dict[str, str] = {}
        self.first_line: dict[tuple[str, str], int] = {}
        self.approximate_money = connection.vendor == "sqlite"
        self.inexact_money = 0

    def run(self, rows: Iterable[FillRow | RowError]) -> None:
        report, errors = self.report, self.report.errors
        batch: list[FillRow] = []
        read = 0
        for item in rows:
            read += 1
            if type(item) is RowError:
                errors.append(item)
                continue
            refusal = self._register(item)
            if refusal is not None:
                errors.append(RowError(item.line, refusal, item.raw))
                continue
            key = (item.symbol, item.trade_id)
            earlier = self.first_line.get(key)
            if earlier is None:
                self.first_line[key] = item.line
            else:
                reason = f"duplicate trade id {item.trade_id} for {item.symbol} (first on line {earlier})"
                errors.append(RowError(item.line, reason, item.raw))
                continue
            batch.append(item)
            if self.approximate_money:
                self.inexact_money += sum(
                    1 for value in (item.qty, item.price, item.fee, item.realized_pnl, item.arrival_price)
                    if value is not None and _significant_digits(value) > SQLITE_MONEY_DIGITS
                )
            if report.first_us is None or item.executed_at_us < report.first_us:
                report.first_us = item.executed_at_us
            if report.last_us is None or item.executed_at_us > report.last_us:
                report.last_us = item.executed_at_us
            if len(batch) >= BATCH_SIZE:
                report.rows_read = read
                self._flush(batch)
                batch = []
        report.rows_read = read
        self._flush(batch)
        report.symbol = ",".join(sorted({symbol for symbol, _ in self.first_line})) or report.symbol
        if self.inexact_money:
            report.warnings.append(
                f"{self.inexact_money} money value(s) have more than {SQLITE_MONEY_DIGITS} significant digits; "
                f"SQLite keeps only about {SQLITE_MONEY_DIGITS} (PostgreSQL stores them exactly)"
            )
        if self.progress:
            self.progress(report.rows_read, report.rows_read)

    def _register(self, row: FillRow) -> str | None:
        """None once the row's symbol is registered; why not, when it cannot be (its assets are unknown)."""
        if row.symbol in self.symbols:
            return None
        if row.symbol not in self.refused:
            try:
                self.symbols[row.symbol] = symbol_registered(row.symbol, self.report, row.pair)
                return None
            except ValueError as exc:
                self.refused[row.symbol] = f"symbol {row.symbol}: {exc}"
        return self.refused[row.symbol]

    def _symbol_ids(self, batch: list[FillRow]) -> dict[str, int]:
        return {name: symbol.pk for name, symbol in self.symbols.items()}

    def _stored(self, batch: list[FillRow], ids: dict[str, int]) -> dict[tuple[int, str], tuple]:
        stored = {}
        by_symbol: dict[int, list[str]] = {}
        for row in batch:
            by_symbol.setdefault(ids[row.symbol], []).append(row.trade_id)
        for symbol_id, trade_ids in by_symbol.items():
            for start in range(0, len(trade_ids), LOOKUP_CHUNK):
                found = Fill.objects.filter(
                    symbol_id=symbol_id, trade_id__in=trade_ids[start:start + LOOKUP_CHUNK]
                ).values_list("trade_id", *_FILL_VALUES)
                for trade_id, *values in found:
                    values[-1] = datetime_to_us(values[-1])
                    stored[(symbol_id, trade_id)] = tuple(values)
        return stored

    def _orders(self, batch: list[FillRow], ids: dict[str, int]) -> dict[tuple[int, str], int]:
        """Stored orders the fills name, by exchange order id first, then client order id."""
        wanted = {(ids[row.symbol], row.order_ref) for row in batch if row.order_ref}
        if not wanted:
            return {}
        refs = sorted({ref for _, ref in wanted})
        symbol_ids = sorted({symbol_id for symbol_id, _ in wanted})
        by_exchange, by_client = {}, {}
        for start in range(0, len(refs), LOOKUP_CHUNK):
            chunk = refs[start:start + LOOKUP_CHUNK]
            found = Order.objects.filter(symbol_id__in=symbol_ids).filter(
                Q(exchange_order_id__in=chunk) | Q(client_order_id__in=chunk)
            ).order_by("pk").values_list("pk", "symbol_id", "exchange_order_id", "client_order_id")
            for pk, symbol_id, exchange_id, client_id in found:
                by_exchange.setdefault((symbol_id, exchange_id), pk)
                by_client.setdefault((symbol_id, client_id), pk)
        return {key: by_exchange.get(key) or by_client.get(key) for key in wanted
                if key in by_exchange or key in by_client}

    def _flush(self, batch: list[FillRow]) -> None:
        if not batch:
            return
        report = self.report
        ids = self._symbol_ids(batch)
        stored = self._stored(batch, ids)
        new = []
        for row in batch:
            existing = stored.get((ids[row.symbol], row.trade_id))
            if existing is None:
                new.append(row)
                continue
            differences = self._differences(existing, row)
            if differences:
                report.errors.append(RowError(
                    row.line,
                    f"conflicts with the stored fill {row.symbol} {row.trade_id}: {differences}"
                    " (stored fills are never overwritten)",
                    row.raw,
                ))
            else:
                report.unchanged += 1
        if new and (self.skip_invalid or not report.errors):
            orders = self._orders(new, ids)
            Fill.objects.bulk_create([
                Fill(
                    symbol_id=ids[row.symbol], order_id=orders.get((ids[row.symbol], row.order_ref)),
                    order_ref=row.order_ref or "", trade_id=row.trade_id, side=row.side, qty=row.qty, price=row.price,
                    arrival_price=row.arrival_price, fee=row.fee, fee_asset=row.fee_asset, is_maker=row.is_maker,
                    realized_pnl=row.realized_pnl, executed_at=us_to_datetime(row.executed_at_us),
                )
                for row in new
            ], batch_size=1_000)
            report.inserted += len(new)
            report.linked_orders += sum(1 for row in new if orders.get((ids[row.symbol], row.order_ref)))
        if self.progress:
            self.progress(report.rows_read, self.total)

    def _differences(self, existing: tuple, row: FillRow) -> str:
        """How the row differs from the stored fill ("" when it is a re-send)."""
        stored = dict(zip(_FILL_VALUES, existing))
        incoming = dict(zip(_FILL_VALUES, (row.side, row.qty, row.price, row.fee, row.fee_asset, row.is_maker,
                                           row.realized_pnl, row.arrival_price, row.executed_at_us)))

        def same(name: str) -> Callable[[object, object], bool]:
            return self._same_money if name in _MONEY_VALUES else operator.eq

        changed = [name for name in _FILL_VALUES if not same(name)(stored[name], incoming[name])]
        return describe_changes(changed, stored, incoming, source="in file",
                                show=lambda name, value: format_us(value) if name == "executed_at" else _plain(value))

    def _same_money(self, stored: Decimal | None, new: Decimal | None) -> bool:
        if stored is None or new is None:
            return stored is new
        if stored == new:
            return True
        return self.approximate_money and math.isclose(float(stored), float(new), rel_tol=SQLITE_MONEY_RTOL)


def _significant_digits(value: Decimal) -> int:
    digits = value.normalize().as_tuple().digits
    return len(digits) if any(digits) else 0


def _plain(value) -> str:
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
