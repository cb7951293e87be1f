"""Importing candle files (Binance kline CSV, freqtrade JSON, gzipped or not) into the database."""
from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import numpy as np
from django.db import connection
from django.db.models import Max, Min

from ...domain.assets import pair_of
from ...domain.metrics import normalize_interval, on_interval_grid
from ...models import Candle, Symbol
from ...sizing.validation import validate_symbol
from ..rules import RowError, changed_fields, describe_changes
from .bar_series import BarSeries
from .candle_parsers import (
    CANDLE_FORMATS,
    CandleBlock,
    detect_candle_format,
    parse_candles,
)
from .report import ImportReport
from .rows import CandleRow, FileError, datetime_to_us, format_us, us_to_datetime
from .run import (
    Progress,
    advisory_lock,
    bar_microseconds,
    import_run,
    is_postgresql,
    progress_total,
    symbol_registered,
)


def candles_import(
    *, path: str | Path, symbol: str, interval: str, fmt: str | None = None, skip_invalid: bool = False,
    progress: Progress | None = None, reject_dir: str | Path | None = None, current_us: int | None = None,
) -> ImportReport:
    """Import one candle file (Binance kline CSV or freqtrade JSON, plain or gzipped) for symbol/interval.

    Raises ValueError for bad arguments; problems with the file are in the returned report.
    """
    path = Path(path)
    pair = pair_of(symbol) if isinstance(symbol, str) else None
    symbol = "".join(pair) if pair else symbol  # "ETH/BTC" names the pair: ETHBTC, base ETH, quote BTC
    validate_symbol(symbol)
    interval_us = bar_microseconds(interval)
    interval = normalize_interval(interval)  # "60m" is stored, and read, as "1h"
    if fmt is not None and fmt not in CANDLE_FORMATS:
        raise ValueError(f"unknown candle format {fmt!r}; expected one of {', '.join(CANDLE_FORMATS)}")
    report = ImportReport(path=str(path), kind="candles", symbol=symbol, interval=interval, skip_invalid=skip_invalid)
    try:
        report.format = fmt or detect_candle_format(path)
    except FileError as exc:
        report.file_error = str(exc)
        return report
    total = progress_total(path, report.format, progress)

    def body() -> None:
        advisory_lock(f"candles:{symbol}:{interval}")
        rows = parse_candles(path, report.format, current_us=current_us)
        try:
            registered = symbol_registered(symbol, report, pair)
        except ValueError as exc:
            raise FileError(f"symbol {symbol}: {exc}") from None
        writer = _CandleWriter(report, registered, interval, interval_us, skip_invalid, progress, total)
        writer.run(rows)

    return import_run(report, path, report.format, skip_invalid, reject_dir, body)


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
        self.copy = _CopyStream(Candle, self.FIELDS) if is_postgresql() else None
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
            on_grid = on_interval_grid(item.open_time_us, self.interval)
            if not on_grid.all():
                for index in np.flatnonzero(~on_grid):
                    errors.append(RowError(
                        int(item.lines[index]),
                        f"open_time {format_us(int(item.open_time_us[index]))} is off the {self.interval} grid "
                        f"(a {self.interval} bar opens on whole multiples of {self.interval} since 1970-01-01 UTC): "
                        "not a bar of this interval, not stored (is --interval right?)", item.raw(index),
                    ))
                item = item.select(on_grid)
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


_CANDLE_VALUES = ("open", "high", "low", "close", "volume")


def _candle_conflict(row: CandleRow, existing: tuple) -> str:
    stored = dict(zip(_CANDLE_VALUES, existing))
    incoming = {name: getattr(row, name) for name in _CANDLE_VALUES}
    changed = changed_fields(stored, incoming, _CANDLE_VALUES)
    return (f"conflicts with the stored bar at {format_us(row.open_time_us)}: "
            + describe_changes(changed, stored, incoming, source="in file", show=lambda name, value: repr(value))
            + " (stored bars are never overwritten)")


