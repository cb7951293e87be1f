"""Synthetic benchmark data: N symbols x 720 1h candles x 200 fills (and their orders).

As an exchange reports them: fills without a realized PnL (the accounting computes it), a third of
the fees in BNB (converted through the BNBUSDT candles, which are written too), the rest in USDT.
Written with COPY on PostgreSQL and bulk_create elsewhere; deterministic for a given seed.
"""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db import connection, transaction

from sizing_app.models import Candle, Fill, Order, Symbol

HOUR_MS = 3_600_000
FEE_MARKET = "BNBUSDT"  # prices the BNB fees in USDT


def _symbol_names(count: int) -> list[str]:
    return [f"BENCH{index:05d}USDT" for index in range(count)]


def _copy(table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(row))
        buffer.write("\n")
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def create_bench_data(*, symbols: int, candles: int, fills: int, as_of: datetime, seed: int = 1) -> list[str]:
    """Create the symbols with `candles` closed 1h bars before as_of and `fills` fills each."""
    rng = np.random.default_rng(seed)
    names = _symbol_names(symbols)
    existing = set(Symbol.objects.filter(name__in=names).values_list("name", flat=True))
    todo = [name for name in names if name not in existing]
    if not todo:
        return names
    Symbol.objects.bulk_create([Symbol(name=name, base_asset=name[:-4], quote_asset="USDT") for name in todo])
    ids = dict(Symbol.objects.filter(name__in=todo).values_list("name", "id"))
    bnb, _ = Symbol.objects.get_or_create(name=FEE_MARKET, defaults={"base_asset": "BNB", "quote_asset": "USDT"})
    end_ms = int(as_of.timestamp() * 1000) // HOUR_MS * HOUR_MS
    open_ms = end_ms - HOUR_MS * np.arange(candles, 0, -1)
    fill_ms = np.sort(rng.integers(end_ms - 30 * 24 * HOUR_MS, end_ms, size=(len(todo), fills)), axis=1)
    candle_rows, order_rows, fill_rows = [], [], []
    if not Candle.objects.filter(symbol=bnb).exists():
        candle_rows += [(bnb.pk, int(t), 600.0, 601.0, 599.0) for t in open_ms]
    for position, name in enumerate(todo):
        symbol_id = ids[name]
        close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, candles)))
        spread = np.abs(rng.normal(0, 0.004, candles)) * close
        high, low = close + spread, close - spread
        for t, c, h, low_price in zip(open_ms, close, high, low):
            candle_rows.append((symbol_id, int(t), float(c), float(h), float(low_price)))
        sides = rng.choice(["buy", "sell"], size=fills)
        slippage = rng.normal(2.0, 5.0, fills) / 1e4
        for index in range(fills):
            t = int(fill_ms[position, index])
            arrival = float(close[min(candles - 1, max(0, (t - int(open_ms[0])) // HOUR_MS))])
            sign = 1 if sides[index] == "buy" else -1
            price = arrival * (1 + sign * slippage[index])
            qty = float(rng.uniform(0.1, 2.0))
            requested = qty / float(rng.uniform(0.6, 1.0))
            fee, fee_asset = (qty * price * 0.00075 / 600.0, "BNB") if index % 3 == 0 else (qty * price * 0.001,
                                                                                              "USDT")
            order_rows.append((symbol_id, f"o{index}", sides[index], requested, qty, arrival, t))
            fill_rows.append((symbol_id, f"t{index}", f"o{index}", sides[index], qty, price, bool(index % 3 == 0),
                              fee, fee_asset, t))
    _write(candle_rows, order_rows, fill_rows)
    return names


def _write(candle_rows, order_rows, fill_rows) -> None:
    if connection.vendor == "postgresql":
        _copy("sizing_app_candle", ["symbol_id", "interval", "open_time", "open", "high", "low", "close", "volume"],
              ((str(s), "1h", _iso(t), repr(c), repr(h), repr(low), repr(c), "1") for s, t, c, h, low in candle_rows))
        _copy("sizing_app_order", ["symbol_id", "client_order_id", "exchange_order_id", "side", "liquidity",
                                   "maker_fallback", "requested_qty", "filled_qty", "arrival_price", "status",
                                   "submitted_at"],
              ((str(s), ref, "", side, "taker", "f", f"{req:.8f}", f"{qty:.8f}", f"{arr:.8f}", "filled", _iso(t))
               for s, ref, side, req, qty, arr, t in order_rows))
        with connection.cursor() as cursor:
            cursor.execute("SELECT symbol_id, client_order_id, id FROM sizing_app_order")
            order_ids = {(s, ref): pk for s, ref, pk in cursor.fetchall()}
        _copy("sizing_app_fill", ["symbol_id", "order_id", "order_ref", "trade_id", "side", "qty", "price", "fee",
                                  "fee_asset", "is_maker", "realized_pnl", "executed_at"],
              ((str(s), str(order_ids[(s, oref)]), oref, tid, side, f"{qty:.8f}", f"{price:.8f}", f"{fee:.8f}",
                fee_asset, "t" if maker else "f", r"\N", _iso(t))
               for s, tid, oref, side, qty, price, maker, fee, fee_asset, t in fill_rows))
        return
    with transaction.atomic():
        Candle.objects.bulk_create(
            (Candle(symbol_id=s, interval="1h", open_time=datetime.fromtimestamp(t / 1000, tz=UTC),
                    open=c, high=h, low=low, close=c, volume=1.0) for s, t, c, h, low in candle_rows),
            batch_size=5000,
        )
        orders = Order.objects.bulk_create(
            (Order(symbol_id=s, client_order_id=ref, side=side, requested_qty=f"{req:.8f}", filled_qty=f"{qty:.8f}",
                   arrival_price=f"{arr:.8f}", status="filled",
                   submitted_at=datetime.fromtimestamp(t / 1000, tz=UTC))
             for s, ref, side, req, qty, arr, t in order_rows),
            batch_size=5000,
        )
        order_ids = {(o.symbol_id, o.client_order_id): o.pk for o in orders}
        Fill.objects.bulk_create(
            (Fill(symbol_id=s, order_id=order_ids[(s, oref)], order_ref=oref, trade_id=tid, side=side,
                  qty=f"{qty:.8f}", price=f"{price:.8f}", fee=f"{fee:.8f}", fee_asset=fee_asset, is_maker=maker,
                  executed_at=datetime.fromtimestamp(t / 1000, tz=UTC))
             for s, tid, oref, side, qty, price, maker, fee, fee_asset, t in fill_rows),
            batch_size=5000,
        )


def bench_as_of() -> datetime:
    """A fixed, bucket-aligned time so every run measures the same rows."""
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=0)
