"""manage.py import_fills: load Binance myTrades JSON, ccxt trades JSON, freqtrade trade lists or the project CSV.

Each file is imported in its own transaction; see docs/importing.md for the formats and the rules.
"""
from ...telemetry.importers.fill_parsers import FILL_FORMATS
from ...telemetry.importers.fills import fills_import
from ..importing import ImportCommand


class Command(ImportCommand):
    help = (
        "Import fills from Binance myTrades JSON, ccxt trade JSON, freqtrade trade lists or the project's CSV, "
        "plain or gzipped. Idempotent; a file with any bad row imports nothing unless --skip-invalid."
    )
    kind = "fill"
    formats = FILL_FORMATS

    def add_source_arguments(self, parser):
        parser.add_argument("--symbol", default=None,
                            help="symbol for files that carry none (freqtrade lists; default from the file name "
                                 "PAIR-trades.json); for the other formats every row must match it")

    def import_file(self, path, progress, *, fmt, symbol, skip_invalid, reject_dir, **options):
        return fills_import(path=path, fmt=fmt, symbol=symbol, skip_invalid=skip_invalid,
                            progress=progress, reject_dir=reject_dir)
