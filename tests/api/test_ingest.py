"""Bulk POST fills/, orders/, candles/: validated rows, all or nothing, idempotent re-posts, no overwrite."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from sizing_app.models import Candle, Fill, Order
from sizing_app.roles import ENGINE

_FOUR_HOURS = 4 * 3600
# On the 4h grid (so on the 1h grid too): candles open on whole multiples of their interval.
T0 = datetime.fromtimestamp((timezone.now().timestamp() - 86_400) // _FOUR_HOURS * _FOUR_HOURS, tz=UTC)


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def fill(trade_id="t1", **fields):
    return {"symbol": "BTCUSDC", "trade_id": trade_id, "side": "buy", "qty": "0.123456789012",
            "price": "64000.5", "executed_at": iso(T0), **fields}


def order(client_order_id="c1", **fields):
    return {"symbol": "BTCUSDC", "client_order_id": client_order_id, "side": "sell", "requested_qty": "2",
            "arrival_price": "100", "submitted_at": iso(T0), **fields}


def candle(hour=0, **fields):
    return {"symbol": "BTCUSDC", "interval": "1h", "open_time": iso(T0 - timedelta(hours=hour)), "open": 100.0,
            "high": 102.0, "low": 99.0, "close": 101.0, "volume": 5.0, **fields}


@pytest.fixture
def engine(clients, market):
    return clients[ENGINE]


def post(client, path, rows):
    return client.post(path, rows, format="json")


def row_errors(response) -> list[tuple[int, str | None]]:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_rows"
    return [(item["row"], item["field"]) for item in error["details"]["errors"]]


# Fills --------------------------------------------------------------------------------------------
def test_fills_are_recorded_exactly(engine):
    rows = [fill("t1", fee="-0.000001", fee_asset="USDC", is_maker=True, realized_pnl="12.5"),
            fill("t2", side="sell", arrival_price="63990")]
    response = post(engine, "/api/v1/fills/", rows)
    assert response.status_code == 200
    assert response.json() == {"received": 2, "created": 2, "updated": 0, "unchanged": 0}
    stored = Fill.objects.get(trade_id="t1")
    assert stored.qty == Decimal("0.123456789012") and stored.price == Decimal("64000.5")
    assert stored.fee == Decimal("-0.000001") and stored.is_maker and stored.realized_pnl == Decimal("12.5")
    assert stored.executed_at == T0


def test_json_number_money_keeps_its_digits(engine):
    body = ('[{"symbol": "BTCUSDC", "trade_id": "n1", "side": "buy", "qty": 0.100000000001, '
            f'"price": 64000.123456789012, "executed_at": "{iso(T0)}"}}]')
    assert engine.post("/api/v1/fills/", body, content_type="application/json").status_code == 200
    stored = Fill.objects.get(trade_id="n1")
    assert stored.qty == Decimal("0.100000000001")


def test_reposting_fills_changes_nothing(engine):
    rows = [fill("t1"), fill("t2")]
    post(engine, "/api/v1/fills/", rows)
    before = list(Fill.objects.order_by("pk").values())
    response = post(engine, "/api/v1/fills/", rows + [fill("t3")])
    assert response.json() == {"received": 3, "created": 1, "updated": 0, "unchanged": 2}
    assert list(Fill.objects.order_by("pk").values())[:2] == before


def test_a_fill_posted_again_with_other_values_is_a_conflict(engine):
    post(engine, "/api/v1/fills/", [fill("t1")])
    response = post(engine, "/api/v1/fills/", [fill("t9"), fill("t1", price="64001")])
    assert row_errors(response) == [(1, "price")]
    assert "64000.5" in response.json()["error"]["details"]["errors"][0]["message"]
    assert Fill.objects.count() == 1 and Fill.objects.get().price == Decimal("64000.5")


def test_duplicate_trade_ids_in_one_batch(engine):
    response = post(engine, "/api/v1/fills/", [fill("t1"), fill("t1")])
    assert response.json()["created"] == 1 and response.json()["unchanged"] == 1
    response = post(engine, "/api/v1/fills/", [fill("t5"), fill("t5", qty="1")])
    assert row_errors(response) == [(1, "qty")]


def test_one_bad_row_rejects_the_batch_and_names_every_bad_row(engine):
    rows = [fill("t1"), fill("t2", qty="-1"), fill("t3", symbol="NOPEUSDC"), fill("t4", price="1.0000000000001"),
            fill("t5", executed_at="2001-01-01T00:00:00Z"), fill("t6", side="long"), {"trade_id": "t7"}, 42]
    response = post(engine, "/api/v1/fills/", rows)
    found = row_errors(response)
    assert (1, "qty") in found and (3, "price") in found and (4, "executed_at") in found and (5, "side") in found
    assert (6, "symbol") in found and (6, "qty") in found and (7, None) in found
    assert not Fill.objects.exists()
    response = post(engine, "/api/v1/fills/", [fill("t1"), fill("t3", symbol="NOPEUSDC")])
    assert row_errors(response) == [(1, "symbol")]
    assert not Fill.objects.exists()


def test_fills_link_to_posted_orders(engine):
    post(engine, "/api/v1/orders/", [order("c1")])
    assert post(engine, "/api/v1/fills/", [fill("t1", client_order_id="c1")]).status_code == 200
    assert Fill.objects.get().order == Order.objects.get()
    assert row_errors(post(engine, "/api/v1/fills/", [fill("t2", client_order_id="c-missing")])) == \
        [(0, "client_order_id")]


def test_null_and_scalar_rows_are_row_errors(engine):
    assert row_errors(post(engine, "/api/v1/fills/", [None, fill("t1"), 3, "x"])) == [(0, None), (2, None), (3, None)]


@pytest.mark.parametrize("value, ok", [("12.5", True), (12.5, True), (12, True), ("1e5", False), (" 1", False),
                                       ("0x10", False), (True, False), ("1.0000000000001", False), ("", False)])
def test_money_accepts_plain_decimal_strings_and_numbers(engine, value, ok):
    response = post(engine, "/api/v1/fills/", [fill("t1", price=value)])
    assert (response.status_code == 200) is ok, response.content


@pytest.mark.parametrize("body", ["{}", '{"rows": []}', "[]", '"text"', "null", "[1, 2"])
def test_bulk_body_must_be_a_non_empty_array(engine, body):
    response = engine.post("/api/v1/fills/", body, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_bulk_row_limit(engine):
    response = post(engine, "/api/v1/candles/", [candle(hour) for hour in range(5001)])
    assert response.status_code == 400 and "5000" in response.json()["error"]["message"]
    assert not Candle.objects.exists()


# Orders -------------------------------------------------------------------------------------------
def test_orders_move_forward(engine):
    assert post(engine, "/api/v1/orders/", [order("c1")]).json()["created"] == 1
    moved = order("c1", status="partially_filled", filled_qty="0.5", exchange_order_id="x-1")
    assert post(engine, "/api/v1/orders/", [moved]).json() == {"received": 1, "created": 0, "updated": 1,
                                                                 "unchanged": 0}
    done = {**moved, "status": "filled", "filled_qty": "2", "closed_at": iso(T0 + timedelta(minutes=3))}
    assert post(engine, "/api/v1/orders/", [done]).json()["updated"] == 1
    assert post(engine, "/api/v1/orders/", [done]).json()["unchanged"] == 1
    stored = Order.objects.get()
    assert (stored.status, stored.filled_qty, stored.exchange_order_id) == ("filled", Decimal(2), "x-1")


def test_orders_in_one_batch_fold_in_order(engine):
    rows = [order("c1"), order("c1", status="partially_filled", filled_qty="1"), order("c1", status="canceled",
                                                                                       filled_qty="1")]
    assert post(engine, "/api/v1/orders/", rows).json()["created"] == 1
    assert Order.objects.get().status == "canceled"


@pytest.mark.parametrize("change, field", [
    ({"status": "new", "filled_qty": "0.5"}, "status"),  # back from partially_filled
    ({"filled_qty": "0.2"}, "filled_qty"),  # shrinking
    ({"side": "buy"}, "side"),
    ({"requested_qty": "3"}, "requested_qty"),
    ({"submitted_at": iso(T0 - timedelta(seconds=1))}, "submitted_at"),
    ({"exchange_order_id": "other"}, "exchange_order_id"),
])
def test_order_changes_that_are_not_progress_are_conflicts(engine, change, field):
    post(engine, "/api/v1/orders/", [order("c1", status="partially_filled", filled_qty="0.5",
                                           exchange_order_id="x-1")])
    before = Order.objects.values().get()
    response = post(engine, "/api/v1/orders/", [order("c2"), order("c1", **{
        "status": "partially_filled", "filled_qty": "0.5", "exchange_order_id": "x-1", **change})])
    assert row_errors(response) == [(1, field)]
    assert Order.objects.values().get() == before


def test_final_orders_stay_final(engine):
    post(engine, "/api/v1/orders/", [order("c1", status="canceled")])
    assert row_errors(post(engine, "/api/v1/orders/", [order("c1", status="filled", filled_qty="2")])) == \
        [(0, "status")]


@pytest.mark.parametrize("fields, field", [
    ({"filled_qty": "3"}, "filled_qty"),
    ({"closed_at": iso(T0 - timedelta(hours=1))}, "closed_at"),
    ({"status": "done"}, "status"),
    ({"maker_fallback": "yes"}, "maker_fallback"),
    ({"requested_qty": "0"}, "requested_qty"),
    ({"submitted_at": iso(timezone.now() + timedelta(days=3))}, "submitted_at"),
])
def test_order_row_validation(engine, fields, field):
    assert row_errors(post(engine, "/api/v1/orders/", [order("c1", **fields)])) == [(0, field)]


# Candles ------------------------------------------------------------------------------------------
def test_candles_are_idempotent_and_never_overwritten(engine):
    rows = [candle(0), candle(1), candle(2)]
    assert post(engine, "/api/v1/candles/", rows).json()["created"] == 3
    assert post(engine, "/api/v1/candles/", rows).json() == {"received": 3, "created": 0, "updated": 0,
                                                              "unchanged": 3}
    assert row_errors(post(engine, "/api/v1/candles/", [candle(3), candle(1, close=100.0)])) == [(1, "close")]
    assert Candle.objects.count() == 3
    assert Candle.objects.get(open_time=T0 - timedelta(hours=1)).close == 101.0


@pytest.mark.parametrize("fields, field", [
    ({"interval": "7x"}, "interval"),
    ({"interval": "0h"}, "interval"),
    ({"high": 98.0}, "high"),
    ({"low": 101.5}, "low"),
    ({"open": -1.0}, "open"),
    ({"volume": "NaN"}, "volume"),
    ({"close": "101"}, "close"),
    ({"open_time": "2020-02-30T00:00:00Z"}, "open_time"),
    ({"open_time": "9999-12-31T23:59:59-23:00"}, "open_time"),
])
def test_candle_row_validation(engine, fields, field):
    assert row_errors(post(engine, "/api/v1/candles/", [candle(0, **fields)])) == [(0, field)]


def test_candle_keys_include_the_interval(engine):
    rows = [candle(0), candle(0, interval="4h")]
    assert post(engine, "/api/v1/candles/", rows).json()["created"] == 2


def test_row_errors_are_json_with_row_field_and_message(engine):
    response = post(engine, "/api/v1/candles/", [candle(0), candle(1, high="x")])
    body = json.loads(response.content)
    assert body["error"]["details"]["errors"] == [
        {"row": 1, "field": "high", "message": "Must be a JSON number, not str."}]
    assert body["error"]["message"] == "1 row(s) rejected; nothing was saved."
