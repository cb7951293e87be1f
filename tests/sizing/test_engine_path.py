"""The engine's path as an engine meets it: the factor it is told is the one applied, a retry never
sizes twice, one rule for bad input in every entry point, no size without its committed row.
"""
from __future__ import annotations

import io
import json
import math
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.backends.signals import connection_created
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sizing_app.models import GlobalPolicy, SizingDecision, Symbol
from sizing_app.policy import services as policy_service
from sizing_app.roles import ENGINE
from sizing_app.signal_generator import size_decide, size_decide_batch, size_for
from sizing_app.sizing.errors import OrderRefConflict, SizingInsideTransaction, SizingUnavailable, UnknownSymbol
from sizing_app.sizing.hot_state import hot_state
from tests.factories import make_override, make_snapshot, make_symbol
from tests.faults.hostile import fingerprint

# API tokens, throttle counts and cached JSON start empty in every test (tests/fixtures/api.py).
pytestmark = pytest.mark.usefixtures("fresh_api_state")

GROSS = 1000.0


@pytest.fixture
def engine(clients):
    return clients[ENGINE]


@pytest.fixture
def sol(db):
    """SOLUSDC with a fresh snapshot whose every step moves the size."""
    symbol = make_symbol("SOLUSDC")
    make_snapshot(symbol, as_of=timezone.now() - timedelta(minutes=1), size_factor=1.68, inverse_vol_multiplier=0.8,
                  regime_multiplier=1.1, sharpe_multiplier=1.2, score=0.9)
    return symbol


@pytest.fixture
def risk_user(api_users):
    return api_users["risk"][0]


# --- the latest factor is the factor size_for applies ------------------------------------------

POLICIES = {
    "live": {},
    "shadow_global": {"global_mode": "shadow"},
    "off_symbol": {"symbol_mode": "off"},
    "pinned": {"override": {"pinned_factor": 0.5}},
    "pinned_in_shadow": {"global_mode": "shadow", "override": {"pinned_factor": 0.5}},
    "override_mode_live_over_shadow": {"symbol_mode": "shadow", "override": {"mode": "live"}},
}


@pytest.mark.parametrize("stale", [False, True], ids=["fresh", "stale"])
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_latest_factor_is_what_size_for_applies(engine, sol, risk_user, policy, stale, settings):
    spec = POLICIES[policy]
    if "global_mode" in spec:
        policy_service.global_mode_set(mode=spec["global_mode"], user=risk_user)
    if "symbol_mode" in spec:
        policy_service.symbol_mode_set(symbol="SOLUSDC", mode=spec["symbol_mode"], user=risk_user)
    override = make_override(sol, **spec["override"]) if "override" in spec else None
    if stale:
        settings.SIZING_MAX_AGE_SECONDS = settings.SIZING_RECOMPUTE_SECONDS = 30  # the snapshot is 60 s old
    body = engine.get("/api/v1/factors/latest/SOLUSDC/").json()
    decision = size_decide("SOLUSDC", GROSS, order_ref=f"{policy}-{stale}")
    assert body["applied_factor"] == decision.applied_factor
    assert body["intel_factor"] == decision.intel_factor
    assert body["mode"] == decision.mode
    assert body["stale"] is decision.stale is stale
    assert body["fallback_reason"] == decision.fallback_reason
    assert (body["override"] or {}).get("id") == decision.override_id == (override.pk if override else None)
    assert (body["inverse_vol_multiplier"], body["regime_multiplier"], body["sharpe_multiplier"]) == (
        decision.inverse_vol_size / GROSS, decision.regime_multiplier, decision.sharpe_multiplier)
    assert body["total_multiplier"] == pytest.approx(decision.final_size / GROSS, rel=1e-15)
    assert body["size_factor"] == 1.68  # the persisted factor, whatever the policy
    listed = {row["symbol"]: row for row in engine.get("/api/v1/factors/latest/").json()}["SOLUSDC"]
    assert {key: value for key, value in listed.items() if key != "age_seconds"} == {
        key: value for key, value in body.items() if key != "age_seconds"}


