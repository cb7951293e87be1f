"""Tests for the recompute service: one snapshot per symbol and bucket, idempotent reruns, closed
bars only, the step limit, per-symbol failure isolation, and a query count independent of size.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sizing_app.domain import metrics, scoring
from sizing_app.models import Candle, RecomputeRun, SizingDecision, SizingSnapshot
from sizing_app.recompute.service import bucket_for, recompute_run
from sizing_app.signal_generator import size_for
from tests.factories import HOUR, make_candles, make_fill, make_good_execution, make_order, make_snapshot, make_symbol

# A bucket start half-way through an hourly bar: the bar opened at 00:00 is still open at as_of.
AS_OF = datetime(2024, 3, 1, 0, 30, tzinfo=UTC)
LAST_CLOSED_OPEN = datetime(2024, 2, 29, 23, 0, tzinfo=UTC)  # closes at 00:00 <= as_of
OPEN_BAR_OPEN = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)       # closes at 01:00 > as_of
LOOKBACK = timedelta(days=30)  # SIZING_LOOKBACK_DAYS default


def build_symbol(name: str, *, seed: int, as_of: datetime = AS_OF, candles: int = 800, executions: bool = True):
    """A symbol with `candles` closed 1h bars ending just before as_of, plus a few orders and fills."""
    symbol = make_symbol(name)
    last_closed = as_of.replace(minute=0, second=0, microsecond=0) - HOUR
    make_candles(symbol, last_open=last_closed, count=candles, seed=seed)
    if executions:
        for i in range(3):
            moment = as_of - timedelta(hours=5 + 20 * i)
            order = make_order(symbol, submitted_at=moment, requested_qty="2", filled_qty="2", arrival_price="100")
            make_fill(symbol, executed_at=moment + timedelta(seconds=30), price="100.02", qty="2", order=order,
                      realized_pnl=str(10 * (i - 1)))
    return symbol


def scoring_fails_for(monkeypatch, name: str) -> None:
    """Scoring raises for this one symbol ("boom for NAME") and works for the others."""
    real_evaluate = scoring.evaluate

    def evaluate(inputs, **kwargs):
        if inputs.symbol == name:
            raise RuntimeError(f"boom for {name}")
        return real_evaluate(inputs, **kwargs)

    monkeypatch.setattr(scoring, "evaluate", evaluate)


def snapshot_values(queryset):
    return sorted(queryset.values(), key=lambda row: row["id"])


# --- one snapshot per symbol and bucket, idempotent ------------------------------------------

def test_one_snapshot_per_symbol_and_bucket():
    names = ["BTCUSDC", "ETHUSDC", "SOLUSDC"]
    for seed, name in enumerate(names):
        build_symbol(name, seed=seed)
    run = recompute_run(as_of=AS_OF)
    assert run.status == RecomputeRun.Status.OK
    assert (run.symbols_total, run.symbols_ok, run.symbols_failed) == (3, 3, 0)
    assert run.errors == {}
    snapshots = SizingSnapshot.objects.filter(as_of=AS_OF)
    assert sorted(snapshots.values_list("symbol__name", flat=True)) == sorted(names)
    for snapshot in snapshots:
        assert snapshot.run_id == run.pk
        assert scoring.FACTOR_FLOOR <= snapshot.size_factor <= scoring.FACTOR_CEILING
        assert set(snapshot.components) == {component.name for component in scoring.COMPONENTS}
        assert snapshot.fill_count == 3 and snapshot.order_count == 3


def test_second_run_for_the_same_bucket_writes_nothing_and_changes_nothing():
    for seed, name in enumerate(["BTCUSDC", "ETHUSDC"]):
        build_symbol(name, seed=seed)
    first = recompute_run(as_of=AS_OF)
    before = snapshot_values(SizingSnapshot.objects.all())
    second = recompute_run(as_of=AS_OF)
    assert second.status == RecomputeRun.Status.OK
    after = snapshot_values(SizingSnapshot.objects.all())
    assert after == before  # same rows, same values, still attributed to the first run
    assert len(after) == 2
    assert {row["run_id"] for row in after} == {first.pk}
    # The run says so: nothing new, both kept (it used to report 2 ok while writing nothing).
    assert (first.symbols_ok, first.symbols_existing) == (2, 0)
    assert (second.symbols_ok, second.symbols_existing, second.symbols_failed) == (0, 2, 0)


def test_a_run_in_a_partly_filled_bucket_counts_only_the_snapshots_it_wrote():
    for seed, name in enumerate(["BTCUSDC", "ETHUSDC"]):
        build_symbol(name, seed=seed)
    recompute_run(symbol_names=["BTCUSDC"], as_of=AS_OF)
    run = recompute_run(as_of=AS_OF)
    assert (run.symbols_total, run.symbols_ok, run.symbols_existing, run.symbols_failed) == (2, 1, 1, 0)
    assert SizingSnapshot.objects.get(symbol__name="ETHUSDC", as_of=AS_OF).run_id == run.pk


def test_a_run_with_kept_snapshots_and_failures_is_partial_not_failed(monkeypatch):
    # Symbols whose snapshot was already there were computed fine: one failure beside them is partial.
    for seed, name in enumerate(["BTCUSDC", "ETHUSDC"]):
        build_symbol(name, seed=seed)
    recompute_run(symbol_names=["BTCUSDC", "ETHUSDC"], as_of=AS_OF)
    build_symbol("BADUSDC", seed=3)
    scoring_fails_for(monkeypatch, "BADUSDC")
    run = recompute_run(as_of=AS_OF)
    assert (run.status, run.symbols_ok, run.symbols_existing, run.symbols_failed) == (
        RecomputeRun.Status.PARTIAL, 0, 2, 1)


def test_recompute_factors_command_names_symbols_already_computed_for_the_bucket():
    from io import StringIO

    from django.core.management import call_command

    build_symbol("BTCUSDC", seed=1)
    outputs = []
    for _ in range(2):
        out = StringIO()
        call_command("recompute_factors", "--as-of", AS_OF.isoformat(), stdout=out)
        outputs.append(out.getvalue().splitlines()[-1])
    assert ", 1 ok, 0 failed" in outputs[0] and "already computed" not in outputs[0]
    assert ", 0 ok, 1 already computed for this bucket (kept" in outputs[1]


def test_duplicate_beat_for_a_bucket_is_harmless():
    build_symbol("BTCUSDC", seed=1, candles=50)
    first = recompute_run(as_of=AS_OF, trigger="beat")
    before = snapshot_values(SizingSnapshot.objects.all())
    second = recompute_run(as_of=AS_OF, trigger="beat")  # a second beat process fired the same bucket
    assert second is None or second.status == RecomputeRun.Status.SKIPPED
    assert first.status == RecomputeRun.Status.OK
    assert snapshot_values(SizingSnapshot.objects.all()) == before
    assert len(before) == 1


def test_inactive_symbols_are_not_recomputed_by_default():
    build_symbol("BTCUSDC", seed=1)
    make_symbol("OLDUSDC", is_active=False)
    recompute_run(as_of=AS_OF)
    assert list(SizingSnapshot.objects.values_list("symbol__name", flat=True)) == ["BTCUSDC"]


def test_unknown_symbol_names_raise_naming_them():
    build_symbol("BTCUSDC", seed=1, executions=False, candles=20)
    with pytest.raises(ValueError, match="NOPEUSDC") as raised:
        recompute_run(symbol_names=["BTCUSDC", "NOPEUSDC", "ZZZ1"], as_of=AS_OF)
    assert "ZZZ1" in str(raised.value)
    assert "BTCUSDC" not in str(raised.value)
    assert RecomputeRun.objects.count() == 0
    assert SizingSnapshot.objects.count() == 0


def test_named_symbols_only():
    for seed, name in enumerate(["BTCUSDC", "ETHUSDC", "SOLUSDC"]):
        build_symbol(name, seed=seed, candles=50, executions=False)
    run = recompute_run(symbol_names=["ETHUSDC"], as_of=AS_OF)
    assert run.symbols_total == 1
    assert list(SizingSnapshot.objects.values_list("symbol__name", flat=True)) == ["ETHUSDC"]


# --- inputs: closed bars, the lookback, the as-of boundary -----------------------------------

def test_atr_pct_uses_closed_bars_only():
    symbol = build_symbol("BTCUSDC", seed=4)
    # A bar still open at as_of, with an absurd range: counting it would blow ATR% up.
    Candle.objects.create(symbol=symbol, interval="1h", open_time=OPEN_BAR_OPEN, open=100.0, high=1000.0,
                          low=1.0, close=500.0, volume=1.0)
    recompute_run(as_of=AS_OF)
    snapshot = SizingSnapshot.objects.get(symbol=symbol, as_of=AS_OF)

    # The window is the 720 closed hours before as_of's hour: bars opening 2024-01-31 00:00 .. 02-29 23:00.
    window_end = AS_OF.replace(minute=0)
    closed = Candle.objects.filter(
        symbol=symbol, interval="1h", open_time__gte=window_end - LOOKBACK, open_time__lte=LAST_CLOSED_OPEN,
    ).order_by("open_time")
    high, low, close = (np.array(closed.values_list(field, flat=True), dtype=float)
                        for field in ("high", "low", "close"))
    assert len(close) == 720
    assert snapshot.candle_count == 720
    assert snapshot.last_close == close[-1]
    assert snapshot.atr_pct == metrics.atr_pct(high, low, close, 14)[-1]

    with_open_bar = metrics.atr_pct(np.append(high, 1000.0), np.append(low, 1.0), np.append(close, 500.0), 14)[-1]
    assert abs(with_open_bar - snapshot.atr_pct) > 1.0  # the test would notice the open bar
    assert snapshot.atr_regime_ratio == metrics.atr_regime_ratio(high, low, close, 14, 168)
    assert snapshot.realized_volatility == pytest.approx(
        metrics.realized_volatility(close, metrics.bars_per_year("1h")), rel=1e-12)


def test_fills_at_or_after_as_of_are_not_inputs():
    symbol = build_symbol("BTCUSDC", seed=2, candles=50, executions=False)
    make_fill(symbol, executed_at=AS_OF - timedelta(seconds=1), price="101", arrival_price="100")
    make_fill(symbol, executed_at=AS_OF, price="200", arrival_price="100")
    make_fill(symbol, executed_at=AS_OF + timedelta(minutes=1), price="200", arrival_price="100")
    recompute_run(as_of=AS_OF)
    snapshot = SizingSnapshot.objects.get(symbol=symbol)
    assert snapshot.fill_count == 1
    assert snapshot.slippage_bps == pytest.approx(100.0, rel=1e-12)  # (101 - 100) / 100 * 1e4, a buy


def test_symbol_without_any_data_gets_a_neutral_no_data_snapshot():
    make_symbol("NEWUSDC")
    recompute_run(as_of=AS_OF)
    snapshot = SizingSnapshot.objects.get()
    assert snapshot.status == "no_data"
    assert (snapshot.score, snapshot.raw_size_factor, snapshot.size_factor) == (0.0, 1.0, 1.0)
    assert (snapshot.inverse_vol_multiplier, snapshot.regime_multiplier, snapshot.sharpe_multiplier) == (1.0, 1.0, 1.0)


# --- the step limit --------------------------------------------------------------------------

FIVE_MINUTES_OF_STEP = 1.1 ** (5 / 60)  # SIZING_MAX_STEP_PER_HOUR 0.10 over the 5 minutes between buckets


def test_step_limit_caps_a_very_good_symbol_by_the_time_since_the_previous_snapshot():
    symbol = build_symbol("GOODUSDC", seed=5, executions=False)
    make_good_execution(symbol, as_of=AS_OF)
    make_snapshot(symbol, as_of=AS_OF - timedelta(minutes=5), size_factor=1.0)
    recompute_run(as_of=AS_OF)
    snapshot = SizingSnapshot.objects.get(symbol=symbol, as_of=AS_OF)
    # Slippage -5 bps (tanh(0.7)), fill rate 1.0 (0.5 tanh(1)), maker ratio 1.0 (0.5 tanh(2)): score > 1.4,
    # raw factor well above 1, but 5 minutes move it at most x1.10^(5/60).
    assert snapshot.raw_size_factor > 1.2
    assert snapshot.size_factor == pytest.approx(FIVE_MINUTES_OF_STEP, rel=1e-15)

    # The next bucket moves on from the persisted factor, compounding.
    recompute_run(as_of=AS_OF + timedelta(minutes=5))
    following = SizingSnapshot.objects.get(symbol=symbol, as_of=AS_OF + timedelta(minutes=5))
    assert following.size_factor == pytest.approx(FIVE_MINUTES_OF_STEP**2, rel=1e-15)

    # An hour without a recompute allows an hour's step, whatever the recompute interval.
    recompute_run(as_of=AS_OF + timedelta(minutes=65))
    later = SizingSnapshot.objects.get(symbol=symbol, as_of=AS_OF + timedelta(minutes=65))
    assert later.size_factor == pytest.approx(FIVE_MINUTES_OF_STEP**2 * 1.1, rel=1e-15)


def test_a_new_symbol_starts_neutral_and_ramps_in():
    symbol = build_symbol("GOODUSDC", seed=5, executions=False)
    make_good_execution(symbol, as_of=AS_OF)
    recompute_run(as_of=AS_OF)
    assert SizingSnapshot.objects.get(symbol=symbol).size_factor == 1.0


def test_step_limit_ignores_snapshots_of_later_buckets():
    symbol = build_symbol("GOODUSDC", seed=5, executions=False)
    make_good_execution(symbol, as_of=AS_OF)
    make_snapshot(symbol, as_of=AS_OF + timedelta(hours=1), size_factor=2.0)  # a later bucket, backfill order
    make_snapshot(symbol, as_of=AS_OF - timedelta(minutes=5), size_factor=0.8)
    recompute_run(as_of=AS_OF)
    assert SizingSnapshot.objects.get(symbol=symbol, as_of=AS_OF).size_factor == pytest.approx(
        0.8 * FIVE_MINUTES_OF_STEP, rel=1e-15)


# --- failure isolation -----------------------------------------------------------------------

def test_a_failing_symbol_is_recorded_and_the_others_are_written(monkeypatch):
    for seed, name in enumerate(["BTCUSDC", "BADUSDC", "ETHUSDC"]):
        build_symbol(name, seed=seed, candles=200)
    scoring_fails_for(monkeypatch, "BADUSDC")
    run = recompute_run(as_of=AS_OF)
    assert run.status == RecomputeRun.Status.PARTIAL
    assert (run.symbols_ok, run.symbols_failed) == (2, 1)
    assert set(run.errors) == {"BADUSDC"}
    assert "boom for BADUSDC" in run.errors["BADUSDC"]
    assert sorted(SizingSnapshot.objects.values_list("symbol__name", flat=True)) == ["BTCUSDC", "ETHUSDC"]


def test_every_symbol_failing_marks_the_run_failed(monkeypatch):
    build_symbol("BTCUSDC", seed=1, candles=30, executions=False)

    def evaluate(inputs, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(scoring, "evaluate", evaluate)
    run = recompute_run(as_of=AS_OF)
    assert run.status == RecomputeRun.Status.FAILED
    assert SizingSnapshot.objects.count() == 0


# --- bulk loading: query count independent of the number of symbols --------------------------

def _recompute_queries(names: list[str], as_of: datetime) -> int:
    with CaptureQueriesContext(connection) as captured:
        run = recompute_run(symbol_names=names, as_of=as_of)
    assert run.symbols_ok == len(names)
    return len(captured.captured_queries)


def test_query_count_does_not_grow_with_symbols(django_assert_max_num_queries):
    small = [f"S{i:02d}USDC" for i in range(3)]
    large = [f"L{i:02d}USDC" for i in range(30)]
    for seed, name in enumerate(small + large):
        build_symbol(name, seed=seed, candles=40)
    queries_for_3 = _recompute_queries(small, AS_OF)
    # One query per table per chunk (candles, fills, orders, previous factors), plus the run's
    # bookkeeping and one bulk insert: a per-symbol loop would add >= 27 queries for 30 symbols.
    assert queries_for_3 <= 25
    # The one bulk insert is cut into batches by the backend's parameter limit (SQLite: 999 values).
    fields = [field for field in SizingSnapshot._meta.concrete_fields if not field.primary_key]
    batch = min(500, connection.ops.bulk_batch_size(fields, [None] * len(large)))
    extra_batches = math.ceil(len(large) / batch) - math.ceil(len(small) / batch)
    with django_assert_max_num_queries(queries_for_3 + extra_batches):
        run = recompute_run(symbol_names=large, as_of=AS_OF)
    assert run.symbols_ok == 30
    assert SizingSnapshot.objects.filter(as_of=AS_OF).count() == 33


# --- what sizing reads afterwards ------------------------------------------------------------

def test_size_for_reads_the_snapshot_a_recompute_just_wrote():
    as_of = bucket_for(timezone.now())
    symbol = build_symbol("BTCUSDC", seed=8, as_of=as_of, candles=300)
    assert size_for("BTCUSDC", 100.0) == 100.0  # nothing persisted yet: neutral
    recompute_run(as_of=as_of)
    snapshot = SizingSnapshot.objects.get(symbol=symbol)
    expected = ((100.0 * snapshot.inverse_vol_multiplier) * snapshot.regime_multiplier) * snapshot.sharpe_multiplier
    expected *= snapshot.size_factor
    assert size_for("BTCUSDC", 100.0) == expected
    row = SizingDecision.objects.get(seq=2)
    assert row.snapshot_id == snapshot.pk and row.fallback_reason == "" and row.stale is False
