"""The import benchmark's helpers: a generated kline file the importer takes, and a run that cleans up."""
from bench.import_data import bench_import_candles, write_kline_csv
from sizing_app.models import Candle, Symbol
from sizing_app.telemetry.importers.candle_parsers import parse_candles
from sizing_app.telemetry.rules import RowError


def test_bench_import_candles_measures_and_cleans_up():
    result = bench_import_candles(3_000)
    assert result["import_rows"] == 3_000 and result["import_rows_per_s"] > 0
    assert not Symbol.objects.filter(name="ZZIMPORTBENCH").exists() and Candle.objects.count() == 0


def test_generated_bench_file_is_valid(tmp_path):
    path = tmp_path / "k.csv"
    write_kline_csv(path, 500)
    items = list(parse_candles(path, "binance-csv"))
    assert sum(len(item) for item in items) == 500 and all(not isinstance(i, RowError) for i in items)
