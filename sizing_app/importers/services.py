"""Import services: write parsed candle and fill files into the database, one transaction per file.

A file with any bad row writes nothing (unless skip_invalid); stored rows are never overwritten:
identical ones are skipped (re-imports are no-ops), different ones are rejected as conflicts.
"""
from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from decimal import Decimal
from functools import partial
from pathlib import Path

import numpy as np
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Min, Q

from ..metrics import bars_per_year
from ..models import Candle, Fill, Order, Symbol
from ..validation import validate_symbol
from .candle_parsers import (
    BINANCE_CSV,
    CANDLE_FORMATS,
    BarSeries,
    CandleBlock,
    detect_candle_format,
    parse_candles,
)
from .fill_parsers import FILL_FORMATS, PROJECT_CSV, detect_fill_format, parse_fills
from .report import ImportReport
from .rows import (
    CandleRow,
    FileError,
    FillRow,
    RowError,
    RowProblem,
    datetime_to_us,
    format_us,
    normalize_symbol,
    us_to_datetime,
)
from .sources import count_lines, iter_lines

BATCH_SIZE = 5_000
LOOKUP_CHUNK = 900  # keeps IN (...) lists under SQLite's variable limit on old builds
MAX_INTERVAL_LENGTH = Candle._meta.get_field("interval").max_length
_MONTH_INTERVAL = re.compile(r"[0-9]+M")
# SQLite keeps DecimalField values as 64-bit floats, so stored money is only exact to ~15 digits there.
_SQLITE_MONEY_RTOL = 1e-14
_SQLITE_MONEY_DIGITS = 15

Progress = Callable[[int, int | None], None]


class _Rollback(Exception):
    """Raised inside the file's transaction to undo everything it wrote."""


def _interval_us(interval: str) -> int | None:
    """Microseconds per bar, or None for calendar months (no fixed spacing, so no gap check)."""
    if not isinstance(interval, str) or len(interval) > MAX_INTERVAL_LENGTH:
        raise ValueError(f"interval must be at most {MAX_INTERVAL_LENGTH} characters, e.g. '1m', '1h', '1d'")
    per_year = bars_per_year(interval)  # ValueError for anything that is not an exchange interval
    if _MONTH_INTERVAL.fullmatch(interval):
        return None
    return round(365 * 86_400 * 1_000_000 / per_year)


def _reject_paths(path: Path, reject_dir: str | Path | None, fmt: str) -> tuple[Path, Path]:
    """Where --skip-invalid writes the rejected rows and the summary (FileError if it cannot)."""
    directory = Path(reject_dir) if reject_dir else path.parent
    if not directory.is_dir():
        raise FileError(f"reject directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise FileError(f"cannot write the reject file: {directory} is not writable; pass --reject-dir")
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    suffix = ".csv" if fmt in (BINANCE_CSV, PROJECT_CSV) else ".json"
    return directory / f"{stem}.rejected{suffix}", directory / f"{stem}.rejected.summary.txt"


def _write_rejects(report: ImportReport, path: Path, fmt: str, targets: tuple[Path, Path]) -> None:
    reject_path, summary_path = targets
    raws = [error.raw for error in report.errors]
    if fmt in (BINANCE_CSV, PROJECT_CSV):
        header = _header_line(path, fmt)
        lines = ([header] if header else []) + [raw if raw.endswith("\n") else raw + "\n" for raw in raws]
        content = "".join(lines)
    else:
        content = "[\n" + ",\n".join(raws) + "\n]\n"
    reject_path.write_text(content, encoding="utf-8", newline="")
    report.reject_path, report.summary_path = str(reject_path), str(summary_path)
    summary_path.write_text(report.summary_text(), encoding="utf-8")


def _header_line(path: Path, fmt: str) -> str | None:
    """The file's header row, untouched, so the reject file can be fixed and re-imported as is."""
    for _, text in iter_lines(path):
        if not text.strip():
            continue
        if fmt == PROJECT_CSV or not text.lstrip()[:1].isdigit():
            return text if text.endswith("\n") else text + "\n"
        return None
    return None


def _is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _advisory_lock(key: str) -> None:
    # Serializes imports of the same series so the conflict check and the insert see the same rows.
    # SQLite needs none: its IMMEDIATE transactions already admit one writer at a time.
    if _is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])


def _symbol(name: str, report: ImportReport) -> Symbol:
    symbol, created = Symbol.objects.get_or_create(name=name)
    if created:
        report.created_symbols.append(name)
    return symbol