def test_an_override_pinning_half_is_what_the_engine_reads(engine, sol):
    override = make_override(sol, pinned_factor=0.5)
    body = engine.get("/api/v1/factors/latest/SOLUSDC/").json()
    assert (body["intel_factor"], body["applied_factor"], body["mode"]) == (0.5, 0.5, "live")
    assert body["override"] == {"id": override.pk, "pinned_factor": 0.5, "mode": "", "expires_at": None}
    assert body["total_multiplier"] == pytest.approx(0.8 * 1.1 * 1.2 * 0.5, rel=1e-15)


def test_a_policy_change_elsewhere_reaches_the_latest_route_within_the_refresh(engine, sol, risk_user, monkeypatch):
    assert engine.get("/api/v1/factors/latest/SOLUSDC/").json()["mode"] == "live"
    # As if another process made the change: this one is not told, it must notice by polling.
    monkeypatch.setattr(hot_state, "invalidate", lambda: None)
    policy_service.global_mode_set(mode="shadow", user=risk_user)
    deadline = time.monotonic() + 1.0
    while (body := engine.get("/api/v1/factors/latest/SOLUSDC/").json())["mode"] != "shadow":
        assert time.monotonic() < deadline, "the policy change was not seen within 1 s"
        time.sleep(0.05)
    assert body["applied_factor"] == 1.0 and body["intel_factor"] == 1.68


# --- idempotent sizing ---------------------------------------------------------------------------

def test_a_repeated_order_ref_returns_the_original_decision_and_writes_nothing(sol):
    first = size_decide("SOLUSDC", GROSS, order_ref="ord-1", caller="engine-a")
    GlobalPolicy.objects.create(pk=1, mode="off")  # the size would differ now; the original stands
    again = size_decide("SOLUSDC", GROSS, order_ref="ord-1", caller="engine-a")
    assert (again.pk, again.final_size, again.row_hash) == (first.pk, first.final_size, first.row_hash)
    assert again.replayed is True and first.replayed is False
    assert size_for("SOLUSDC", GROSS, order_ref="ord-1", caller="engine-a") == first.final_size
    assert SizingDecision.objects.count() == 1


def test_the_same_order_ref_from_another_caller_is_another_order(sol):
    size_for("SOLUSDC", GROSS, order_ref="ord-1", caller="engine-a")
    size_for("SOLUSDC", GROSS, order_ref="ord-1", caller="engine-b")
    assert SizingDecision.objects.count() == 2


@pytest.mark.parametrize("changed", [{"gross_target": 999.0}, {"symbol": "BTCUSDC"}])
def test_a_repeated_order_ref_with_other_inputs_is_refused(sol, changed):
    make_symbol("BTCUSDC")
    first = size_decide("SOLUSDC", GROSS, order_ref="ord-1")
    before = fingerprint()
    request = {"symbol": "SOLUSDC", "gross_target": GROSS, **changed}
    with pytest.raises(OrderRefConflict, match="ord-1") as raised:
        size_for(request["symbol"], request["gross_target"], order_ref="ord-1")
    assert raised.value.decision_id == first.pk
    assert fingerprint() == before


def test_orders_without_order_ref_are_never_taken_for_repeats(sol):
    assert size_for("SOLUSDC", GROSS) == size_for("SOLUSDC", GROSS)
    assert SizingDecision.objects.count() == 2


def test_a_batch_returns_repeats_as_originals_and_records_only_new_orders(sol):
    first = size_decide("SOLUSDC", GROSS, order_ref="a")
    decisions = size_decide_batch([("SOLUSDC", GROSS, "a"), ("SOLUSDC", 5.0, "b")])
    assert [d.replayed for d in decisions] == [True, False]
    assert decisions[0].pk == first.pk
    assert SizingDecision.objects.count() == 2
    before = fingerprint()
    with pytest.raises(OrderRefConflict):
        size_decide_batch([("SOLUSDC", 1.0, "c"), ("SOLUSDC", 6.0, "b")])  # b was 5.0: nothing written
    with pytest.raises(ValueError, match="more than once"):
        size_decide_batch([("SOLUSDC", 1.0, "d"), ("SOLUSDC", 1.0, "d")])
    assert fingerprint() == before


