"""Tests for size_for / size_decide / size_decide_batch: the stack, the policy and the ledger row each
call writes (one per size, hash-chained per symbol, append-only), and input validation.
"""
from __future__ import annotations

import math
import sys
import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sizing_app import latest, ledger
from sizing_app.models import AppendOnlyError, GlobalPolicy, SizingDecision, SizingSnapshot
from sizing_app.signal_generator import size_decide, size_decide_batch, size_for
from tests.factories import make_override, make_snapshot, make_symbol

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,32}$")

# Multipliers chosen so every step changes the size; the expected size is computed in the same
# order as the engine's stack: ((gross * inverse_vol) * regime) * sharpe * intel.
GROSS = 1234.5
INV, REGIME, SHARPE, FACTOR = 0.8, 0.9, 1.1, 1.3


def stack(gross, inv=INV, regime=REGIME, sharpe=SHARPE, factor=FACTOR):
    return ((gross * inv) * regime) * sharpe * factor


@pytest.fixture
def btc():
    return make_symbol("BTCUSDC")


@pytest.fixture
def fresh_snapshot(btc):
    return make_snapshot(btc, as_of=timezone.now(), size_factor=FACTOR, inverse_vol_multiplier=INV,
                         regime_multiplier=REGIME, sharpe_multiplier=SHARPE, score=0.75)


def only_row() -> SizingDecision:
    assert SizingDecision.objects.count() == 1
    return SizingDecision.objects.get()


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


# --- policy: modes and overrides -------------------------------------------------------------

def test_global_shadow_records_but_does_not_apply(fresh_snapshot):
    GlobalPolicy.objects.create(pk=1, mode="shadow")
    assert size_for("BTCUSDC", GROSS) == stack(GROSS, factor=1.0)
    row = only_row()
    assert row.mode == "shadow"
    assert row.intel_factor == FACTOR  # computed and recorded
    assert row.applied_factor == 1.0   # not applied
    assert row.final_size == stack(GROSS, factor=1.0)


def test_global_off_applies_neutral(fresh_snapshot):
    GlobalPolicy.objects.create(pk=1, mode="off")
    assert size_for("BTCUSDC", GROSS) == stack(GROSS, factor=1.0)
    assert only_row().mode == "off"


def test_symbol_mode_overrides_global_both_ways(fresh_snapshot, btc):
    GlobalPolicy.objects.create(pk=1, mode="live")
    btc.mode = "off"
    btc.save()
    assert size_for("BTCUSDC", GROSS) == stack(GROSS, factor=1.0)
    GlobalPolicy.objects.filter(pk=1).update(mode="shadow")
    btc.mode = "live"
    btc.save()  # the save signal drops the cached policy at once
    assert size_for("BTCUSDC", GROSS) == stack(GROSS)
    modes = list(SizingDecision.objects.order_by("seq").values_list("mode", "applied_factor"))
    assert modes == [("off", 1.0), ("live", FACTOR)]


def test_mode_change_is_instant_and_reversible(fresh_snapshot):
    policy = GlobalPolicy.objects.create(pk=1, mode="shadow")
    first = size_for("BTCUSDC", GROSS)
    policy.mode = "live"
    policy.save()
    second = size_for("BTCUSDC", GROSS)
    policy.mode = "shadow"
    policy.save()
    third = size_for("BTCUSDC", GROSS)
    assert (first, second, third) == (stack(GROSS, factor=1.0), stack(GROSS), stack(GROSS, factor=1.0))


def test_active_pinned_override_wins(fresh_snapshot, btc):
    override = make_override(btc, pinned_factor=0.6, expires_at=timezone.now() + timedelta(hours=1))
    assert size_for("BTCUSDC", GROSS) == stack(GROSS, factor=0.6)
    row = only_row()
    assert (row.intel_factor, row.applied_factor) == (0.6, 0.6)
    assert row.override_id == override.pk
    assert row.snapshot_id == fresh_snapshot.pk


