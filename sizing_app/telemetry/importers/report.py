"""What one file's import did: counts, rejected rows, warnings, and the human summary the commands print.

Pure data: the services fill it in, the commands and the reject-file summary render it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..rules import RowError
from .rows import format_us

MAX_LISTED_GAPS = 10


@dataclass
class ImportReport:
    """Outcome of importing one file.

    rows_read: data rows in the file (header and blank lines excluded). inserted: rows written.
    unchanged: rows already stored with identical values (re-imports). errors: rejected rows, by
    line. committed: False when the file was rejected (then nothing from it was written).
    """

    path: str
    kind: str  # "candles" or "fills"
    format: str = ""
    symbol: str = ""  # candles: the symbol; fills: the symbols found, comma-separated
    interval: str = ""
    rows_read: int = 0
    inserted: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    file_error: str | None = None
    skip_invalid: bool = False
    committed: bool = False
    created_symbols: list[str] = field(default_factory=list)
    first_us: int | None = None
    last_us: int | None = None
    zero_volume: int = 0
    gaps: list = field(default_factory=list)
    missing_bars: int = 0
    too_close: int = 0
    out_of_order: bool = False
    linked_orders: int = 0
    warnings: list[str] = field(default_factory=list)
    reject_path: str | None = None
    summary_path: str | None = None
    seconds: float = 0.0

    @property
    def rejected(self) -> bool:
        """True when nothing from the file was imported because of bad rows or a file-level error."""
        return not self.committed

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def name(self) -> str:
        return Path(self.path).name

    def headline(self) -> str:
        target = f"{self.symbol} {self.interval}".strip() or "-"
        if self.file_error:
            return f"{self.name}: REJECTED, nothing imported: {self.file_error}"
        outcome = "imported" if self.committed else "REJECTED, nothing imported"
        unit = "bars" if self.kind == "candles" else "fills"
        text = (
            f"{self.name} ({self.format}) -> {target}: {outcome}; {self.rows_read} {unit} read, "
            f"{self.inserted} inserted, {self.unchanged} already present, {len(self.errors)} rejected"
        )
        if self.seconds > 0 and self.committed:
            text += f" in {self.seconds:.2f} s ({self.rows_per_second:,.0f} rows/s)"
        return text

    def detail_lines(self) -> list[str]:
        lines = []
        if self.first_us is not None:
            lines.append(f"time range {format_us(self.first_us)} .. {format_us(self.last_us)}")
        if self.kind == "candles" and self.rows_read:
            gap_text = f"{len(self.gaps)} gap{'s' if len(self.gaps) != 1 else ''}"
            if self.gaps:
                gap_text += f" ({self.missing_bars} missing bar{'s' if self.missing_bars != 1 else ''})"
            lines.append(f"{self.zero_volume} zero-volume bar{'s' if self.zero_volume != 1 else ''}, {gap_text}")
            for gap in self.gaps[:MAX_LISTED_GAPS]:
                lines.append(f"warning: gap: {gap}")
            if len(self.gaps) > MAX_LISTED_GAPS:
                lines.append(f"warning: ... and {len(self.gaps) - MAX_LISTED_GAPS} more gaps")
        if self.kind == "fills" and self.committed:
            lines.append(f"{self.linked_orders} fill(s) linked to a stored order")
        lines.extend(f"warning: {warning}" for warning in self.warnings)
        lines.extend(f"created symbol {name}" for name in self.created_symbols)
        if self.reject_path:
            lines.append(f"{len(self.errors)} rejected row(s) written untouched to {self.reject_path}")
            lines.append(f"summary written to {self.summary_path}")
        return lines

    def error_lines(self) -> list[str]:
        return [str(error) for error in self.errors]

    def advice(self) -> str:
        if self.file_error:
            return "Fix the file (or pass --format if the format was guessed wrong) and re-run."
        good = self.rows_read - len(self.errors)
        return (
            f"Fix the rows above or re-run with --skip-invalid to import the {good} good row(s) "
            "and write the rejected ones to a reject file."
        )

    def summary_text(self) -> str:
        """The text of the summary file written beside a reject file."""
        body = [self.headline(), *self.detail_lines(), "", "Rejected rows (line: reason):", *self.error_lines()]
        return "\n".join(body) + "\n"
