"""Tests for the demo data set (sizing_app.demo and `manage.py seed_demo`).

Small windows and symbol subsets keep them fast; the factor promises are checked through the real recompute.
"""
import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.utils import timezone

from sizing_app.demo.market import DEMO_SYMBOL_NAMES, DEMO_SYMBOLS, demo_symbols_resolve
from sizing_app.demo.seed import DemoConflictError, demo_history_buckets, demo_reset, demo_seed
from sizing_app.models import Candle, Fill, Order, RecomputeRun, SizingSnapshot, Symbol
from sizing_app.recompute.service import bucket_for
from sizing_app.selectors import inputs as selectors
from sizing_app.sizing.steps import persisted_factor as symbol_size_factor

END = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GOOD, POOR, BURST = "BTCUSDC", "DOGEUSDT", "SOLUSDC"


def _seed(**overrides):
    arguments = {"end": END, "days": 9, "seed": 7, "symbols": [GOOD, POOR], "history_hours": 2}
    return demo_seed(**{**arguments, **overrides})


def _fingerprint(names) -> str:
    """A hash of every demo row's content (no database ids), in a stable order."""
    digest = hashlib.sha256()

    def text(value):
        return str(value.normalize()) if isinstance(value, Decimal) else repr(value)

    for candle in Candle.objects.filter(symbol__name__in=names).order_by("symbol__name", "open_time"):
        digest.update("|".join(map(text, (
            candle.symbol.name, candle.open_time.isoformat(), candle.open, candle.high, candle.low,
            candle.close, candle.volume,
        ))).encode())
    for order in Order.objects.filter(symbol__name__in=names).order_by("symbol__name", "client_order_id"):
        digest.update("|".join(map(text, (
            order.symbol.name, order.client_order_id, order.side, order.liquidity, order.maker_fallback,
            order.requested_qty, order.filled_qty, order.arrival_price, order.limit_price, order.status,
            order.submitted_at.isoformat(), order.closed_at.isoformat(),
        ))).encode())
    fills = Fill.objects.filter(symbol__name__in=names).select_related("order", "symbol")
    for fill in fills.order_by("symbol__name", "trade_id"):
        digest.update("|".join(map(text, (
            fill.symbol.name, fill.trade_id, fill.order.client_order_id, fill.side, fill.qty, fill.price,
            fill.fee, fill.fee_asset, fill.is_maker, fill.realized_pnl, fill.executed_at.isoformat(),
        ))).encode())
    return digest.hexdigest()


def _row_counts(names) -> tuple[int, ...]:
    return (
        Candle.objects.filter(symbol__name__in=names).count(),
        Order.objects.filter(symbol__name__in=names).count(),
        Fill.objects.filter(symbol__name__in=names).count(),
        SizingSnapshot.objects.filter(symbol__name__in=names).count(),
        RecomputeRun.objects.count(),
    )


def test_catalog_has_twenty_realistic_usdc_and_usdt_symbols():
    names = [spec.name for spec in DEMO_SYMBOLS]
    assert len(names) == len(set(names)) == 20
    assert {"BTCUSDC", "ETHUSDC"} <= set(names)
    assert {spec.quote for spec in DEMO_SYMBOLS} == {"USDC", "USDT"}
    prices = {spec.name: spec.price for spec in DEMO_SYMBOLS}
    assert 20_000 < prices["BTCUSDC"] < 500_000 and 500 < prices["ETHUSDC"] < 20_000
    assert {spec.profile for spec in DEMO_SYMBOLS} == {"good", "mixed", "poor"}
    assert {spec.ending for spec in DEMO_SYMBOLS} == {"burst", "calm"}