def test_the_api_answers_a_retry_with_200_and_the_original(engine, sol):
    body = {"symbol": "SOLUSDC", "gross_target": GROSS, "order_ref": "ord-7"}
    created = engine.post("/api/v1/size/", body, format="json")
    retried = engine.post("/api/v1/size/", body, format="json")
    assert (created.status_code, retried.status_code) == (201, 200)
    assert created.json()["replayed"] is False and retried.json()["replayed"] is True
    assert {k: v for k, v in retried.json().items() if k != "replayed"} == {
        k: v for k, v in created.json().items() if k != "replayed"}
    conflict = engine.post("/api/v1/size/", {**body, "gross_target": 2.0}, format="json")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "order_ref_conflict"
    assert SizingDecision.objects.count() == 1


def test_the_batch_api_is_200_only_when_every_order_was_sized_before(engine, sol):
    orders = [{"symbol": "SOLUSDC", "gross_target": GROSS, "order_ref": ref} for ref in ("x", "y")]
    assert engine.post("/api/v1/size/batch/", {"orders": orders[:1]}, format="json").status_code == 201
    both = engine.post("/api/v1/size/batch/", {"orders": orders}, format="json")
    assert both.status_code == 201 and [row["replayed"] for row in both.json()] == [True, False]
    assert engine.post("/api/v1/size/batch/", {"orders": orders}, format="json").status_code == 200


# --- no size without its committed row -----------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_inside_a_callers_transaction_no_size_is_handed_out_and_no_row_kept(sol, empty_append_only_tables):
    handed_out = []
    with pytest.raises(RuntimeError, match="rolled back"):
        with transaction.atomic():
            Symbol.objects.filter(pk=sol.pk).update(capital_base=5.0)  # the caller's own work
            with pytest.raises(SizingInsideTransaction, match="transaction.atomic"):
                handed_out.append(size_for("SOLUSDC", GROSS, order_ref="in-tx"))
            with pytest.raises(SizingInsideTransaction):
                size_decide_batch([("SOLUSDC", GROSS, "in-tx-batch")])
            raise RuntimeError("the caller's transaction is rolled back")
    assert handed_out == [] and not SizingDecision.objects.exists()
    # After the commit, through on_commit, the same call sizes and records.
    with transaction.atomic():
        transaction.on_commit(lambda: handed_out.append(size_for("SOLUSDC", GROSS, order_ref="after")))
    assert handed_out == [SizingDecision.objects.get(order_ref="after").final_size]


def test_the_command_refuses_inside_a_transaction_like_the_python_api(sol):
    with transaction.atomic(), pytest.raises(CommandError, match="transaction.atomic"):
        call_command("size", "SOLUSDC", "10", stdout=io.StringIO())
    assert not SizingDecision.objects.exists()


@pytest.fixture
def role_groups(transactional_db):
    """The role groups migration 0003 made: a transactional test's flush removed them."""
    from django.contrib.auth.models import Group, Permission

    from sizing_app.roles import sync_role_groups

    sync_role_groups(Group, Permission)


def _set_read_only(db, on: bool) -> None:
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            cursor.execute(f"SET SESSION CHARACTERISTICS AS TRANSACTION {'READ ONLY' if on else 'READ WRITE'}")
        else:
            cursor.execute(f"PRAGMA query_only = {1 if on else 0}")


@contextmanager
def read_only_database():
    """The database refuses writes, as a standby does during a failover, on every connection opened meanwhile."""
    def on_connect(sender, connection, **kwargs):
        _set_read_only(connection, True)

    connection_created.connect(on_connect)
    _set_read_only(connection, True)
    try:
        yield
    finally:
        connection_created.disconnect(on_connect)
        _set_read_only(connection, False)