def _run(report: ImportReport, path: Path, fmt: str, skip_invalid: bool, reject_dir,
         body: Callable[[], None]) -> ImportReport:
    """Run one file's import in its own transaction; roll back on bad rows or a file-level error."""
    started = time.perf_counter()
    targets = None
    try:
        with transaction.atomic():
            body()
            if report.rows_read == 0:
                raise FileError("no data rows (empty file or only a header)")
            if report.errors and not skip_invalid:
                raise _Rollback
            if report.errors:
                # Checked before committing: good rows are only kept if the bad ones can be written out.
                targets = _reject_paths(path, reject_dir, fmt)
        report.committed = True
    except _Rollback:
        pass
    except FileError as exc:
        report.file_error = str(exc)
    except IntegrityError as exc:
        report.file_error = f"another writer stored the same rows during this import; re-run ({exc})"
    report.errors.sort(key=lambda error: error.line)
    if not report.committed:
        report.inserted = 0
        report.linked_orders = 0
        report.created_symbols = []
    report.seconds = time.perf_counter() - started
    if report.committed and report.errors and targets:
        _write_rejects(report, path, fmt, targets)
    return report


def _progress_total(path: Path, fmt: str, progress: Progress | None) -> int | None:
    if progress is None or fmt not in (BINANCE_CSV, PROJECT_CSV):
        return None
    try:
        return count_lines(path)
    except Exception:  # a corrupt file is reported by the parser; the bar just has no total
        return None


# --- candles ---------------------------------------------------------------------------------------------------


def candles_import(
    *, path: str | Path, symbol: str, interval: str, fmt: str | None = None, skip_invalid: bool = False,
    progress: Progress | None = None, reject_dir: str | Path | None = None, current_us: int | None = None,
) -> ImportReport:
    """Import one candle file (Binance kline CSV or freqtrade JSON, plain or gzipped) for symbol/interval.

    Raises ValueError for bad arguments; problems with the file are in the returned report.
    """
    path = Path(path)
    validate_symbol(symbol)
    interval_us = _interval_us(interval)
    if fmt is not None and fmt not in CANDLE_FORMATS:
        raise ValueError(f"unknown candle format {fmt!r}; expected one of {', '.join(CANDLE_FORMATS)}")
    report = ImportReport(path=str(path), kind="candles", symbol=symbol, interval=interval, skip_invalid=skip_invalid)
    try:
        report.format = fmt or detect_candle_format(path)
    except FileError as exc:
        report.file_error = str(exc)
        return report
    total = _progress_total(path, report.format, progress)

    def body() -> None:
        _advisory_lock(f"candles:{symbol}:{interval}")
        rows = parse_candles(path, report.format, current_us=current_us)
        _CandleWriter(report, _symbol(symbol, report), interval, interval_us, skip_invalid, progress, total).run(rows)

    return _run(report, path, report.format, skip_invalid, reject_dir, body)


