#!/usr/bin/env python
"""Benchmarks: recompute vs bare SELECT, size_for vs bare INSERT, batch sizing, hot reads, imports.

    python bench/run.py [--quick] [--parts recompute,ledger,...]   # one JSON object on stdout, progress on stderr

Every speed is measured in this run beside its baseline, on the same database. PostgreSQL is
used when reachable (BENCH_DATABASE_URL, default a scratch database `sizing_bench` on
127.0.0.1, dropped and created again by each run: give benches that may run at the same time
different names, e.g. BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/sizing_bench_recompute);
SQLite figures for the ledger path are reported under "sqlite".
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/sizing_bench"
PARTS = ("recompute", "ledger", "api", "import", "dashboard")
POSTGRES_PARTS = ("recompute", "ledger", "api", "import")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- worker side: runs inside one Django process bound to one database -------------------------

def _setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["SIZING_BACKGROUND_REFRESH"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _select_baseline_s(names: list[str], as_of) -> float:
    """Time to fetch the same rows the recompute reads, as plain SELECTs with fetchall."""
    from datetime import timedelta

    from django.db import connection

    from sizing_app.conf import sizing_settings
    from sizing_app.models import Symbol

    ids = list(Symbol.objects.filter(name__in=names).values_list("id", flat=True))
    lookback = as_of - timedelta(days=sizing_settings().lookback_days)
    week = as_of - timedelta(days=7)
    placeholders = ", ".join(["%s"] * len(ids))
    queries = [
        (f"SELECT symbol_id, open_time, open, high, low, close, volume FROM sizing_app_candle "
         f"WHERE symbol_id IN ({placeholders}) AND interval = %s AND open_time >= %s AND open_time < %s "
         "ORDER BY symbol_id, open_time", [*ids, "1h", lookback, as_of]),
        # Every fill before as_of: the position accounting starts from the first.
        (f"SELECT symbol_id, id, executed_at, side, qty, price, arrival_price, is_maker, realized_pnl, fee, fee_asset "
         f"FROM sizing_app_fill WHERE symbol_id IN ({placeholders}) AND executed_at < %s "
         "ORDER BY symbol_id, executed_at, trade_id, id", [*ids, as_of]),
        (f"SELECT symbol_id, requested_qty, filled_qty FROM sizing_app_order WHERE symbol_id IN ({placeholders}) "
         "AND submitted_at >= %s AND submitted_at < %s ORDER BY symbol_id", [*ids, week, as_of]),
    ]
    started = time.perf_counter()
    rows = 0
    with connection.cursor() as cursor:
        for sql, params in queries:
            cursor.execute(sql, params)
            rows += len(cursor.fetchall())
    elapsed = time.perf_counter() - started
    log(f"bare SELECT of {rows} rows for {len(ids)} symbols: {elapsed:.3f} s")
    return elapsed


def _recompute_figures(symbol_counts: list[int], repeats: int) -> dict:
    from datetime import timedelta

    from bench.data import bench_as_of, create_bench_data
    from sizing_app.recompute.service import default_workers, recompute_run

    as_of = bench_as_of()
    largest = max(symbol_counts)
    started = time.perf_counter()
    names = create_bench_data(symbols=largest, candles=720, fills=200, as_of=as_of)
    log(f"bench data for {largest} symbols ready in {time.perf_counter() - started:.1f} s")
    # The product's own path (what `manage.py recompute_factors` runs), with its default threads.
    figures: dict = {"recompute_threads": default_workers()}
    bucket = 0
    for count in symbol_counts:
        subset = names[:count]
        select_times, recompute_times = [], []
        for _ in range(repeats):
            select_times.append(_select_baseline_s(subset, as_of))
            bucket += 1
            # A new bucket each time: every repeat writes fresh snapshots, like a real schedule.
            run_as_of = as_of + timedelta(seconds=300 * bucket)
            began = time.perf_counter()
            run = recompute_run(symbol_names=subset, as_of=run_as_of, trigger="bench")
            recompute_times.append(time.perf_counter() - began)
            assert run.symbols_ok == count, run.errors
            log(f"recompute {count} symbols: {recompute_times[-1]:.3f} s")
        figures[f"recompute_{count}_s"] = round(statistics.median(recompute_times), 4)
        figures[f"select_{count}_s"] = round(statistics.median(select_times), 4)
        figures[f"recompute_vs_select_{count}"] = round(
            figures[f"recompute_{count}_s"] / figures[f"select_{count}_s"], 2
        )
    if len(symbol_counts) > 1:
        small, large = min(symbol_counts), max(symbol_counts)
        figures["recompute_scaling"] = {
            "symbols_ratio": large / small,
            "time_ratio": round(figures[f"recompute_{large}_s"] / figures[f"recompute_{small}_s"], 2),
        }
    return figures


def _symbols_with_fresh_snapshots() -> list[str]:
    """The ledger and API parts' symbols, each with a snapshot for the current bucket (live sizing)."""
    from sizing_app.models import Symbol
    from sizing_app.recompute.service import recompute_run

    names = [f"LEDGER{index:02d}USDT" for index in range(20)]
    for name in names:
        Symbol.objects.get_or_create(name=name)
    recompute_run(symbol_names=names, trigger="bench")  # None when this bucket is already done: fine
    return names


