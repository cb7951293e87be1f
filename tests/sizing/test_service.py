"""size_for / size_decide / size_decide_batch: the stack times the persisted factor, staleness, the
per-process cache, input validation and batches. Policy: tests/policy; the ledger rows: tests/ledger.
"""
from __future__ import annotations

import math
import re
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sizing_app.ledger import chain as ledger
from sizing_app.models import AppendOnlyError, SizingDecision
from sizing_app.signal_generator import size_decide, size_decide_batch, size_for
from sizing_app.sizing import hot_state as latest
from tests.factories import make_snapshot, make_symbol
from tests.fixtures.sizing import FACTOR, GROSS, INV, REGIME, SHARPE, ledger_chain, only_row, stack

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,32}$")



# --- the stack and the intel factor ----------------------------------------------------------

def test_no_snapshot_is_neutral_and_flagged(btc):
    assert size_for("BTCUSDC", 100.0) == 100.0
    row = only_row()
    assert (row.inverse_vol_size, row.regime_multiplier, row.sharpe_multiplier) == (100.0, 1.0, 1.0)
    assert (row.intel_factor, row.applied_factor, row.final_size) == (1.0, 1.0, 100.0)
    assert row.fallback_reason == "no_snapshot"
    assert row.snapshot_id is None and row.score is None
    assert row.stale is False
    assert row.mode == "live"


def test_fresh_snapshot_applies_whole_stack_exactly(fresh_snapshot):
    final = size_for("BTCUSDC", GROSS, order_ref="ord-1", caller="engine")
    # 1234.5 * 0.8 = 987.6; * 0.9 = 888.84; * 1.1 = 977.724; * 1.3 = 1271.0412 (float, same order)
    assert final == stack(GROSS)
    assert final == pytest.approx(1271.0412, rel=1e-12)
    row = only_row()
    assert row.gross_target == GROSS
    assert row.inverse_vol_size == GROSS * INV
    assert (row.regime_multiplier, row.sharpe_multiplier) == (REGIME, SHARPE)
    assert (row.intel_factor, row.applied_factor) == (FACTOR, FACTOR)
    assert row.final_size == final
    assert row.snapshot_id == fresh_snapshot.pk and row.score == 0.75
    assert row.fallback_reason == "" and row.stale is False and row.mode == "live"
    assert (row.order_ref, row.caller) == ("ord-1", "engine")


def test_size_decide_returns_the_committed_row(fresh_snapshot):
    row = size_decide("BTCUSDC", GROSS, order_ref="x")
    assert row.pk is not None
    assert SizingDecision.objects.get(pk=row.pk).final_size == row.final_size == stack(GROSS)


def test_snapshot_for_another_symbol_is_not_used(fresh_snapshot):
    make_symbol("ETHUSDC")
    assert size_for("ETHUSDC", GROSS) == GROSS
    assert only_row().fallback_reason == "no_snapshot"


def test_latest_snapshot_wins_over_older_ones(btc):
    now = timezone.now()
    make_snapshot(btc, as_of=now - timedelta(minutes=5), size_factor=0.5)
    latest = make_snapshot(btc, as_of=now, size_factor=1.5)
    assert size_for("BTCUSDC", 100.0) == 150.0
    assert only_row().snapshot_id == latest.pk


def test_stale_snapshot_falls_back_to_neutral_intel_factor(btc):
    # Default max age is 3 x 300 s = 900 s; this snapshot is 961 s old.
    snapshot = make_snapshot(btc, as_of=timezone.now() - timedelta(seconds=961), size_factor=FACTOR)
    assert size_for("BTCUSDC", GROSS) == GROSS
    row = only_row()
    assert (row.intel_factor, row.applied_factor) == (1.0, 1.0)
    assert row.stale is True
    assert row.fallback_reason == "stale_snapshot"
    assert row.snapshot_id == snapshot.pk  # provenance: which snapshot was judged stale


def test_max_age_setting_is_honoured(btc, settings):
    make_snapshot(btc, as_of=timezone.now() - timedelta(minutes=10), size_factor=FACTOR)
    assert size_for("BTCUSDC", 100.0) == 100.0 * FACTOR  # 600 s < 900 s: fresh
    settings.SIZING_MAX_AGE_SECONDS = 300
    assert size_for("BTCUSDC", 100.0) == 100.0  # 600 s > 300 s: stale
    stale_row = SizingDecision.objects.get(seq=2)
    assert stale_row.stale is True and stale_row.fallback_reason == "stale_snapshot"