def test_pinned_override_without_expiry_wins_even_without_snapshot(btc):
    make_override(btc, pinned_factor=1.5)
    assert size_for("BTCUSDC", 100.0) == 150.0
    assert only_row().fallback_reason == ""


def test_expired_override_is_ignored(fresh_snapshot, btc):
    make_override(btc, pinned_factor=0.6, expires_at=timezone.now() - timedelta(seconds=1))
    assert size_for("BTCUSDC", GROSS) == stack(GROSS)
    row = only_row()
    assert row.override_id is None and row.intel_factor == FACTOR


def test_override_stops_applying_the_moment_it_expires(fresh_snapshot, btc, monkeypatch):
    # No write happens between the calls, and the refresh window is wide: expiry is checked at read.
    monkeypatch.setattr(latest.hot_state, "refresh_seconds", 60.0, raising=False)
    expires_at = timezone.now() + timedelta(seconds=1)
    make_override(btc, pinned_factor=0.6, expires_at=expires_at)
    pinned = size_for("BTCUSDC", GROSS)
    time.sleep(max(0.0, (expires_at - timezone.now()).total_seconds()) + 0.05)
    after_expiry = size_for("BTCUSDC", GROSS)
    assert (pinned, after_expiry) == (stack(GROSS, factor=0.6), stack(GROSS))


def test_revoked_override_is_ignored(fresh_snapshot, btc):
    make_override(btc, pinned_factor=0.6, revoked_at=timezone.now())
    assert size_for("BTCUSDC", GROSS) == stack(GROSS)
    assert only_row().override_id is None


def test_newest_active_override_wins(fresh_snapshot, btc):
    make_override(btc, pinned_factor=0.6)
    newest = make_override(btc, pinned_factor=0.7)
    assert size_for("BTCUSDC", 100.0) == stack(100.0, factor=0.7)
    assert only_row().override_id == newest.pk


@pytest.mark.parametrize(("pinned", "applied"), [(5.0, 2.0), (2.0, 2.0), (0.1, 0.25), (0.0, 0.25), (0.25, 0.25)])
def test_pinned_factor_is_clamped(fresh_snapshot, btc, pinned, applied):
    make_override(btc, pinned_factor=pinned)
    assert size_for("BTCUSDC", 100.0) == stack(100.0, factor=applied)
    assert only_row().applied_factor == applied


def test_pinned_factor_honours_narrowed_clamp(fresh_snapshot, btc, settings):
    settings.SIZING_FACTOR_MAX = 1.5
    make_override(btc, pinned_factor=1.9)
    assert size_decide("BTCUSDC", 100.0).applied_factor == 1.5


def test_override_mode_shadow_records_pinned_factor_without_applying(fresh_snapshot, btc):
    make_override(btc, pinned_factor=0.6, mode="shadow")
    assert size_for("BTCUSDC", GROSS) == stack(GROSS, factor=1.0)
    row = only_row()
    assert (row.mode, row.intel_factor, row.applied_factor) == ("shadow", 0.6, 1.0)


# --- ledger: one row per size, hash-chained per symbol, append-only ---------------------------

def _chain(symbol):
    return list(SizingDecision.objects.filter(symbol=symbol).order_by("seq").values())


def test_every_call_writes_exactly_one_row(fresh_snapshot):
    for expected_count in range(1, 6):
        size_for("BTCUSDC", 10.0 * expected_count)
        assert SizingDecision.objects.count() == expected_count


def test_chain_seq_and_hashes_per_symbol(fresh_snapshot):
    make_symbol("ETHUSDC")
    for symbol in ("BTCUSDC", "ETHUSDC", "BTCUSDC", "BTCUSDC", "ETHUSDC"):
        size_for(symbol, 100.0)
    for symbol, length in (("BTCUSDC", 3), ("ETHUSDC", 2)):
        rows = _chain(symbol)
        assert [row["seq"] for row in rows] == list(range(1, length + 1))
        assert rows[0]["prev_hash"] == ledger.GENESIS_HASH
        for previous, row in zip(rows, rows[1:]):
            assert row["prev_hash"] == previous["row_hash"]
        for row in rows:
            assert row["row_hash"] == ledger.row_hash(row)  # recomputed from what the database holds
            assert re.fullmatch(r"[0-9a-f]{64}", row["row_hash"])
        assert ledger.verify_chain(symbol, rows) == []
    assert len({row["row_hash"] for row in _chain("BTCUSDC") + _chain("ETHUSDC")}) == 5