class _CandleWriter:
    FIELDS = ("symbol", "interval", "open_time", "open", "high", "low", "close", "volume")

    def __init__(self, report: ImportReport, symbol: Symbol, interval: str, interval_us: int | None,
                 skip_invalid: bool, progress: Progress | None, total: int | None):
        self.report = report
        self.symbol = symbol
        self.interval = interval
        self.series = BarSeries(interval_us)
        self.skip_invalid = skip_invalid
        self.progress = progress
        self.total = total
        self.copy = _CopyStream(Candle, self.FIELDS) if _is_postgresql() else None
        self.write = self._copy if self.copy else self._insert_many
        self.stored_range = self._stored_range()

    def run(self, items: Iterable[CandleBlock | RowError]) -> None:
        try:
            self._run(items)
        except BaseException as error:
            if self.copy:
                self.copy.abort(error)
            raise
        if self.copy:
            self.copy.close()
        self._finish()

    def _run(self, items: Iterable[CandleBlock | RowError]) -> None:
        report, errors = self.report, self.report.errors
        for item in items:
            if isinstance(item, RowError):
                errors.append(item)
                report.rows_read += 1
                continue
            report.rows_read += len(item)
            keep = np.ones(len(item), dtype=bool)
            for index, earlier in self.series.add_block(item):
                keep[index] = False
                errors.append(RowError(
                    int(item.lines[index]),
                    f"duplicate open_time {format_us(int(item.open_time_us[index]))} (first on line {earlier})",
                    item.raw(index),
                ))
            self._flush(item if keep.all() else item.select(keep))

    def _finish(self) -> None:
        report, series = self.report, self.series
        report.first_us, report.last_us = series.first_us, series.last_us
        report.zero_volume = series.zero_volume
        report.gaps, report.too_close, example = series.spacing()
        report.missing_bars = sum(gap.missing_bars for gap in report.gaps)
        report.out_of_order = not series.in_order
        if example:
            # Bars of one interval cannot be closer than that interval: the file is another interval's data.
            raise FileError(
                f"{report.too_close} bar(s) are closer together than the {self.interval} interval (e.g. "
                f"{format_us(example[0])} and {format_us(example[1])}): is --interval right?"
            )
        if report.out_of_order:
            report.warnings.append("bars are not in ascending time order (imported all the same)")
        if self.progress:
            self.progress(report.rows_read, report.rows_read)

    def _series(self):
        return Candle.objects.filter(symbol=self.symbol, interval=self.interval)

    def _stored_range(self) -> tuple[int, int] | None:
        """First and last stored open time of the series (None when empty), read once per file."""
        bounds = self._series().aggregate(first=Min("open_time"), last=Max("open_time"))
        if bounds["first"] is None:
            return None
        return datetime_to_us(bounds["first"]), datetime_to_us(bounds["last"])

    def _stored(self, block: CandleBlock) -> dict[int, tuple]:
        """Bars already stored in the block's time range (one indexed range query)."""
        low, high = int(block.open_time_us.min()), int(block.open_time_us.max())
        if self.stored_range is None or high < self.stored_range[0] or low > self.stored_range[1]:
            return {}  # the common case (new data after the stored bars): nothing to compare, no query
        if self.copy:
            self.copy.close()  # the connection cannot run a query while a COPY is open
        stored = Candle.objects.filter(
            symbol=self.symbol, interval=self.interval,
            open_time__gte=us_to_datetime(low), open_time__lte=us_to_datetime(high),
        ).values_list("open_time", "open", "high", "low", "close", "volume")
        return {datetime_to_us(moment): tuple(values) for moment, *values in stored}

    def _flush(self, block: CandleBlock) -> None:
        if not len(block):
            return
        report = self.report
        stored = self._stored(block)
        if stored:
            keep = ~np.isin(block.open_time_us, np.fromiter(stored, dtype=np.int64, count=len(stored)))
            for index in np.flatnonzero(~keep).tolist():
                row = block.row(index)
                existing = stored[row.open_time_us]
                if existing == (row.open, row.high, row.low, row.close, row.volume):
                    report.unchanged += 1
                else:
                    report.errors.append(RowError(row.line, _candle_conflict(row, existing), row.raw))
            block = block.select(keep)
        # After the first bad row the file will be rolled back (unless skipping): keep checking, stop writing.
        if len(block) and (self.skip_invalid or not report.errors):
            self.write(block)
            report.inserted += len(block)
        if self.progress:
            self.progress(report.rows_read, self.total)

    def _insert_many(self, block: CandleBlock) -> None:
        # One prepared INSERT run over the block (executemany): the ORM's bulk_create would build a
        # model instance per bar and stay under SQLite's 999-parameter limit, ~10x slower here.
        # open_time goes through the field's own adaptation, so rows are stored exactly as the ORM would.
        quote = connection.ops.quote_name
        meta = Candle._meta
        columns = ", ".join(quote(meta.get_field(name).column) for name in self.FIELDS)
        placeholders = ", ".join(["%s"] * len(self.FIELDS))
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"
        prepare_time = partial(meta.get_field("open_time").get_db_prep_save, connection=connection)
        symbol_id, interval = self.symbol.pk, self.interval
        rows = [
            (symbol_id, interval, prepare_time(us_to_datetime(moment)), open_, high, low, close, volume)
            for moment, open_, high, low, close, volume in zip(
                block.open_time_us.tolist(), block.open.tolist(), block.high.tolist(), block.low.tolist(),
                block.close.tolist(), block.volume.tolist(),
            )
        ]
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)

    def _copy(self, block: CandleBlock) -> None:
        self.copy.write(binary_copy_rows(self.symbol.pk, self.interval, block))


class _CopyStream:
    """One PostgreSQL binary COPY kept open across blocks, fed by psycopg's queued writer thread.

    Binary COPY of numpy-built records needs no per-row Python formatting and no datetime
    objects, and the writer thread lets the server ingest one block while the next is parsed.
    """

    def __init__(self, model, fields: tuple[str, ...]):
        quote = connection.ops.quote_name
        meta = model._meta
        columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
        self.sql = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN (FORMAT BINARY)"
        self._stack: ExitStack | None = None
        self._copy = None

    def write(self, data: bytes) -> None:
        if self._copy is None:
            from psycopg.copy import QueuedLibpqWriter

            stack = ExitStack()
            cursor = stack.enter_context(connection.cursor())
            self._copy = stack.enter_context(cursor.copy(self.sql, writer=QueuedLibpqWriter(cursor.cursor)))
            self._stack = stack
            self._copy.write(_PG_COPY_HEADER)
        self._copy.write(data)

    def close(self) -> None:
        """Finish the COPY and wait until the server has stored every row."""
        if self._copy is not None:
            self._copy.write(_PG_COPY_TRAILER)
            stack, self._stack, self._copy = self._stack, None, None
            stack.close()

    def abort(self, error: BaseException) -> None:
        """Cancel an open COPY because `error` is propagating; the transaction then rolls back."""
        if self._copy is not None:
            stack, self._stack, self._copy = self._stack, None, None
            stack.__exit__(type(error), error, error.__traceback__)


