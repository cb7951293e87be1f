"""What every file import shares: one transaction per file, bad rows rolled back or set aside, progress.

A file with any bad row writes nothing (unless skip_invalid); stored rows are never overwritten:
identical ones are skipped (re-imports are no-ops), different ones are rejected as conflicts (telemetry.rules).
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from django.db import IntegrityError, connection, transaction

from ...domain.metrics import bars_per_year
from ...models import Candle, Symbol
from ..symbols import symbol_register
from .candle_parsers import BINANCE_CSV
from .fill_parsers import PROJECT_CSV
from .report import ImportReport
from .rows import FileError
from .sources import count_lines, iter_lines

BATCH_SIZE = 5_000
LOOKUP_CHUNK = 900  # keeps IN (...) lists under SQLite's variable limit on old builds
MAX_INTERVAL_LENGTH = Candle._meta.get_field("interval").max_length
_MONTH_INTERVAL = re.compile(r"[0-9]+M")
# SQLite keeps DecimalField values as 64-bit floats, so stored money is only exact to ~15 digits there.
SQLITE_MONEY_RTOL = 1e-14
SQLITE_MONEY_DIGITS = 15

Progress = Callable[[int, int | None], None]


class _Rollback(Exception):
    """Raised inside the file's transaction to undo everything it wrote."""


def bar_microseconds(interval: str) -> int | None:
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


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def advisory_lock(key: str) -> None:
    # Serializes imports of the same series so the conflict check and the insert see the same rows.
    # SQLite needs none: its IMMEDIATE transactions already admit one writer at a time.
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])


def symbol_registered(name: str, report: ImportReport, pair: tuple[str, str] | None = None) -> Symbol:
    """The symbol, registered with its assets if new (telemetry.symbols); ValueError when it cannot be."""
    base, quote = pair or ("", "")
    symbol, created = symbol_register(name=name, base_asset=base, quote_asset=quote)
    if created:
        report.created_symbols.append(name)
    return symbol


def import_run(report: ImportReport, path: Path, fmt: str, skip_invalid: bool, reject_dir,
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


def progress_total(path: Path, fmt: str, progress: Progress | None) -> int | None:
    if progress is None or fmt not in (BINANCE_CSV, PROJECT_CSV):
        return None
    try:
        return count_lines(path)
    except Exception:  # a corrupt file is reported by the parser; the bar just has no total
        return None