@pytest.mark.parametrize(("persisted", "factor_max", "expected"), [(3.0, 2.0, 2.0), (0.1, 2.0, 0.25), (2.0, 1.5, 1.5)])
def test_persisted_factor_is_clamped_at_sizing_time(btc, settings, persisted, factor_max, expected):
    # The contract's hard clamp [0.25, 2.0] (narrowable by settings) must hold for every size handed
    # out, whatever a snapshot row carries (an import, a hand fix, or settings narrowed since the recompute).
    # Regression: at e8aa433 policy_apply clamped only pinned factors.
    settings.SIZING_FACTOR_MAX = factor_max
    make_snapshot(btc, size_factor=persisted)
    assert size_for("BTCUSDC", 100.0) == 100.0 * expected
    assert only_row().applied_factor == expected


# --- per-process cache -----------------------------------------------------------------------

def test_second_call_reads_snapshot_and_policy_from_process_cache(
    fresh_snapshot, django_assert_max_num_queries, monkeypatch
):
    # Widen the refresh window so a slow machine cannot turn the second call into a poll.
    monkeypatch.setattr(latest.hot_state, "refresh_seconds", 60.0, raising=False)
    size_for("BTCUSDC", 100.0)  # warms the per-process snapshot and policy caches
    # Within the refresh window the second call reads nothing but the chain head and writes the
    # ledger row: SELECT head (tests run inside a transaction, so the head is only trusted after
    # commit and is re-read), SAVEPOINT, INSERT, RELEASE SAVEPOINT = at most 4 statements. Without
    # the cache it would add the snapshot read and 2-3 policy reads (override, symbol, global mode).
    with django_assert_max_num_queries(4) as captured:
        assert size_for("BTCUSDC", 100.0) == stack(100.0)
    statements = [query["sql"].lower() for query in captured.captured_queries]
    reads = [sql for sql in statements if sql.startswith("select")]
    assert all('from "sizing_app_sizingsnapshot"' not in sql for sql in reads)  # no snapshot read
    for policy_table in ('"sizing_app_override"', '"sizing_app_globalpolicy"', 'from "sizing_app_symbol"'):
        assert all(policy_table not in sql for sql in reads)
    assert sum(sql.startswith("insert into") for sql in statements) == 1


def test_snapshot_written_in_this_process_is_seen_by_its_next_call(btc):
    now = timezone.now()
    make_snapshot(btc, as_of=now - timedelta(minutes=1), size_factor=0.5)
    assert size_for("BTCUSDC", 100.0) == 50.0
    newer = make_snapshot(btc, as_of=now, size_factor=1.5)
    assert size_for("BTCUSDC", 100.0) == 150.0
    assert SizingDecision.objects.get(seq=2).snapshot_id == newer.pk


# --- validation ------------------------------------------------------------------------------

MALFORMED_SYMBOLS = [
    "btcusdc", "BTCusdc", "", "B", "A" * 33, "BTC USDC", " BTCUSDC", "BTCUSDC ", "BTCUSDC\n", "BTC-USDC",
    "BTC/USDC", "BTC_USDC", "BTC'; DROP TABLE sizing_app_sizingdecision;--", "<b>X</b>", "BTCÜSDC",
    "ＢＴＣＵＳＤＣ", "١٢٣٤", "BTC\x00USDC", "BTC\u200bUSDC", None, 123, b"BTCUSDC", ["BTCUSDC"],
]
INVALID_GROSS = [
    -1, -1.0, -1e-300, -math.inf, math.inf, math.nan, None, True, False, "100", "", [100.0], {"gross": 1},
    complex(1, 0), Decimal("-1"), Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), 10**400,
    Decimal("sNaN"),  # regression: at e8aa433 float() raised a bare "cannot convert signaling NaN to float"
]

invalid_symbols = (
    st.sampled_from(MALFORMED_SYMBOLS)
    | st.text(max_size=40).filter(lambda s: not SYMBOL_RE.fullmatch(s))
    | st.from_regex(r"[A-Z0-9]{33,40}", fullmatch=True)
    | st.from_regex(r"[a-z0-9]{2,32}", fullmatch=True).filter(lambda s: not s.isdigit())
)
invalid_gross = (
    st.sampled_from(INVALID_GROSS)
    | st.floats(max_value=-5e-324)
    | st.integers(max_value=-1)
    | st.text(max_size=10)
    | st.lists(st.floats(0, 10), max_size=2)
)
valid_symbols = st.from_regex(r"[A-Z0-9]{2,32}", fullmatch=True)
valid_gross = st.floats(0.0, 1e12).filter(lambda g: g == 0 or g >= sys.float_info.min) | st.integers(0, 10**12)
DB_HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("symbol", MALFORMED_SYMBOLS)
def test_malformed_symbol_raises_and_writes_nothing(symbol):
    with pytest.raises(ValueError, match="Malformed symbol"):
        size_for(symbol, 100.0)
    assert SizingDecision.objects.count() == 0