_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_PG_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
_PG_EPOCH_OFFSET_US = 946_684_800_000_000  # PostgreSQL timestamps count microseconds from 2000-01-01


def binary_copy_rows(symbol_id: int, interval: str, block: CandleBlock) -> bytes:
    """Binary COPY tuples (no header or trailer) for (symbol_id, interval, open_time, OHLCV)."""
    label = interval.encode("utf-8")
    prices = ("open", "high", "low", "close", "volume")
    record = np.dtype([
        ("fields", ">i2"),
        ("symbol_len", ">i4"), ("symbol", ">i8"),
        ("interval_len", ">i4"), ("interval", f"S{len(label)}"),
        ("time_len", ">i4"), ("time", ">i8"),
        *[(part, dtype) for name in prices for part, dtype in ((f"{name}_len", ">i4"), (name, ">f8"))],
    ])
    data = np.empty(len(block), dtype=record)
    data["fields"] = len(_CandleWriter.FIELDS)
    data["symbol_len"], data["symbol"] = 8, symbol_id
    data["interval_len"], data["interval"] = len(label), label
    data["time_len"], data["time"] = 8, block.open_time_us - _PG_EPOCH_OFFSET_US
    for name in prices:
        data[f"{name}_len"], data[name] = 8, getattr(block, name)
    return data.tobytes()


def _candle_conflict(row: CandleRow, existing: tuple) -> str:
    names = ("open", "high", "low", "close", "volume")
    differences = [
        f"{name} {stored!r} stored, {new!r} in file"
        for name, stored, new in zip(names, existing, (row.open, row.high, row.low, row.close, row.volume))
        if stored != new
    ]
    return (f"conflicts with the stored bar at {format_us(row.open_time_us)}: " + ", ".join(differences)
            + " (stored bars are never overwritten)")


# --- fills -----------------------------------------------------------------------------------------------------


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
    total = _progress_total(path, report.format, progress)

    def body() -> None:
        _advisory_lock("fills")
        rows = parse_fills(path, report.format, symbol=symbol, current_us=current_us)
        _FillWriter(report, skip_invalid, progress, total).run(rows)

    return _run(report, path, report.format, skip_invalid, reject_dir, body)


_FILL_VALUES = ("side", "qty", "price", "fee", "fee_asset", "is_maker", "realized_pnl", "arrival_price", "executed_at")
_MONEY_VALUES = {"qty", "price", "fee", "realized_pnl", "arrival_price"}


class _FillWriter:
    def __init__(self, report: ImportReport, skip_invalid: bool, progress: Progress | None, total: int | None):
        self.report = report
        self.skip_invalid = skip_invalid
        self.progress = progress
        self.total = total
        self.symbols: dict[str, Symbol] = {}
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
                    if value is not None and _significant_digits(value) > _SQLITE_MONEY_DIGITS
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
                f"{self.inexact_money} money value(s) have more than {_SQLITE_MONEY_DIGITS} significant digits; "
                f"SQLite keeps only about {_SQLITE_MONEY_DIGITS} (PostgreSQL stores them exactly)"
            )
        if self.progress:
            self.progress(report.rows_read, report.rows_read)

    def _symbol_ids(self, batch: list[FillRow]) -> dict[str, int]:
        for name in {row.symbol for row in batch} - self.symbols.keys():
            self.symbols[name] = _symbol(name, self.report)
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
                    f"conflicts with the stored fill {row.symbol} {row.trade_id}: " + ", ".join(differences)
                    + " (stored fills are never overwritten)",
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

    def _differences(self, existing: tuple, row: FillRow) -> list[str]:
        new_values = (row.side, row.qty, row.price, row.fee, row.fee_asset, row.is_maker, row.realized_pnl,
                      row.arrival_price, row.executed_at_us)
        differences = []
        for name, stored, new in zip(_FILL_VALUES, existing, new_values):
            if name in _MONEY_VALUES:
                same = self._same_money(stored, new)
            else:
                same = stored == new
            if not same:
                shown = (format_us(stored), format_us(new)) if name == "executed_at" else (_plain(stored), _plain(new))
                differences.append(f"{name} {shown[0]} stored, {shown[1]} in file")
        return differences

    def _same_money(self, stored: Decimal | None, new: Decimal | None) -> bool:
        if stored is None or new is None:
            return stored is new
        if stored == new:
            return True
        return self.approximate_money and math.isclose(float(stored), float(new), rel_tol=_SQLITE_MONEY_RTOL)


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
