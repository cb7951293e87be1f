"""manage.py import_candles: load Binance kline CSV or freqtrade candle JSON files (plain or gzipped).

Each file is imported in its own transaction; see docs/importing.md for the formats and the rules.
"""
from ...telemetry.importers.candle_parsers import CANDLE_FORMATS
from ...telemetry.importers.candles import candles_import
from ..importing import ImportCommand


class Command(ImportCommand):
    help = (
        "Import candles from Binance kline CSV (data.binance.vision layout) or freqtrade JSON files, "
        "plain or gzipped. Idempotent; a file with any bad row imports nothing unless --skip-invalid."
    )
    kind = "candle"
    formats = CANDLE_FORMATS

    def add_source_arguments(self, parser):
        parser.add_argument("--symbol", required=True,
                            help="symbol the bars belong to, e.g. BTCUSDT (created if missing)")
        parser.add_argument("--interval", required=True, help="bar interval, e.g. 1m, 5m, 1h, 1d")

    def import_file(self, path, progress, *, symbol, interval, fmt, skip_invalid, reject_dir, **options):
        return candles_import(path=path, symbol=symbol, interval=interval, fmt=fmt,
                              skip_invalid=skip_invalid, progress=progress, reject_dir=reject_dir)
