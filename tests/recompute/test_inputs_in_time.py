"""Snapshots use only what was true at their as_of, say when their inputs are stale, and never come from the future.

- A candle feed that stopped: stale_input, a neutral next size flagged stale_input, and the API says so.
- A fill executed after as_of, or an order still open then, never changes the snapshot at as_of.
- A backfill reads each order's filled quantity as the sum of its fills before as_of.
- An as_of beyond now plus the clock skew is refused; a future-dated row never shadows fresh ones.
- Two snapshots dt hours apart differ by at most (1 + step)^dt.
"""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sizing_app.models import Order, RecomputeRun, SizingDecision, SizingSnapshot
from sizing_app.recompute import service
from sizing_app.recompute.service import AsOfInFuture, bucket_for, recompute_run
from sizing_app.signal_generator import size_for
from sizing_app.sizing.hot_state import hot_state
from tests.factories import HOUR, make_candles, make_fill, make_good_execution, make_order, make_snapshot, make_symbol
from tests.fixtures.api import client_for, make_api_user

pytestmark = pytest.mark.django_db


def stopped_feed_symbol(name: str, *, as_of, stopped_hours: float):
    """A symbol with 400 hourly candles ending `stopped_hours` before as_of, and a position held since."""
    symbol = make_symbol(name)
    last_open = as_of.replace(minute=0, second=0, microsecond=0) - timedelta(hours=stopped_hours) - HOUR
    make_candles(symbol, last_open=last_open, count=400, seed=3)
    make_fill(symbol, executed_at=as_of - timedelta(days=3), qty="2", price="100", fee="0.2", fee_asset="USDT")
    return symbol


def test_candles_stopping_48h_before_as_of_give_a_stale_input_snapshot_and_a_neutral_flagged_size():
    as_of = bucket_for(timezone.now())
    stopped_feed_symbol("FEEDUSDT", as_of=as_of, stopped_hours=48)
    fresh = stopped_feed_symbol("LIVEUSDT", as_of=as_of, stopped_hours=0)
    recompute_run(as_of=as_of)
    stale = SizingSnapshot.objects.get(symbol__name="FEEDUSDT", as_of=as_of)
    assert stale.status == SizingSnapshot.Status.STALE_INPUT
    assert stale.last_candle_at == as_of.replace(minute=0, second=0, microsecond=0) - timedelta(hours=48)
    assert (stale.inverse_vol_multiplier, stale.regime_multiplier, stale.sharpe_multiplier) == (1.0, 1.0, 1.0)
    assert stale.position_qty == 2.0 and stale.fees_quote == pytest.approx(0.2)  # still diagnosed
    assert SizingSnapshot.objects.get(symbol=fresh, as_of=as_of).status != SizingSnapshot.Status.STALE_INPUT

    final = size_for("FEEDUSDT", 1000.0, order_ref="feed-1")
    decision = SizingDecision.objects.get(order_ref="feed-1")
    assert final == 1000.0
    assert (decision.stale, decision.fallback_reason, decision.applied_factor) == (True, "stale_input", 1.0)
    assert (decision.inverse_vol_size, decision.regime_multiplier, decision.sharpe_multiplier) == (1000.0, 1.0, 1.0)

    _, token = make_api_user("engine")
    client = client_for(token)
    latest = client.get("/api/v1/factors/latest/FEEDUSDT/").json()
    assert (latest["status"], latest["stale"], latest["fallback_reason"]) == ("stale_input", True, "stale_input")
    assert latest["total_multiplier"] == 1.0
    _, risk_token = make_api_user("risk")
    health = client_for(risk_token).get("/api/v1/execution-health/FEEDUSDT/").json()
    assert (health["status"], health["stale"], health["sizing"]["fallback_reason"]) == (
        "stale_input", True, "stale_input")
    assert health["inputs"]["last_candle_at"].startswith(stale.last_candle_at.strftime("%Y-%m-%dT%H:%M"))
    assert health["position"]["qty"] == 2.0 and health["position"]["quote_asset"] == "USDT"


def _computed(symbol, as_of) -> dict:
    """The snapshot a recompute of `symbol` at as_of would write now, as stored values."""
    (snapshot,), errors = service._evaluate_chunk([symbol], as_of, None)
    assert errors == {}
    return {field.attname: getattr(snapshot, field.attname) for field in SizingSnapshot._meta.concrete_fields
            if field.attname not in {"id", "computed_at", "computed_live"}}