@pytest.mark.django_db(transaction=True)
def test_a_read_only_database_is_an_outage_and_sizing_recovers(role_groups, sol, clients, fresh_api_state, settings,
                                                               empty_append_only_tables):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}
    engine = clients[ENGINE]
    engine.get("/api/v1/factors/latest/SOLUSDC/")  # token and hot state warm: reads need no write
    with read_only_database():
        started = time.monotonic()
        with pytest.raises(SizingUnavailable, match="cannot be reached or is read-only"):
            size_for("SOLUSDC", GROSS)
        response = engine.post("/api/v1/size/", {"symbol": "SOLUSDC", "gross_target": GROSS}, format="json")
        assert time.monotonic() - started < 2.0
        assert response.status_code == 503 and response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "service_unavailable" and response["Retry-After"] == "1"
        assert engine.get("/api/v1/factors/latest/SOLUSDC/").status_code == 200  # reads still served
    assert not SizingDecision.objects.exists()
    assert size_for("SOLUSDC", GROSS) > 0 and SizingDecision.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_read_only_database_is_journaled_when_the_journal_is_on(sol, settings, tmp_path, empty_append_only_tables):
    settings.SIZING_JOURNAL_PATH = str(tmp_path / "ledger.jsonl")
    with read_only_database():
        size = size_for("SOLUSDC", GROSS, order_ref="ro-1")
        assert size_for("SOLUSDC", GROSS, order_ref="ro-1") == size  # a retry in the outage: journaled once
        assert len(json.loads((tmp_path / "ledger.jsonl").read_text())) == 1
    assert size_for("SOLUSDC", 1.0) > 0  # replays the journal first
    assert list(SizingDecision.objects.values_list("order_ref", flat=True).order_by("seq")) == ["ro-1", ""]
    assert size_for("SOLUSDC", GROSS, order_ref="ro-1") == size  # the replayed decision is the original
    assert SizingDecision.objects.count() == 2


# --- one rule for symbols ------------------------------------------------------------------------

def test_unknown_and_inactive_symbols_are_refused_in_every_entry_point(engine, sol):
    make_symbol("OLDUSDC", is_active=False)
    before = fingerprint()
    for symbol in ("ZZZUSDT", "OLDUSDC"):
        with pytest.raises(UnknownSymbol, match=symbol):
            size_for(symbol, 10.0)
        with pytest.raises(CommandError, match=symbol):
            call_command("size", symbol, "10", stdout=io.StringIO())
        response = engine.post("/api/v1/size/", {"symbol": symbol, "gross_target": 10.0}, format="json")
        assert response.status_code == 400 and symbol in response.json()["error"]["details"]["symbol"][0]
        batch = engine.post("/api/v1/size/batch/", {"orders": [{"symbol": symbol, "gross_target": 1.0}]},
                            format="json")
        assert batch.status_code == 400
    assert fingerprint() == before


def test_neutral_sizing_of_an_unknown_symbol_is_an_explicit_choice(engine, sol):
    assert size_for("ZZZUSDT", 10.0, neutral_if_unknown=True) == 10.0
    decision = SizingDecision.objects.get(symbol="ZZZUSDT")
    assert decision.fallback_reason == "unknown_symbol" and decision.applied_factor == 1.0
    assert Symbol.objects.get(name="ZZZUSDT").is_active  # registered: the ledger names only real symbols
    response = engine.post("/api/v1/size/", {"symbol": "NEWUSDT", "gross_target": 3.0, "neutral_if_unknown": True},
                           format="json")
    assert response.status_code == 201 and response.json()["final_size"] == 3.0
    make_symbol("OLDUSDC", is_active=False)
    out = io.StringIO()
    call_command("size", "OLDUSDC", "4", "--neutral-if-unknown", stdout=out)
    assert SizingDecision.objects.get(symbol="OLDUSDC").fallback_reason == "inactive_symbol"
    assert not Symbol.objects.get(name="OLDUSDC").is_active  # sized neutrally, not reactivated