def _create_ledger_twin(connection) -> tuple[str, list[str]]:
    """An empty copy of the ledger table with the same columns, constraints and indexes: (name, columns).

    The floor below inserts into it: what a committed ledger row costs the database itself,
    before any of size_for's Python. Its append-only triggers are not copied (they guard UPDATE
    and DELETE, never run on INSERT).
    """
    from sizing_app.models import SizingDecision

    table = SizingDecision._meta.db_table
    twin = "bench_ledger_row"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {twin}")
        if connection.vendor == "postgresql":
            cursor.execute(f"CREATE TABLE {twin} (LIKE {table} INCLUDING ALL)")
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE tbl_name = %s AND type IN ('table', 'index') "
                           "AND sql IS NOT NULL ORDER BY type DESC", [table])
            for (sql,) in cursor.fetchall():
                # Index names are global in SQLite: the twin's get a prefix.
                sql = sql.replace(f'"{table}"', twin).replace('INDEX "', f'INDEX "{twin}_')
                cursor.execute(sql)
    columns = [field.column for field in SizingDecision._meta.concrete_fields if not field.primary_key]
    return twin, columns


def _ledger_figures(calls: int, batches: int) -> dict:
    from django.db import connection

    from sizing_app.models import SizingDecision
    from sizing_app.signal_generator import size_decide_batch, size_for
    from sizing_app.sizing.hot_state import hot_state

    names = _symbols_with_fresh_snapshots()
    for name in names:
        size_for(name, 1.0, order_ref="warm-up", caller="bench")

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_bare_insert")
        cursor.execute(
            "CREATE TABLE bench_bare_insert (id integer PRIMARY KEY, symbol varchar(32), gross double precision, "
            "final double precision, created_at timestamp)"
            if connection.vendor == "sqlite" else
            "CREATE TABLE bench_bare_insert (id bigserial PRIMARY KEY, symbol varchar(32), gross double precision, "
            "final double precision, created_at timestamptz)"
        )
    twin, twin_columns = _create_ledger_twin(connection)
    # A real ledger row's values, as the database stores them; each copy gets its own chain position.
    template = SizingDecision.objects.values_list(*twin_columns).last()
    template = [("" if column == "journal_ref" else value) for column, value in zip(twin_columns, template)]
    seq_at = twin_columns.index("seq")
    twin_sql = (f"INSERT INTO {twin} ({', '.join(twin_columns)}) VALUES ({', '.join(['%s'] * len(twin_columns))}) "
                'RETURNING "id"')
    if connection.vendor == "postgresql":
        try:
            with connection.cursor() as cursor:
                # Pages dirtied before (the data set-up) are written now, not during the timings.
                cursor.execute("CHECKPOINT")
        except Exception as exc:  # needs superuser or pg_checkpoint: the figures are still valid, just noisier
            log(f"CHECKPOINT refused ({exc}); timing without it")
    bare, ledger_rows, sized = [], [], []
    # Interleaved, one of each per step: on a shared machine all three see the same disk and CPU
    # weather, so their ratios mean something even when the absolute figures drift.
    for index in range(calls):
        with connection.cursor() as cursor:
            began = time.perf_counter_ns()
            cursor.execute(  # autocommit: one committed single-row INSERT
                "INSERT INTO bench_bare_insert (symbol, gross, final, created_at) "
                "VALUES (%s, %s, %s, CURRENT_TIMESTAMP)",
                [names[index % len(names)], 100.0, 100.0],
            )
            bare.append((time.perf_counter_ns() - began) / 1000)
        row = template.copy()
        row[seq_at] = index + 1
        with connection.cursor() as cursor:
            began = time.perf_counter_ns()
            cursor.execute(twin_sql, row)  # the same way as the bare INSERT: the ledger row's database cost
            cursor.fetchall()
            ledger_rows.append((time.perf_counter_ns() - began) / 1000)
        began = time.perf_counter_ns()
        size_for(names[index % len(names)], 100.0, order_ref=f"bench-{index}", caller="bench")
        sized.append((time.perf_counter_ns() - began) / 1000)

    batch_orders = [[(names[(b * 100 + i) % len(names)], 100.0, f"batch-{b}-{i}") for i in range(100)]
                    for b in range(batches)]
    bare_batch_sql = ("INSERT INTO bench_bare_insert (symbol, gross, final, created_at) VALUES "
                      + ", ".join(["(%s, %s, %s, CURRENT_TIMESTAMP)"] * 100))
    batch_s = bare_batch_s = 0.0
    for orders in batch_orders:  # interleaved with its baseline, as above
        params = [value for symbol, gross, _ in orders for value in (symbol, gross, gross)]
        with connection.cursor() as cursor:
            began = time.perf_counter()
            cursor.execute(bare_batch_sql, params)  # autocommit: 100 rows, one commit
            bare_batch_s += time.perf_counter() - began
        began = time.perf_counter()
        size_decide_batch(orders, caller="bench")
        batch_s += time.perf_counter() - began

    reads = []
    symbol = names[0]
    for _ in range(20000):
        began = time.perf_counter_ns()
        hot_state.latest(symbol)
        reads.append((time.perf_counter_ns() - began) / 1000)
    return {
        "size_for_p50_us": round(percentile(sized, 0.5), 1),
        "size_for_p99_us": round(percentile(sized, 0.99), 1),
        "bare_insert_p50_us": round(percentile(bare, 0.5), 1),
        "bare_insert_p99_us": round(percentile(bare, 0.99), 1),
        "size_for_vs_bare_insert_p50": round(percentile(sized, 0.5) / percentile(bare, 0.5), 2),
        # The floor under that ratio: a precomputed ledger row INSERTed as the bare one is.
        "ledger_row_insert_p50_us": round(percentile(ledger_rows, 0.5), 1),
        "ledger_row_insert_vs_bare_insert_p50": round(percentile(ledger_rows, 0.5) / percentile(bare, 0.5), 2),
        "batch_decisions_per_s": round(batches * 100 / batch_s),
        "bare_batch_insert_rows_per_s": round(batches * 100 / bare_batch_s),
        "latest_read_p50_us": round(percentile(reads, 0.5), 2),
        "latest_read_p99_us": round(percentile(reads, 0.99), 2),
    }