def test_a_fill_after_as_of_and_an_order_still_open_then_change_nothing_at_as_of():
    as_of = bucket_for(timezone.now()) - timedelta(hours=6)
    symbol = make_symbol("PITUSDC")
    make_candles(symbol, last_open=as_of.replace(minute=0, second=0, microsecond=0) - HOUR, count=400)
    make_good_execution(symbol, as_of=as_of)
    before = _computed(symbol, as_of)
    assert before["status"] == "ok" and before["slippage_bps"] is not None

    # Later events: fills at and after as_of, an order submitted before it but filled and closed after it,
    # and candles that closed after it.
    late = make_order(symbol, submitted_at=as_of - timedelta(minutes=30), requested_qty="5", arrival_price="100",
                      closed_at=as_of + timedelta(minutes=30))
    make_fill(symbol, executed_at=as_of + timedelta(minutes=20), qty="5", price="150", order=late, arrival_price="100")
    make_fill(symbol, executed_at=as_of, qty="50", price="1", side="sell")
    make_candles(symbol, last_open=as_of.replace(minute=0, second=0, microsecond=0) + 3 * HOUR, count=3, seed=99,
                 start_price=500.0)
    assert _computed(symbol, as_of) == before

    recompute_run(as_of=as_of)
    assert SizingSnapshot.objects.get(symbol=symbol, as_of=as_of).computed_live is False  # 6 h later: a backfill


def test_a_backfill_takes_each_orders_filled_quantity_from_its_fills_before_as_of():
    as_of = bucket_for(timezone.now()) - timedelta(days=1)
    symbol = make_symbol("ORDUSDC")
    make_candles(symbol, last_open=as_of.replace(minute=0, second=0, microsecond=0) - HOUR, count=200)
    # Terminal before as_of, filled 1 of 4 by then; its last 3 filled after as_of (a late report).
    order = make_order(symbol, submitted_at=as_of - timedelta(hours=2), requested_qty="4", filled_qty="4",
                       closed_at=as_of - timedelta(hours=1))
    make_fill(symbol, executed_at=as_of - timedelta(hours=2), qty="1", order=order)
    make_fill(symbol, executed_at=as_of + timedelta(hours=1), qty="3", order=order)
    # An order imported without fills: its recorded quantity counts.
    make_order(symbol, submitted_at=as_of - timedelta(hours=3), requested_qty="2", filled_qty="1",
               status=Order.Status.CANCELED, closed_at=as_of - timedelta(hours=3))
    recompute_run(as_of=as_of)
    snapshot = SizingSnapshot.objects.get(symbol=symbol, as_of=as_of)
    assert snapshot.order_count == 2
    assert snapshot.fill_rate == pytest.approx((1 + 1) / (4 + 2), rel=1e-12)


def test_an_as_of_in_the_future_is_refused_everywhere_and_writes_nothing():
    make_symbol("BTCUSDC")
    with pytest.raises(AsOfInFuture, match="in the future"):
        recompute_run(as_of=timezone.now() + timedelta(days=365 * 36))
    with pytest.raises(CommandError, match="in the future"):
        call_command("recompute_factors", "--as-of", "2062-12-04T00:00:00Z", stdout=io.StringIO())
    assert not RecomputeRun.objects.exists() and not SizingSnapshot.objects.exists()
    recompute_run(as_of=timezone.now() + timedelta(seconds=30))  # within the allowed skew (60 s)


def test_a_future_dated_snapshot_never_shadows_a_fresh_one():
    symbol = make_symbol("BTCUSDC")
    make_candles(symbol, last_open=bucket_for(timezone.now()).replace(minute=0) - HOUR, count=300)
    make_snapshot(symbol, as_of=timezone.now() + timedelta(days=365 * 36), size_factor=2.0)  # written by hand
    hot_state.invalidate()
    assert size_for("BTCUSDC", 100.0, order_ref="before") == pytest.approx(100.0)  # no servable snapshot yet
    run = recompute_run()
    served = hot_state.latest("BTCUSDC")
    assert SizingSnapshot.objects.get(pk=served.snapshot_id).run_id == run.pk
    hot_state.reset()
    assert SizingSnapshot.objects.get(pk=hot_state.latest("BTCUSDC").snapshot_id).run_id == run.pk


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(gaps=st.lists(st.sampled_from([5, 10, 30, 60, 180]), min_size=2, max_size=5),
       start=st.floats(0.25, 2.0))
def test_consecutive_snapshots_dt_hours_apart_differ_by_at_most_the_step_to_the_power_dt(gaps, start):
    as_of = bucket_for(timezone.now()) - timedelta(days=2)
    name = f"STEP{abs(hash((tuple(gaps), start))) % 10**8:08d}USDC"
    symbol = make_symbol(name)
    make_candles(symbol, last_open=as_of.replace(minute=0) + timedelta(hours=10), count=500, seed=9)
    make_good_execution(symbol, as_of=as_of)
    make_snapshot(symbol, as_of=as_of, size_factor=start)
    moment, previous = as_of, start
    for minutes in gaps:
        moment += timedelta(minutes=minutes)
        recompute_run(symbol_names=[name], as_of=moment)
        factor = SizingSnapshot.objects.get(symbol=symbol, as_of=moment).size_factor
        reach = 1.1 ** (minutes / 60)
        assert previous / reach * (1 - 1e-12) <= factor <= previous * reach * (1 + 1e-12)
        previous = factor
