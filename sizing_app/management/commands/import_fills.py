"""manage.py import_fills: load Binance myTrades JSON, ccxt trades JSON, freqtrade trade lists or the project CSV.

Each file is imported in its own transaction; see docs/importing.md for the formats and the rules.
"""
from django.core.management.base import BaseCommand, CommandError

from sizing_app.importers.cli import finish, print_report, progress_for
from sizing_app.importers.fill_parsers import FILL_FORMATS
from sizing_app.importers.services import fills_import


class Command(BaseCommand):
    help = (
        "Import fills from Binance myTrades JSON, ccxt trade JSON, freqtrade trade lists or the project's CSV, "
        "plain or gzipped. Idempotent; a file with any bad row imports nothing unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="fill files to import")
        parser.add_argument("--format", dest="fmt", choices=FILL_FORMATS, default=None,
                            help="file format (default: detected from the content)")
        parser.add_argument("--symbol", default=None,
                            help="symbol for files that carry none (freqtrade lists; default from the file name "
                                 "PAIR-trades.json); for the other formats every row must match it")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="import the good rows; write the rejected ones untouched to a reject file")
        parser.add_argument("--reject-dir", default=None,
                            help="directory for reject files (default: beside each input file)")

    def handle(self, *args, paths, fmt, symbol, skip_invalid, reject_dir, verbosity, **options):
        reports = []
        for path in paths:
            progress = progress_for(self, path) if verbosity >= 1 else None
            try:
                report = fills_import(path=path, fmt=fmt, symbol=symbol, skip_invalid=skip_invalid,
                                      progress=progress, reject_dir=reject_dir)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            except RecursionError:  # JSON nested deeper than the parser's stack: a bad file, not a crash
                raise CommandError(f"{path}: JSON nested too deeply to be a fill file; nothing imported.") from None
            finally:
                if progress:
                    progress.close()
            print_report(self, report, verbosity)
            reports.append(report)
        finish(reports)
