"""The client against a real server (gunicorn on the test database): what the engine is handed is the ledger.

Each test starts its own server on the rows its fixtures committed (tests/client/conftest.py) and
checks the ledger directly, in the database, not through the API.
"""
from __future__ import annotations

import dataclasses

import pytest
from sizing_client import (
    AuthenticationFailed,
    Decision,
    InvalidRequest,
    Order,
    OrderRefConflict,
    SizingClient,
    UnknownSymbol,
)

from sizing_app.models import SizingDecision
from tests.faults.hostile import fingerprint

from .conftest import LIVE_TIMEOUT, SOL

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

GROSS = 1000.0


def as_recorded(decision: Decision) -> dict:
    """The decision's ledger fields (everything but `replayed`, which is about the call, not the row)."""
    return {key: value for key, value in dataclasses.asdict(decision).items() if key != "replayed"}


def test_a_size_is_recorded_once_and_the_same_order_ref_returns_it_again(sizing):
    first = sizing.size("SOLUSDC", GROSS, order_ref="live-1")
    again = sizing.size("SOLUSDC", GROSS, order_ref="live-1")
    assert (first.replayed, again.replayed) == (False, True)
    assert as_recorded(again) == as_recorded(first)
    (row,) = SizingDecision.objects.all()
    assert (row.pk, row.seq, row.final_size, row.row_hash, row.order_ref, row.caller) == (
        first.id, first.seq, first.final_size, first.row_hash, "live-1", "engine")
    expected = GROSS * SOL["inverse_vol_multiplier"] * SOL["regime_multiplier"] * SOL["sharpe_multiplier"] * SOL[
        "size_factor"]
    assert first.final_size == pytest.approx(expected, rel=1e-12)
    assert first.snapshot_id is not None and first.mode == "live" and first.stale is False


def test_orders_without_an_order_ref_are_each_a_new_decision(sizing):
    assert sizing.size("SOLUSDC", GROSS).id != sizing.size("SOLUSDC", GROSS).id
    assert SizingDecision.objects.count() == 2


def test_a_conflicting_order_ref_raises_and_writes_nothing(sizing):
    sizing.size("SOLUSDC", GROSS, order_ref="live-2")
    before = fingerprint()
    for symbol, gross in (("SOLUSDC", 999.0), ("BTCUSDC", GROSS)):
        with pytest.raises(OrderRefConflict, match="live-2") as raised:
            sizing.size(symbol, gross, order_ref="live-2")
        assert (raised.value.status, raised.value.code, raised.value.order_ref) == (409, "order_ref_conflict", "live-2")
    assert fingerprint() == before


def test_unknown_and_inactive_symbols_raise_unknown_symbol_and_write_nothing(sizing):
    before = fingerprint()
    for symbol in ("ZZZUSDT", "OLDUSDC"):
        with pytest.raises(UnknownSymbol, match=symbol) as raised:
            sizing.size(symbol, 10.0, order_ref=f"unknown-{symbol}")
        assert raised.value.symbol == symbol and raised.value.status == 400
        with pytest.raises(UnknownSymbol) as raised:
            sizing.size_batch([("SOLUSDC", 1.0, "batch-1"), (symbol, 1.0, "batch-2")])
        assert raised.value.symbol == symbol
    # Not an unknown symbol: a malformed one, a bad gross target, each named in details.
    with pytest.raises(InvalidRequest) as raised:
        sizing.size("btc-usdc", 1.0)
    assert not isinstance(raised.value, UnknownSymbol) and "symbol" in raised.value.details
    with pytest.raises(InvalidRequest, match="gross_target") as raised:
        sizing.size("SOLUSDC", -1.0)
    assert not isinstance(raised.value, UnknownSymbol)
    assert fingerprint() == before


def test_neutral_if_unknown_sizes_an_unknown_symbol_at_one(sizing):
    decision = sizing.size("ZZZUSDT", 10.0, order_ref="neutral-1", neutral_if_unknown=True)
    assert (decision.final_size, decision.applied_factor, decision.fallback_reason) == (10.0, 1.0, "unknown_symbol")
    assert SizingDecision.objects.get(pk=decision.id).symbol == "ZZZUSDT"


def test_size_batch_records_new_orders_replays_known_ones_and_is_all_or_nothing(sizing):
    first = sizing.size("SOLUSDC", GROSS, order_ref="batch-a")
    orders = [Order("SOLUSDC", GROSS, "batch-a"), Order("BTCUSDC", 50.0, "batch-b"), ("SOLUSDC", 5.0, "batch-c")]
    decisions = sizing.size_batch(orders)
    assert [(d.symbol, d.order_ref, d.replayed) for d in decisions] == [
        ("SOLUSDC", "batch-a", True), ("BTCUSDC", "batch-b", False), ("SOLUSDC", "batch-c", False)]
    assert as_recorded(decisions[0]) == as_recorded(first)
    recorded = {row.order_ref: row for row in SizingDecision.objects.all()}
    assert {ref: row.pk for ref, row in recorded.items()} == {d.order_ref: d.id for d in decisions}
    assert all(recorded[d.order_ref].final_size == d.final_size for d in decisions)
    assert all(d.replayed for d in sizing.size_batch(orders))  # every order known: the service answers 200
    before = fingerprint()
    with pytest.raises(OrderRefConflict):
        sizing.size_batch([("SOLUSDC", 1.0, "batch-new"), ("BTCUSDC", 51.0, "batch-b")])
    assert fingerprint() == before  # batch-new was not written either


def test_a_bad_token_and_a_role_that_may_not_size_are_authentication_failures(server, tokens):
    for token, status in (("0" * 40, 401), (tokens["dashboard"], 403)):
        with SizingClient(server.url, token, timeout=LIVE_TIMEOUT) as client:
            with pytest.raises(AuthenticationFailed) as raised:
                client.size("SOLUSDC", GROSS, order_ref="auth-1")
            assert raised.value.status == status
    assert not SizingDecision.objects.exists()