def test_chain_detects_an_edited_value(fresh_snapshot):
    size_for("BTCUSDC", 100.0)
    size_for("BTCUSDC", 100.0)
    rows = _chain("BTCUSDC")
    rows[0]["final_size"] *= 2  # what a direct database edit would leave behind
    problems = ledger.verify_chain("BTCUSDC", rows)
    assert [problem.kind for problem in problems] == ["edited"]


def test_chain_continues_after_process_cache_is_lost(fresh_snapshot):
    from sizing_app.services.decisions import chain_heads

    size_for("BTCUSDC", 100.0)
    chain_heads.forget()  # a new worker process: the head is read back from the database
    size_for("BTCUSDC", 100.0)
    rows = _chain("BTCUSDC")
    assert [row["seq"] for row in rows] == [1, 2]
    assert rows[1]["prev_hash"] == rows[0]["row_hash"]


def test_a_stale_chain_head_loses_to_the_database_and_the_call_retries(fresh_snapshot, monkeypatch):
    from sizing_app.services import decisions

    size_for("BTCUSDC", 1.0)
    # This process believes the chain is empty (another writer appended since it last looked):
    # the fast-path INSERT of seq 1 is refused by the unique key and the call appends after the real head.
    monkeypatch.setattr(decisions.chain_heads, "get", lambda symbol: (0, ledger.GENESIS_HASH))
    size_for("BTCUSDC", 2.0)
    rows = _chain("BTCUSDC")
    assert [(row["seq"], row["gross_target"]) for row in rows] == [(1, 1.0), (2, 2.0)]
    assert ledger.verify_chain("BTCUSDC", rows) == []


def test_ledger_insert_is_seen_by_execute_wrappers(fresh_snapshot):
    # The INSERT runs on a driver cursor for speed; tracing and debug tools must still see it.
    seen = []

    def trace(execute, sql, params, many, context):
        seen.append(sql.lower())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(trace):
        size_for("BTCUSDC", 100.0)
        size_decide_batch([("BTCUSDC", 1.0, "a"), ("BTCUSDC", 2.0, "b")])
    assert sum(sql.startswith("insert into") for sql in seen) == 2


def test_a_connection_used_from_another_thread_is_refused_before_anything_is_written(fresh_snapshot):
    # Django refuses to use one thread's connection object from another unless told it may;
    # the ledger INSERT runs on a driver cursor, and must refuse too.
    import threading

    from django.db import connections

    callers_connection = connections["default"]
    callers_connection.ensure_connection()
    outcome = {}

    def size_in_another_thread():
        connections["default"] = callers_connection
        try:
            size_for("BTCUSDC", 1.0)
        except DatabaseError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=size_in_another_thread)
    worker.start()
    worker.join()
    assert "can only be used in that same thread" in str(outcome.get("error"))
    assert SizingDecision.objects.count() == 0


def test_decision_rows_are_append_only(fresh_snapshot):
    size_for("BTCUSDC", 100.0)
    row = only_row()
    row.final_size = 1e9
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        SizingDecision.objects.update(final_size=0.0)
    with pytest.raises(AppendOnlyError):
        SizingDecision.objects.filter(symbol="BTCUSDC").update(final_size=0.0)
    with pytest.raises(AppendOnlyError):
        SizingDecision.objects.all().delete()
    # bulk_update opens atomic(savepoint=False): give it a savepoint so the test transaction survives.
    with pytest.raises(AppendOnlyError), transaction.atomic():
        SizingDecision.objects.bulk_update([row], ["final_size"])
    assert SizingDecision.objects.get().final_size == stack(100.0)