def test_symbol_resolution_accepts_new_names_and_rejects_bad_ones():
    assert [spec.name for spec in demo_symbols_resolve(None)] == list(DEMO_SYMBOL_NAMES)
    specs = demo_symbols_resolve(["ethusdc", "ETHUSDC", "FOOUSDT"])
    assert [spec.name for spec in specs] == ["ETHUSDC", "FOOUSDT"]
    assert specs[1].quote == "USDT" and specs[1].price > 0
    with pytest.raises(ValueError, match="quoted in"):
        demo_symbols_resolve(["FOOBTC"])
    with pytest.raises(ValueError):
        demo_symbols_resolve(["not-a-symbol"])


def test_candles_are_hourly_and_consistent():
    summary = _seed()
    assert summary.end == END and summary.start == END - timedelta(days=9)
    for name in (GOOD, POOR):
        candles = list(Candle.objects.filter(symbol__name=name).order_by("open_time"))
        assert len(candles) == 9 * 24
        assert candles[0].open_time == END - timedelta(days=9)
        assert candles[-1].open_time == END - timedelta(hours=1)  # the last full hour before end
        for previous, candle in zip(candles, candles[1:]):
            assert candle.open_time - previous.open_time == timedelta(hours=1)
            assert candle.open == previous.close
        for candle in candles:
            assert candle.interval == "1h"
            assert candle.open_time.minute == candle.open_time.second == candle.open_time.microsecond == 0
            assert candle.high >= max(candle.open, candle.close)
            assert candle.low <= min(candle.open, candle.close)
            assert candle.low > 0 and candle.volume > 0
    btc_closes = Candle.objects.filter(symbol__name=GOOD).values_list("close", flat=True)
    assert 50_000 < min(btc_closes) and max(btc_closes) < 200_000


def test_orders_and_fills_are_consistent():
    _seed()
    orders = Order.objects.filter(symbol__name__in=[GOOD, POOR]).annotate(fill_qty=Sum("fills__qty"))
    statuses = set()
    for order in orders:
        statuses.add(order.status)
        assert order.filled_qty == (order.fill_qty or 0)
        assert order.submitted_at < order.closed_at < END
        assert order.arrival_price > 0
        if order.status == Order.Status.FILLED:
            assert order.filled_qty == order.requested_qty
        else:
            assert order.status in (Order.Status.CANCELED, Order.Status.REJECTED)
            assert order.filled_qty < order.requested_qty
            if order.status == Order.Status.REJECTED:
                assert order.filled_qty == 0
    assert {Order.Status.FILLED, Order.Status.CANCELED, Order.Status.REJECTED} <= statuses
    assert Order.objects.filter(status=Order.Status.CANCELED, filled_qty__gt=0).exists()  # partial, then canceled

    fills = Fill.objects.filter(symbol__name__in=[GOOD, POOR]).select_related("order", "symbol")
    assert fills.count() == len({(fill.symbol_id, fill.trade_id) for fill in fills})
    for fill in fills:
        assert fill.order is not None and fill.side == fill.order.side
        assert fill.order.submitted_at <= fill.executed_at <= fill.order.closed_at
        assert fill.qty > 0 and fill.price > 0 and fill.fee > 0
        assert fill.fee_asset == fill.symbol.name[-4:]
        assert fill.is_maker == (fill.order.liquidity == Order.Liquidity.MAKER)
        if fill.is_maker:
            # A passive fill trades at its limit, on the good side of arrival.
            assert fill.price == fill.order.limit_price
            sign = 1 if fill.side == "buy" else -1
            assert sign * (fill.price - fill.order.arrival_price) <= 0
        # Like a spot venue's, the demo's fills carry no PnL of their own: the scoring's accounting computes it.
        assert fill.realized_pnl is None
    # The poor symbol pays for its fallbacks: rests of passive orders re-sent as taker.
    assert Order.objects.filter(symbol__name=POOR, maker_fallback=True, liquidity=Order.Liquidity.TAKER).exists()