@pytest.mark.parametrize("gross", INVALID_GROSS, ids=repr)
def test_invalid_gross_target_raises_and_writes_nothing(gross):
    with pytest.raises(ValueError, match="gross_target"):
        size_for("BTCUSDC", gross)
    assert SizingDecision.objects.count() == 0


@DB_HYPOTHESIS
@given(symbol=invalid_symbols, gross=valid_gross)
def test_any_malformed_symbol_raises_and_writes_nothing(symbol, gross):
    before = SizingDecision.objects.count()
    with pytest.raises(ValueError):
        size_for(symbol, gross)
    assert SizingDecision.objects.count() == before


@DB_HYPOTHESIS
@given(symbol=valid_symbols, gross=invalid_gross)
def test_any_invalid_gross_target_raises_and_writes_nothing(symbol, gross):
    before = SizingDecision.objects.count()
    with pytest.raises(ValueError):
        size_for(symbol, gross)
    assert SizingDecision.objects.count() == before


@DB_HYPOTHESIS
@given(symbol=valid_symbols, gross=valid_gross)
def test_any_valid_request_gives_a_finite_non_negative_size(symbol, gross):
    before = SizingDecision.objects.count()
    final = size_for(symbol, gross, neutral_if_unknown=True)
    assert math.isfinite(final) and final >= 0
    assert final == float(gross)  # a random symbol: unknown or without a snapshot, every factor is neutral
    assert SizingDecision.objects.count() == before + 1


@pytest.mark.parametrize("gross", [0, 0.0, 1, 1e12, Decimal("12.5"), 10**12])
def test_valid_gross_target_types(fresh_snapshot, gross):
    final = size_for("BTCUSDC", gross)
    assert final == stack(float(gross))
    assert isinstance(final, float)


def test_negative_zero_gross_target_is_recorded_as_zero(fresh_snapshot):
    size_for("BTCUSDC", -0.0)
    assert math.copysign(1.0, only_row().gross_target) == 1.0


@pytest.mark.parametrize(("name", "value", "says"), [
    ("order_ref", "x" * 129, "longer than 128"), ("caller", "y" * 65, "longer than 64"),
    ("order_ref", "a\nb", "control characters"), ("caller", "ok\x7f", "control characters"),
    ("order_ref", "\ud800", "lone surrogates"), ("caller", "\udfff\x00", "control characters"),
    ("caller", 5, "must be a string"),
])
def test_invalid_order_ref_or_caller_raises_and_writes_nothing(name, value, says):
    with pytest.raises(ValueError, match=f"{name}.*{says}"):
        size_for("BTCUSDC", 100.0, **{name: value})
    assert SizingDecision.objects.count() == 0


@pytest.mark.parametrize("text", ["", "ord-1", "Überweisung 5 €", "注文-7", "tab\tless".replace("\t", " ")])
def test_printable_order_ref_and_caller_are_kept_as_given(fresh_snapshot, text):
    size_for("BTCUSDC", 1.0, order_ref=text, caller=text[:64])
    row = only_row()
    assert (row.order_ref, row.caller) == (text, text[:64])


# --- batch -----------------------------------------------------------------------------------

def test_batch_writes_one_row_per_order(fresh_snapshot):
    make_symbol("ETHUSDC")
    orders = [("BTCUSDC", 100.0, "a"), ("ETHUSDC", 50.0, "b"), ("BTCUSDC", 10.0, "c"), ("BTCUSDC", 0.0, "d"),
              ("ETHUSDC", 7.0, "e")]
    rows = size_decide_batch(orders, caller="engine")
    assert len(rows) == SizingDecision.objects.count() == 5
    assert [row.order_ref for row in rows] == ["a", "b", "c", "d", "e"]
    assert [row.final_size for row in rows] == [stack(100.0), 50.0, stack(10.0), 0.0, 7.0]
    assert [row.seq for row in rows if row.symbol == "BTCUSDC"] == [1, 2, 3]
    assert [row.seq for row in rows if row.symbol == "ETHUSDC"] == [1, 2]
    for symbol in ("BTCUSDC", "ETHUSDC"):
        assert ledger.verify_chain(symbol, ledger_chain(symbol)) == []


def _field_values(decision):
    return {field.attname: getattr(decision, field.attname) for field in SizingDecision._meta.concrete_fields}


def test_batch_returns_rows_equal_to_what_the_database_holds(fresh_snapshot):
    make_symbol("ETHUSDC")
    rows = size_decide_batch([("BTCUSDC", 100.0, "a"), ("ETHUSDC", 5.0, "b")], caller="engine")
    for row in rows:
        stored = SizingDecision.objects.get(pk=row.pk)
        assert _field_values(row) == _field_values(stored)
        assert (row._state.adding, row._state.db) == (False, "default")
        assert row.snapshot == stored.snapshot  # relations load as on any loaded instance
    with pytest.raises(AppendOnlyError):
        rows[0].save()  # a loaded row, so saving it is an update: refused


