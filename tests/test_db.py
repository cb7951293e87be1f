"""The recompute's bulk reads: packed PostgreSQL reads give exactly the rows a plain query gives.

On PostgreSQL numeric_columns packs each symbol's rows into one binary value (sizing_app.db);
these tests compare it, array for array and bit for bit, with the plain row-by-row read of the
same queryset, on data built to trip it: microsecond times on half-millisecond boundaries (also
before 1970), equal execution times, NULLs, fees in and out of the quote currency.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection

from sizing_app import db
from sizing_app.db import EpochMs, as_float, numeric_columns
from sizing_app.models import Candle, Fill, Order
from sizing_app.selectors import inputs as selectors
from tests.factories import HOUR, make_candles, make_fill, make_order, make_symbol

AS_OF = datetime(2024, 3, 1, 0, 30, tzinfo=UTC)


@pytest.fixture()
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("the packed read is PostgreSQL's (DATABASE_URL=postgres://...); SQLite reads rows")


def row_read(monkeypatch):
    """Make numeric_columns take the plain row-by-row path, as on SQLite."""
    monkeypatch.setattr(db, "_packed_columns", lambda queryset, dtypes: None)


def assert_same_columns(packed: list[np.ndarray], rows: list[np.ndarray]) -> None:
    assert len(packed) == len(rows)
    for packed_column, row_column in zip(packed, rows):
        assert packed_column.dtype == row_column.dtype
        assert packed_column.tobytes() == row_column.tobytes()  # NaN == NaN, -0.0 != 0.0: bit for bit


def build_market() -> list:
    """Three symbols with everything the fill query distinguishes, plus one without any data."""
    symbols = [make_symbol("BTCUSDC"), make_symbol("ETHUSDT"), make_symbol("SOLUSDC"), make_symbol("NODATAUSDC")]
    for seed, symbol in enumerate(symbols[:3]):
        make_candles(symbol, last_open=AS_OF.replace(minute=0) - HOUR, count=60 + seed, seed=seed)
        for i in range(12):
            moment = AS_OF - timedelta(days=9) + timedelta(hours=17 * i, microseconds=1_500 * i)
            order = make_order(symbol, submitted_at=moment, requested_qty="2", filled_qty=str(1 + i % 2),
                               arrival_price=f"{100 + i}.125", status=["filled", "canceled", "new"][i % 3])
            make_fill(symbol, executed_at=moment + timedelta(seconds=5), price=f"{100 + i}.5", qty="0.75",
                      side="sell" if i % 2 else "buy", order=order if i % 4 else None,
                      arrival_price="99.5" if i % 5 == 0 else None, is_maker=i % 3 == 0,
                      realized_pnl=None if i % 3 == 1 else f"{i - 6}.25", fee="0.01" if i % 2 else "0",
                      fee_asset=["", "USDC", "BNB", "USDT"][i % 4])
        # Two fills at the very same microsecond: the id decides their order.
        same_time = AS_OF - timedelta(hours=2, microseconds=500)
        make_fill(symbol, executed_at=same_time, price="101", qty="1", realized_pnl="3")
        make_fill(symbol, executed_at=same_time, price="102", qty="2", realized_pnl="-7")
    return symbols


def test_symbol_inputs_packed_equal_row_by_row(postgres, monkeypatch):
    symbols = build_market()
    packed = selectors.symbol_inputs_bulk(symbols=symbols, as_of=AS_OF)
    row_read(monkeypatch)
    rows = selectors.symbol_inputs_bulk(symbols=symbols, as_of=AS_OF)
    assert packed.keys() == rows.keys()
    for pk in packed:
        for name, value in vars(packed[pk]).items():
            if isinstance(value, np.ndarray):
                assert_same_columns([value], [getattr(rows[pk], name)])
            else:
                assert value == getattr(rows[pk], name)
    btc = packed[symbols[0].pk]
    assert btc.candle_open_ms.size == 60 and btc.fill_time_ms.size == 14 and btc.order_requested_qty.size > 0
    assert list(btc.fill_price[-2:]) == [101.0, 102.0]  # equal times, in id order
    assert packed[symbols[3].pk].close.size == 0


@pytest.mark.parametrize("moment", [
    "2024-02-29T23:00:00.000500+00:00",  # half a millisecond: rounds away from zero
    "2024-02-29T23:00:00.001499+00:00",
    "2024-02-29T23:00:00.001500+00:00",
    "1969-12-31T23:59:59.999500+00:00",  # before 1970: -0.5 ms rounds to -1
    "1969-12-31T23:59:59.998501+00:00",
    "1970-01-01T00:00:00+00:00",
    "1900-01-01T00:00:00.123456+00:00",
])
def test_epoch_ms_packed_equals_sql(postgres, moment):
    symbol = make_symbol("BTCUSDC")
    Candle.objects.create(symbol=symbol, interval="1h", open_time=datetime.fromisoformat(moment),
                          open=1, high=1, low=1, close=1, volume=1)
    queryset = (Candle.objects.annotate(t=EpochMs("open_time")).order_by("symbol_id", "open_time")
                .values_list("symbol_id", "t", "close"))
    packed = numeric_columns(queryset, ("i8", "i8", "f8"))
    assert_same_columns(packed, db._row_columns(queryset, ("i8", "i8", "f8")))


def test_a_null_column_falls_back_to_rows(postgres):
    symbol = make_symbol("BTCUSDC")
    make_fill(symbol, executed_at=AS_OF, realized_pnl="5")
    make_fill(symbol, executed_at=AS_OF + HOUR, realized_pnl=None)
    queryset = (Fill.objects.annotate(pnl=as_float("realized_pnl")).order_by("symbol_id", "executed_at")
                .values_list("symbol_id", "pnl"))
    assert db._packed_columns(queryset, ("i8", "f8")) is None  # STRING_AGG would drop the NULL row
    symbol_ids, pnl = numeric_columns(queryset, ("i8", "f8"))
    assert symbol_ids.tolist() == [symbol.pk, symbol.pk]
    assert pnl[0] == 5.0 and np.isnan(pnl[1])


def test_without_the_key_first_in_the_ordering_rows_are_read(postgres):
    symbol = make_symbol("BTCUSDC")
    make_order(symbol, submitted_at=AS_OF)
    queryset = Order.objects.annotate(r=as_float("requested_qty")).order_by("id").values_list("symbol_id", "r")
    assert db._packed_columns(queryset, ("i8", "f8")) is None
    assert [column.tolist() for column in numeric_columns(queryset, ("i8", "f8"))] == [[symbol.pk], [1.0]]


def test_arrival_is_read_for_the_execution_window_only():
    """Slippage benchmarks the last 7 days' fills: older fills skip the order look-up (NaN)."""
    symbol = make_symbol("BTCUSDC")
    window_start = AS_OF - timedelta(days=7)
    # A day before the window; 0.4 ms before it, which scoring counts in (its time rounds to the
    # window's first millisecond); and inside it.
    for moment in (window_start - timedelta(days=1), window_start - timedelta(microseconds=400), window_start):
        order = make_order(symbol, submitted_at=moment, arrival_price="123.5")
        make_fill(symbol, executed_at=moment, order=order)
    inputs = selectors.symbol_inputs_bulk(symbols=[symbol], as_of=AS_OF)[symbol.pk]
    assert np.isnan(inputs.fill_arrival[0])
    assert inputs.fill_arrival[1:].tolist() == [123.5, 123.5]
    recent = inputs.fill_time_ms >= inputs.as_of_ms - 7 * 86_400_000
    assert recent.tolist() == [False, True, True]