def _api_figures(quick: bool) -> dict:
    import io

    from django.core.management import call_command

    from bench.api_load import bench_api

    out = io.StringIO()
    call_command("create_api_user", "bench-engine", "--role", "engine", stdout=out, stderr=io.StringIO())
    symbol = _symbols_with_fresh_snapshots()[0]  # a fresh snapshot: the latest-factor path is the live one
    figures = bench_api(symbol=symbol, token=out.getvalue().strip().splitlines()[-1], quick=quick)
    if figures.get("api_non_2xx"):
        log(f"{figures['api_non_2xx']} non-2xx responses: the API figures do not measure the intended paths")
    return figures


def _import_figures(rows: int) -> dict:
    try:
        from bench.import_data import bench_import_candles
    except ImportError:
        return {}
    return bench_import_candles(rows)


def worker(database_url: str, quick: bool, parts: list[str]) -> dict:
    _setup_django(database_url)
    from django.db import connection

    figures: dict = {"database": connection.vendor}
    # The ledger first: the recompute's bulk data would leave the server busy writing it out.
    if "ledger" in parts:
        figures.update(_ledger_figures(calls=300 if quick else 2000, batches=20 if quick else 100))
    if "recompute" in parts:
        figures.update(_recompute_figures([100, 500] if quick else [500, 2000], repeats=1 if quick else 3))
    if "api" in parts:
        figures.update(_api_figures(quick))
    if "import" in parts:
        figures.update(_import_figures(100_000 if quick else 1_000_000))
    if "dashboard" in parts:
        from bench.dashboard_render import bench_dashboard_render

        figures.update(bench_dashboard_render(symbols=100 if quick else 500))
    return figures


# --- parent side --------------------------------------------------------------------------------

def _postgres_reachable(url: str) -> bool:
    import psycopg

    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    name = url.rsplit("/", 1)[1]
    try:
        with psycopg.connect(admin_url.replace("postgres://", "postgresql://"), autocommit=True,
                             connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return True
    except Exception as exc:  # no server: the PostgreSQL figures are left out, and we say so
        log(f"PostgreSQL not reachable at {admin_url}: {exc}")
        return False


def _run_worker(database_url: str, quick: bool, parts: list[str]) -> dict:
    command = [sys.executable, __file__, "--worker", database_url, "--parts", ",".join(parts)]
    if quick:
        command.append("--quick")
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"benchmark worker failed for {database_url.split('@')[-1]}")
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, few repeats (a minute or two)")
    parser.add_argument("--worker", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    args = parser.parse_args()
    parts = [part for part in args.parts.split(",") if part]
    if args.worker:
        print(json.dumps(worker(args.worker, args.quick, parts)))
        return
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")

    started = time.time()
    result: dict = {"quick": args.quick}
    pg_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)
    pg_parts = [part for part in POSTGRES_PARTS if part in parts]
    if pg_parts and _postgres_reachable(pg_url):
        result.update(_run_worker(pg_url, args.quick, pg_parts))
    if "ledger" in parts:
        with tempfile.TemporaryDirectory() as scratch:
            sqlite = _run_worker(f"sqlite:///{scratch}/bench.sqlite3", args.quick, ["ledger"])
        if "database" not in result:
            result.update(sqlite)
        else:
            result["sqlite"] = sqlite
    if "dashboard" in parts:
        with tempfile.TemporaryDirectory() as scratch:
            # Its own empty database: the page renders every active symbol, and only those.
            dashboard = _run_worker(f"sqlite:///{scratch}/dashboard.sqlite3", args.quick, ["dashboard"])
        dashboard.pop("database", None)
        result.update(dashboard)
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    result["elapsed_s"] = round(time.time() - started, 1)
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