def test_batch_rows_go_through_init_when_init_signals_are_listened_to(fresh_snapshot):
    from django.db.models.signals import post_init

    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.order_ref)

    post_init.connect(listener, sender=SizingDecision)
    try:
        rows = size_decide_batch([("BTCUSDC", 1.0, "a"), ("BTCUSDC", 2.0, "b")])
    finally:
        post_init.disconnect(listener, sender=SizingDecision)
    assert seen == ["a", "b"]
    assert [_field_values(row) for row in rows] == [_field_values(SizingDecision.objects.get(pk=row.pk))
                                                     for row in rows]


@pytest.mark.parametrize("bad", [("btcusdc", 1.0, "x"), ("BTCUSDC", -1.0, "x"), ("BTCUSDC", math.nan, "x"),
                                 ("BTCUSDC", 1.0, "x" * 200)])
def test_batch_with_one_invalid_order_writes_nothing(fresh_snapshot, bad):
    size_for("BTCUSDC", 1.0)
    orders = [("BTCUSDC", 100.0, "a"), bad, ("BTCUSDC", 10.0, "c")]
    with pytest.raises(ValueError):
        size_decide_batch(orders)
    assert SizingDecision.objects.count() == 1
    # and the chain is intact for the next writer
    size_for("BTCUSDC", 1.0)
    assert [row["seq"] for row in ledger_chain("BTCUSDC")] == [1, 2]


def test_empty_batch_writes_nothing():
    assert size_decide_batch([]) == []
    assert SizingDecision.objects.count() == 0


# --- the bounded whole -------------------------------------------------------------------------

@pytest.mark.parametrize(("steps", "expected_total", "bounded"), [
    (dict(size_factor=2.0, inverse_vol_multiplier=2.0, regime_multiplier=1.25, sharpe_multiplier=1.5), 3.0, True),
    (dict(size_factor=0.25, inverse_vol_multiplier=0.25, regime_multiplier=0.5, sharpe_multiplier=0.5), 0.1, True),
    (dict(size_factor=1.5, inverse_vol_multiplier=1.2, regime_multiplier=1.0, sharpe_multiplier=1.0), None, False),
])
def test_the_whole_multiplier_is_bounded_and_the_row_says_when(btc, steps, expected_total, bounded):
    make_snapshot(btc, **steps)
    decision = size_decide("BTCUSDC", 1000.0)
    product = 1000.0 * steps["inverse_vol_multiplier"] * steps["regime_multiplier"] * steps["sharpe_multiplier"]
    product *= steps["size_factor"]
    assert decision.unbounded_size == product and decision.total_bounded is bounded
    assert decision.final_size == (1000.0 * expected_total if bounded else product)
    stored = SizingDecision.objects.get(pk=decision.pk)
    assert (stored.unbounded_size, stored.total_bounded, stored.final_size) == (
        decision.unbounded_size, bounded, decision.final_size)


def test_narrower_total_bounds_are_honoured_and_wider_ones_refused(btc, settings):
    from django.core.exceptions import ImproperlyConfigured

    from sizing_app.conf import sizing_settings

    make_snapshot(btc, size_factor=2.0, inverse_vol_multiplier=1.0)
    settings.SIZING_TOTAL_MAX = 1.5
    assert size_for("BTCUSDC", 100.0) == 150.0
    settings.SIZING_TOTAL_MAX = 5.0
    with pytest.raises(ImproperlyConfigured, match="SIZING_TOTAL_MAX"):
        sizing_settings()


@DB_HYPOTHESIS
@given(factor=st.floats(0.0, 50.0), inv=st.floats(0.0, 5.0), regime=st.floats(0.0, 5.0), sharpe=st.floats(0.0, 5.0),
       gross=st.floats(sys.float_info.min, 1e12))
def test_final_over_gross_stays_inside_the_total_bounds_for_every_valid_input(factor, inv, regime, sharpe, gross):
    from sizing_app import signal_generator

    steps = {"inverse_vol_size": lambda symbol, base: base * inv, "volatility_regime_scale": lambda symbol: regime,
             "size_multiplier": lambda symbol: sharpe,
             "symbol_size_factor": lambda symbol: {"symbol": symbol, "score": 0.0, "size_factor": factor}}
    make_symbol(f"P{SizingDecision.objects.count()}USDC")
    with pytest.MonkeyPatch.context() as patch:
        for name, step in steps.items():
            patch.setattr(signal_generator, name, step)
        decision = signal_generator.size_decide(f"P{SizingDecision.objects.count()}USDC", gross)
    assert 0.1 * (1 - 1e-15) <= decision.final_size / gross <= 3.0 * (1 + 1e-15)
