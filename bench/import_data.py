"""Import throughput benchmark: write a generated Binance kline CSV and time candles_import on it.

bench/run.py calls bench_import_candles(rows) and reports import_rows_per_s for the current database.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from django.db import connection

BENCH_SYMBOL = "ZZIMPORTBENCH"
BENCH_INTERVAL = "1m"
BENCH_START_MS = 1_577_836_800_000  # 2020-01-01T00:00Z; a million minutes ends in 2021, safely in range
_WRITE_CHUNK = 100_000


def write_kline_csv(path: Path, rows: int, *, seed: int = 7, header: bool = True) -> None:
    """A valid Binance kline CSV of `rows` one-minute bars (random walk, consistent OHLC)."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        if header:
            handle.write("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                         "taker_buy_volume,taker_buy_quote_volume,ignore\n")
        price = 30_000.0
        for start in range(0, rows, _WRITE_CHUNK):
            count = min(_WRITE_CHUNK, rows - start)
            steps = rng.normal(0.0, 5.0, count)
            close = np.round(np.maximum(price + np.cumsum(steps), 1.0), 2)
            open_ = np.round(np.concatenate(([price], close[:-1])), 2)
            high = np.round(np.maximum(open_, close) + rng.uniform(0, 3, count), 2)
            low = np.round(np.maximum(np.minimum(open_, close) - rng.uniform(0, 3, count), 0.01), 2)
            volume = np.round(rng.uniform(0, 50, count), 5)
            open_ms = BENCH_START_MS + (start + np.arange(count, dtype=np.int64)) * 60_000
            handle.writelines(
                f"{t},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:.5f},{t + 59_999},{v * c:.5f},{n},{v / 2:.5f},"
                f"{v * c / 2:.5f},0\n"
                for t, o, h, lo, c, v, n in zip(
                    open_ms.tolist(), open_.tolist(), high.tolist(), low.tolist(), close.tolist(),
                    volume.tolist(), rng.integers(1, 500, count).tolist(),
                )
            )
            price = float(close[-1])


def _forget_bench_rows() -> None:
    from sizing_app.models import Candle, Symbol

    Candle.objects.filter(symbol__name=BENCH_SYMBOL).delete()
    Symbol.objects.filter(name=BENCH_SYMBOL).delete()


def bench_import_candles(rows: int) -> dict:
    """Import a generated `rows`-row kline CSV into the current database and return its throughput.

    The bench symbol is created inactive (recompute skips it) and removed afterwards, with its bars.
    """
    from sizing_app.models import Symbol
    from sizing_app.telemetry.importers.candles import candles_import

    if rows < 1:
        raise ValueError("rows must be at least 1")
    with tempfile.TemporaryDirectory(prefix="import-bench-") as directory:
        path = Path(directory) / f"{BENCH_SYMBOL}-{BENCH_INTERVAL}.csv"
        write_kline_csv(path, rows)
        _forget_bench_rows()  # a crashed earlier run would turn the inserts into "already present" skips
        Symbol.objects.create(name=BENCH_SYMBOL, is_active=False)
        try:
            started = time.perf_counter()
            report = candles_import(path=path, symbol=BENCH_SYMBOL, interval=BENCH_INTERVAL)
            seconds = time.perf_counter() - started
        finally:
            _forget_bench_rows()
    if not report.committed or report.inserted != rows:
        raise RuntimeError(f"benchmark import failed: {report.headline()}")
    return {
        "import_rows": rows,
        "import_rows_per_s": rows / seconds,
        "import_seconds": seconds,
        "import_database": connection.vendor,
    }
