"""What import_candles and import_fills share: the progress line, the per-file summary, the exit status.

Kept out of the commands so both print the same way and stay thin shells around the services.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ..management.progress import Progress
from .report import ImportReport


def progress_for(command: BaseCommand, label: str) -> Progress | None:
    """A progress line only when stdout is a terminal; pipes and logs get nothing extra."""
    isatty = getattr(command.stdout, "isatty", None)
    return Progress(command.stdout, label, "rows") if isatty and isatty() else None


def print_report(command: BaseCommand, report: ImportReport, verbosity: int) -> None:
    if report.committed:
        if verbosity >= 1:
            command.stdout.write(command.style.SUCCESS(report.headline()))
            for line in report.detail_lines():
                command.stdout.write("  " + line)
        if report.errors:
            command.stderr.write(f"  {len(report.errors)} row(s) skipped:")
            for line in report.error_lines():
                command.stderr.write("    " + line)
        return
    command.stderr.write(command.style.ERROR(report.headline()))
    for line in report.error_lines():
        command.stderr.write("    " + line)
    if report.errors and not report.file_error:
        command.stderr.write(f"  {len(report.errors)} bad row(s); nothing from this file was imported.")
    command.stderr.write("  " + report.advice())


def finish(reports: list[ImportReport]) -> None:
    """CommandError (exit status 1) when any file was rejected; the good files stay imported."""
    rejected = [report.name for report in reports if report.rejected]
    if rejected:
        raise CommandError(
            f"{len(rejected)} of {len(reports)} file(s) rejected, nothing imported from: {', '.join(rejected)}. "
            "Fix the rows listed above or re-run with --skip-invalid."
        )