def test_same_seed_and_end_give_identical_rows():
    _seed()
    first = _fingerprint([GOOD, POOR])
    demo_reset(symbols=[GOOD, POOR])
    assert Candle.objects.count() == Order.objects.count() == Fill.objects.count() == 0
    _seed()
    assert _fingerprint([GOOD, POOR]) == first

    demo_reset(symbols=[GOOD, POOR])
    _seed(seed=8)
    assert _fingerprint([GOOD, POOR]) != first


def test_a_symbols_rows_do_not_depend_on_the_other_symbols_seeded():
    _seed(symbols=[GOOD], history_hours=0)
    alone = _fingerprint([GOOD])
    demo_reset(symbols=[GOOD])
    _seed(symbols=[POOR, GOOD], history_hours=0)
    assert _fingerprint([GOOD]) == alone


def test_running_twice_duplicates_nothing():
    first = _seed()
    counts = _row_counts([GOOD, POOR])
    assert counts[:3] == (first.candles, first.orders, first.fills)
    assert first.created_candles == first.candles and first.snapshots_created == 2 * 2 and first.runs == 2
    second = _seed()
    assert _row_counts([GOOD, POOR]) == counts
    assert (second.created_candles, second.created_orders, second.created_fills) == (0, 0, 0)
    assert (second.snapshots_created, second.runs) == (0, 0)
    assert (second.candles, second.orders, second.fills) == (first.candles, first.orders, first.fills)


def test_different_data_in_the_window_is_refused_until_reset():
    _seed()
    with pytest.raises(DemoConflictError, match="--reset"):
        _seed(seed=8)
    with pytest.raises(DemoConflictError):
        _seed(end=END + timedelta(hours=1))
    demo_reset(symbols=[GOOD, POOR])
    summary = _seed(seed=8)
    assert summary.created_orders == summary.orders > 0


def test_whole_catalog_sizes_good_symbols_up_and_poor_ones_down():
    """The "clearly good / clearly poor" promise, measured by the real recompute and scoring."""
    summary = demo_seed(end=END, days=10, seed=7, symbols=None, history_hours=4)
    assert summary.symbols == list(DEMO_SYMBOL_NAMES)
    assert Symbol.objects.filter(name__in=["BTCUSDC", "ETHUSDC"]).count() == 2
    assert summary.runs == 4 and summary.latest_as_of == END and summary.stale  # END is long past
    latest = {name: selectors.snapshot_latest(symbol=name) for name in DEMO_SYMBOL_NAMES}
    assert all(snapshot is not None and snapshot.as_of == END for snapshot in latest.values())
    assert summary.latest_factors == {name: snapshot.size_factor for name, snapshot in latest.items()}

    factors = summary.latest_factors
    assert max(factors.values()) > 1.05 and min(factors.values()) < 0.95
    assert summary.sized_up and summary.sized_down
    assert max(snapshot.atr_regime_ratio for snapshot in latest.values()) > 1.3
    profiles = {spec.name: spec.profile for spec in DEMO_SYMBOLS}
    for name, snapshot in latest.items():
        if profiles[name] == "good":
            assert snapshot.size_factor > 1.05, name
            assert snapshot.fill_rate > 0.9 and snapshot.maker_ratio > 0.5 and snapshot.slippage_bps < 2, name
        elif profiles[name] == "poor":
            assert snapshot.size_factor < 0.95, name
            assert snapshot.fill_rate < 0.8 and snapshot.maker_ratio < 0.3 and snapshot.slippage_bps > 12, name
    burst = [spec.name for spec in DEMO_SYMBOLS if spec.ending == "burst"]
    assert all(latest[name].atr_regime_ratio > 1.3 for name in burst)
    # History: one snapshot per symbol per replayed bucket, the factor walking in steps.
    assert SizingSnapshot.objects.filter(symbol__name=GOOD).count() == 4


