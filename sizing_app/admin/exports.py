"""CSV exports of the ledger, snapshots and runs: column lists, exact cell formatting, streaming.

Shared by the admin's "Export CSV" view and the REST API; no request or response code here.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

CHUNK_SIZE = 2000
FLUSH_BYTES = 64 * 1024

# A cell starting with one of these is run as a formula by Excel and LibreOffice (OWASP "CSV
# injection"); order_ref and caller are engine input, so text cells starting with one get a "'".
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any, *, neutralize_formulas: bool = True) -> str:
    """One value as CSV text that reads back exactly: floats by repr, datetimes in ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that parses back to the same float
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = str(value)
    if neutralize_formulas and text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


@dataclass(frozen=True)
class CsvExport:
    """Columns of one export: `columns` maps each CSV header to the ORM path it reads."""

    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def header(self) -> list[str]:
        return [header for header, _ in self.columns]

    @property
    def paths(self) -> list[str]:
        return [path for _, path in self.columns]

    def row(self, values: Mapping[str, Any], *, neutralize_formulas: bool = True) -> list[str]:
        """The CSV cells of one `queryset.values(*self.paths)` row."""
        return [cell(values[path], neutralize_formulas=neutralize_formulas) for path in self.paths]

    def rows(self, queryset, *, chunk_size: int = CHUNK_SIZE, neutralize_formulas: bool = True) -> Iterator[list[str]]:
        """Rows of a queryset, read `chunk_size` at a time (a server-side cursor on PostgreSQL)."""
        # values() reads only the exported columns and joins only what they name.
        for values in queryset.values(*self.paths).iterator(chunk_size=chunk_size):
            yield self.row(values, neutralize_formulas=neutralize_formulas)


def csv_chunks(header: list[str], rows: Iterable[list[str]], *, flush_bytes: int = FLUSH_BYTES) -> Iterator[str]:
    """CSV text in pieces of about `flush_bytes`, header first, for a streaming response."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield _drain(buffer)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() >= flush_bytes:
            yield _drain(buffer)
    tail = _drain(buffer)
    if tail:
        yield tail


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _same(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, name) for name in names)


DECISIONS = CsvExport(
    name="sizing-decisions",
    columns=_same(
        "id", "created_at", "symbol", "order_ref", "caller", "gross_target", "inverse_vol_size",
        "regime_multiplier", "sharpe_multiplier", "intel_factor", "applied_factor", "final_size", "mode",
        "stale", "fallback_reason", "score",
    ) + (("snapshot_id", "snapshot_id"), ("override_id", "override_id")) + _same("seq", "prev_hash", "row_hash"),
)

SNAPSHOTS = CsvExport(
    name="sizing-snapshots",
    columns=(("id", "id"), ("symbol", "symbol__name")) + _same(
        "as_of", "computed_at", "run_id", "status", "candle_count", "fill_count", "order_count", "active_days",
        "last_close", "atr_pct", "atr_regime_ratio", "realized_volatility", "sharpe_7d", "market_sharpe_7d",
        "max_drawdown", "slippage_bps", "fill_rate", "maker_ratio", "inverse_vol_multiplier", "regime_multiplier",
        "sharpe_multiplier", "score", "raw_size_factor", "size_factor", "components",
    ),
)

RUNS = CsvExport(
    name="recompute-runs",
    columns=_same(
        "id", "trigger", "as_of", "started_at", "finished_at", "status", "symbols_total", "symbols_ok",
        "symbols_failed", "symbols_existing", "chunks_total", "chunks_done", "errors", "task_id",
    ),
)

EXPORTS: dict[str, CsvExport] = {export.name: export for export in (DECISIONS, SNAPSHOTS, RUNS)}