def test_snapshot_rows_are_append_only(fresh_snapshot):
    fresh_snapshot.size_factor = 2.0
    with pytest.raises(AppendOnlyError):
        fresh_snapshot.save()
    with pytest.raises(AppendOnlyError):
        fresh_snapshot.delete()
    with pytest.raises(AppendOnlyError):
        SizingSnapshot.objects.update(size_factor=2.0)
    with pytest.raises(AppendOnlyError):
        SizingSnapshot.objects.filter(pk=fresh_snapshot.pk).delete()
    assert SizingSnapshot.objects.get().size_factor == FACTOR


def test_snapshot_unique_per_symbol_and_bucket(fresh_snapshot, btc):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_snapshot(btc, as_of=fresh_snapshot.as_of, size_factor=0.5)


def test_duplicate_chain_position_is_refused_by_the_database(fresh_snapshot):
    size_for("BTCUSDC", 100.0)
    fields = SizingDecision.objects.values().get()
    fields.pop("id")
    with pytest.raises(IntegrityError), transaction.atomic():
        SizingDecision(**fields).save()  # same (symbol, seq): two writers cannot fork the chain


@pytest.mark.parametrize("statement", ["UPDATE sizing_app_sizingdecision SET final_size = 0",
                                       "DELETE FROM sizing_app_sizingdecision",
                                       "UPDATE sizing_app_sizingsnapshot SET size_factor = 2.0",
                                       "DELETE FROM sizing_app_sizingsnapshot"])
def test_database_refuses_raw_updates_and_deletes(fresh_snapshot, statement):
    # DESIGN.md Ledger: refused "in the ORM and, on PostgreSQL, by the database" (triggers, migration
    # 0004, which also guards SQLite). Regression: at 1d89119 no trigger existed and raw SQL succeeded.
    size_for("BTCUSDC", 100.0)
    before = list(SizingDecision.objects.values_list("final_size", flat=True))
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert list(SizingDecision.objects.values_list("final_size", flat=True)) == before
    assert SizingSnapshot.objects.get().size_factor == FACTOR


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
        assert ledger.verify_chain(symbol, _chain(symbol)) == []


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


@pytest.mark.parametrize("journal_ref", ["", "0b6c3a52-8f0e-4d6e-9a51-2f4f3c1d7e90"])
def test_each_row_is_sent_as_its_hashed_text_plus_its_hash(journal_ref):
    """PostgreSQL's INSERT receives the canonical text the hash covers: every column, exactly once."""
    import json

    from sizing_app.services import decisions

    row = {"created_at": timezone.now(), "symbol": "BTCUSDC", "gross_target": 0.1, "inverse_vol_size": 1 / 3,
           "regime_multiplier": 0.9, "sharpe_multiplier": 1.1, "intel_factor": 2.0, "applied_factor": 2.0,
           "final_size": 1e-300, "snapshot_id": 7, "score": None, "mode": "live", "override_id": None,
           "stale": False, "fallback_reason": "", "order_ref": "Überweisung \"7\"", "caller": "注文",
           "journal_ref": journal_ref}
    (chained,), (text,) = decisions._chain([row], {"BTCUSDC": (4, "f" * 64)})
    sent = json.loads(text)
    assert set(sent) == set(decisions._INSERT_NAMES)
    assert sent == {**chained, "created_at": chained["created_at"].isoformat(timespec="microseconds")}
    assert chained["seq"] == 5 and chained["prev_hash"] == "f" * 64
    assert chained["row_hash"] == ledger.row_hash(chained)


def test_batch_continues_an_existing_chain(fresh_snapshot):
    size_for("BTCUSDC", 1.0)
    rows = size_decide_batch([("BTCUSDC", 2.0, "a"), ("BTCUSDC", 3.0, "b")])
    assert [row.seq for row in rows] == [2, 3]
    assert ledger.verify_chain("BTCUSDC", _chain("BTCUSDC")) == []


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
    assert [row["seq"] for row in _chain("BTCUSDC")] == [1, 2]


def test_empty_batch_writes_nothing():
    assert size_decide_batch([]) == []
    assert SizingDecision.objects.count() == 0