def test_factor_history_walks_within_the_step_limit():
    _seed(symbols=[GOOD, POOR, BURST], history_hours=6)
    for name in (GOOD, POOR, BURST):
        history = list(SizingSnapshot.objects.filter(symbol__name=name).order_by("as_of"))
        assert [snapshot.as_of for snapshot in history] == [END - timedelta(hours=h) for h in range(5, -1, -1)]
        assert history[0].size_factor == 1.0  # no previous snapshot: a symbol starts neutral
        previous = 1.0
        for snapshot in history:  # hourly buckets: at most x1.10 or /1.10 each (SIZING_MAX_STEP_PER_HOUR)
            assert previous / 1.1 * (1 - 1e-12) <= snapshot.size_factor <= previous * 1.1 * (1 + 1e-12)
            previous = snapshot.size_factor
    assert selectors.snapshot_latest(symbol=BURST).atr_regime_ratio > 1.3


def test_current_end_leaves_a_fresh_latest_snapshot():
    summary = demo_seed(end=timezone.now(), days=2, seed=7, symbols=[GOOD], history_hours=2)
    assert not summary.stale
    assert summary.latest_as_of == bucket_for(timezone.now()) or summary.latest_as_of > summary.end
    assert symbol_size_factor(GOOD)["stale"] is False


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="future"):
        demo_seed(end=timezone.now() + timedelta(hours=2), days=2, seed=7, symbols=[GOOD])
    with pytest.raises(ValueError, match="aware"):
        demo_seed(end=datetime(2025, 3, 1), days=2, seed=7, symbols=[GOOD])
    with pytest.raises(ValueError, match="days"):
        demo_seed(end=END, days=0, seed=7, symbols=[GOOD])
    assert not Symbol.objects.exists()


def test_command_prints_summary_and_is_idempotent():
    arguments = ["--end", "2025-03-01T12:34:56", "--days", "9", "--symbols", f"{GOOD},{POOR}",
                 "--history-hours", "2"]
    out = StringIO()
    call_command("seed_demo", *arguments, stdout=out)
    text = out.getvalue()
    assert f"symbols 1/2: {GOOD}" in text  # one line per symbol when not a terminal
    assert "Demo data: 2 symbols, 2025-02-20 12:00 -> 2025-03-01 12:00 UTC" in text
    assert "sized up" in text and "sized down" in text and "stale" in text
    counts = _row_counts([GOOD, POOR])

    out = StringIO()
    call_command("seed_demo", *arguments, stdout=out)
    assert "(0 new)" in out.getvalue() and "(0 new from 0 recompute runs)" in out.getvalue()
    assert _row_counts([GOOD, POOR]) == counts

    out = StringIO()
    call_command("seed_demo", *arguments, "--reset", stdout=out)
    assert "Reset: deleted" in out.getvalue()
    assert _row_counts([GOOD, POOR]) == counts  # snapshots were kept, so no new runs either

    with pytest.raises(CommandError, match="--reset"):
        call_command("seed_demo", *arguments, "--seed", "8", stdout=StringIO())
    with pytest.raises(CommandError, match="ISO"):
        call_command("seed_demo", "--end", "yesterday", stdout=StringIO())


def test_ids_grow_with_time():
    _seed(symbols=[GOOD], history_hours=0)
    orders = list(Order.objects.filter(symbol__name=GOOD).order_by("client_order_id"))
    assert [order.submitted_at for order in orders] == sorted(order.submitted_at for order in orders)
    fills = list(Fill.objects.filter(symbol__name=GOOD).order_by("trade_id"))
    assert [fill.executed_at for fill in fills] == sorted(fill.executed_at for fill in fills)


def test_history_buckets_end_with_the_current_bucket_only_when_end_is_this_hour():
    now = END + timedelta(minutes=17)
    assert demo_history_buckets(end=END, hours=3, now=now) == [
        END - timedelta(hours=2), END - timedelta(hours=1), END, bucket_for(now),
    ]
    assert demo_history_buckets(end=END, hours=0, now=now) == [bucket_for(now)]
    assert demo_history_buckets(end=END, hours=2, now=END + timedelta(days=3)) == [END - timedelta(hours=1), END]