# --- one rule for gross_target, the same in all three entry points -------------------------------

def _python(gross):
    try:
        size_for("SOLUSDC", gross)
    except ValueError as exc:
        return str(exc)
    return None


def _command(gross):
    try:
        # "--": argparse would take "-5e-324" for an option, as on a command line.
        call_command("size", "SOLUSDC", "--", gross if isinstance(gross, str) else repr(gross), stdout=io.StringIO())
    except CommandError as exc:
        return str(exc)
    return None


def _api(client, gross):
    response = client.post("/api/v1/size/", json.dumps({"symbol": "SOLUSDC", "gross_target": gross}),
                           content_type="application/json")
    if response.status_code == 201:
        return None
    assert response.status_code == 400, response.content
    return response.json()["error"]["details"]["gross_target"][0]


REFUSED = [1e-320, 5e-324, -1.0, -5e-324, 1e38, 1e16, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("gross", REFUSED, ids=repr)
def test_bad_gross_targets_are_refused_alike_and_nothing_is_written(engine, sol, gross):
    before = fingerprint()
    message = _python(gross)
    assert message is not None and message.startswith("gross_target")
    assert _command(gross) == message
    if math.isfinite(gross):  # JSON has no NaN or infinity (the parser refuses them: tests/api/test_errors.py)
        assert _api(engine, gross) == message
    assert fingerprint() == before


@pytest.mark.parametrize(("gross", "shown"), [(True, "True"), (False, "False"), ("100", "'100'"), ("lots", "'lots'"),
                                              (None, "None"), ([1.0], "a list"), ({"x": 1}, "a dict")])
def test_non_numbers_are_refused_alike(engine, sol, gross, shown):
    before = fingerprint()
    message = _python(gross)
    assert message == f"gross_target must be a number, got {shown}." and _api(engine, gross) == message
    assert fingerprint() == before


@settings(deadline=None, max_examples=60, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(gross=st.one_of(st.floats(), st.integers(min_value=-(10**20), max_value=10**20),
                       st.sampled_from([0.0, -0.0, 2.2250738585072014e-308, 2.225073858507201e-308, 1e15,
                                        1.0000000000000002e15, 5e-324])))
@example(gross=1e-320)
def test_the_three_entry_points_accept_and_refuse_the_same_gross_targets(engine, sol, gross):
    before = SizingDecision.objects.count()
    python = _python(gross)
    command = _command(gross)
    api = _api(engine, gross) if not (isinstance(gross, float) and not math.isfinite(gross)) else python
    assert python == command == api
    assert SizingDecision.objects.count() == before + (0 if python is not None else 3)


# --- the HTTP surface: unknown fields, missing slashes -------------------------------------------

def test_unknown_body_fields_are_a_400_naming_them(engine, sol):
    response = engine.post("/api/v1/size/", {"symbol": "SOLUSDC", "gross_target": 1.0, "order_rf": "x"},
                           format="json")
    assert response.status_code == 400
    assert "order_rf" in response.json()["error"]["details"]
    nested = engine.post("/api/v1/size/batch/", {"orders": [{"symbol": "SOLUSDC", "gross_target": 1.0, "qty": 2}]},
                         format="json")
    assert nested.status_code == 400 and "qty" in json.dumps(nested.json()["error"]["details"])
    assert not SizingDecision.objects.exists()


def test_a_route_without_its_trailing_slash_answers_as_the_route(engine, sol):
    created = engine.post("/api/v1/size", {"symbol": "SOLUSDC", "gross_target": 1.0}, format="json")
    assert created.status_code == 201 and created["Content-Type"] == "application/json"
    assert engine.get("/api/v1/factors/latest/SOLUSDC").json()["symbol"] == "SOLUSDC"
    missing = engine.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    wrong_method = engine.get("/api/v1/size")
    assert wrong_method.status_code == 405 and wrong_method["Content-Type"] == "application/json"
