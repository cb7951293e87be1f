"""What import_candles and import_fills share: the progress line, the per-file summary, the exit status.

Kept out of the commands so both print the same way and stay thin shells around the services.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ..telemetry.importers.report import ImportReport
from .progress import Progress


class ImportCommand(BaseCommand):
    """import_candles and import_fills: files in, one transaction and one report per file.

    A subclass names its `kind` and `formats`, adds its own options (add_source_arguments) and
    imports one file (import_file); the loop, the progress line, the reports and the exit status
    are the same for both.
    """

    kind = ""  # "candle", "fill": in the help and the messages
    formats: tuple[str, ...] = ()

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help=f"{self.kind} files to import")
        self.add_source_arguments(parser)
        parser.add_argument("--format", dest="fmt", choices=self.formats, default=None,
                            help="file format (default: detected from the content)")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="import the good rows; write the rejected ones untouched to a reject file")
        parser.add_argument("--reject-dir", default=None,
                            help="directory for reject files (default: beside each input file)")

    def add_source_arguments(self, parser) -> None:
        """Options that say where the rows belong (symbol, interval)."""

    def import_file(self, path: str, progress: Progress | None, **options) -> ImportReport:
        raise NotImplementedError

    def handle(self, *args, paths, verbosity, **options):
        reports = []
        for path in paths:
            progress = progress_for(self, path) if verbosity >= 1 else None
            try:
                report = self.import_file(path, progress, **options)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            except RecursionError:  # JSON nested deeper than the parser's stack: a bad file, not a crash
                raise CommandError(
                    f"{path}: JSON nested too deeply to be a {self.kind} file; nothing imported."
                ) from None
            finally:
                if progress:
                    progress.close()
            print_report(self, report, verbosity)
            reports.append(report)
        finish(reports)


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
