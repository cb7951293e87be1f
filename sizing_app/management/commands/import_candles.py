"""manage.py import_candles: load Binance kline CSV or freqtrade candle JSON files (plain or gzipped).

Each file is imported in its own transaction; see docs/importing.md for the formats and the rules.
"""
from django.core.management.base import BaseCommand, CommandError

from sizing_app.importers.candle_parsers import CANDLE_FORMATS
from sizing_app.importers.cli import finish, print_report, progress_for
from sizing_app.importers.services import candles_import


class Command(BaseCommand):
    help = (
        "Import candles from Binance kline CSV (data.binance.vision layout) or freqtrade JSON files, "
        "plain or gzipped. Idempotent; a file with any bad row imports nothing unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="candle files to import")
        parser.add_argument("--symbol", required=True,
                            help="symbol the bars belong to, e.g. BTCUSDT (created if missing)")
        parser.add_argument("--interval", required=True, help="bar interval, e.g. 1m, 5m, 1h, 1d")
        parser.add_argument("--format", dest="fmt", choices=CANDLE_FORMATS, default=None,
                            help="file format (default: detected from the content)")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="import the good rows; write the rejected ones untouched to a reject file")
        parser.add_argument("--reject-dir", default=None,
                            help="directory for reject files (default: beside each input file)")

    def handle(self, *args, paths, symbol, interval, fmt, skip_invalid, reject_dir, verbosity, **options):
        reports = []
        for path in paths:
            progress = progress_for(self, path) if verbosity >= 1 else None
            try:
                report = candles_import(path=path, symbol=symbol, interval=interval, fmt=fmt,
                                        skip_invalid=skip_invalid, progress=progress, reject_dir=reject_dir)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            except RecursionError:  # JSON nested deeper than the parser's stack: a bad file, not a crash
                raise CommandError(f"{path}: JSON nested too deeply to be a candle file; nothing imported.") from None
            finally:
                if progress:
                    progress.close()
            print_report(self, report, verbosity)
            reports.append(report)
        finish(reports)
