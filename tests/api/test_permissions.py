"""The role table, cell by cell: every endpoint and method against every role, anonymous and superuser.

Each allowed cell sends a valid request and expects the endpoint's success status; each refused cell
expects 401 (anonymous) or 403 and checks that nothing was written.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.urls import URLPattern
from django.utils import timezone

from sizing_app import signal_generator
from sizing_app.api import urls as api_urls
from sizing_app.api.permissions import ACCESS, EVERY_ROLE, PEOPLE, RolePermission
from sizing_app.models import Candle, Fill, GlobalPolicy, Order, Override, SizingDecision, Symbol
from sizing_app.recompute import tasks
from sizing_app.roles import COMPLIANCE, DASHBOARD, ENGINE, RISK, ROLES
from tests.factories import make_override
from tests.fixtures.api import PRINCIPALS

NOW = timezone.now()
FILL = {"symbol": "BTCUSDC", "trade_id": "t-1", "side": "buy", "qty": "0.5", "price": "100.25",
        "executed_at": (NOW - timedelta(hours=1)).isoformat()}
ORDER = {"symbol": "BTCUSDC", "client_order_id": "c-1", "side": "buy", "requested_qty": "1", "arrival_price": "100",
         "submitted_at": (NOW - timedelta(hours=1)).isoformat()}
CANDLE = {"symbol": "BTCUSDC", "interval": "1h", "open_time": "2025-01-01T00:00:00Z", "open": 100.0, "high": 101.0,
          "low": 99.0, "close": 100.5, "volume": 12.0}


@dataclass(frozen=True)
class Call:
    operation: str
    method: str
    path: str
    ok: int
    body: Any = None
    written: Callable[[], int] | None = None  # a count that a refused call must leave unchanged


CALLS = [
    Call("symbols_list", "get", "/api/v1/symbols/", 200),
    Call("factors_latest_list", "get", "/api/v1/factors/latest/", 200),
    Call("factors_latest_detail", "get", "/api/v1/factors/latest/BTCUSDC/", 200),
    Call("factors_history", "get", "/api/v1/factors/history/?symbol=BTCUSDC", 200),
    Call("decisions_list", "get", "/api/v1/decisions/", 200),
    Call("decisions_detail", "get", "/api/v1/decisions/{decision}/", 200),
    Call("size_create", "post", "/api/v1/size/", 201, {"symbol": "BTCUSDC", "gross_target": 100.0},
         lambda: SizingDecision.objects.count()),
    Call("size_batch_create", "post", "/api/v1/size/batch/", 201,
         {"orders": [{"symbol": "BTCUSDC", "gross_target": 1.0}, {"symbol": "ETHUSDC", "gross_target": 2.0}]},
         lambda: SizingDecision.objects.count()),
    Call("execution_health_list", "get", "/api/v1/execution-health/", 200),
    Call("execution_health_detail", "get", "/api/v1/execution-health/BTCUSDC/", 200),
    Call("fills_bulk_create", "post", "/api/v1/fills/", 200, [FILL], lambda: Fill.objects.count()),
    Call("orders_bulk_create", "post", "/api/v1/orders/", 200, [ORDER], lambda: Order.objects.count()),
    Call("candles_bulk_create", "post", "/api/v1/candles/", 200, [CANDLE], lambda: Candle.objects.count()),
    Call("runs_list", "get", "/api/v1/runs/", 200),
    Call("runs_trigger", "post", "/api/v1/runs/", 202),
    Call("policy_read", "get", "/api/v1/policy/", 200),
    Call("policy_global_update", "put", "/api/v1/policy/", 200, {"mode": "shadow"},
         lambda: GlobalPolicy.history.count()),
    Call("policy_global_update", "patch", "/api/v1/policy/", 200, {"mode": "off"},
         lambda: GlobalPolicy.history.count()),
    Call("policy_symbol_update", "patch", "/api/v1/policy/symbols/BTCUSDC/", 200, {"mode": "shadow"},
         lambda: Symbol.history.count()),
    Call("overrides_list", "get", "/api/v1/overrides/", 200),
    Call("overrides_create", "post", "/api/v1/overrides/", 201,
         {"symbol": "ETHUSDC", "pinned_factor": 0.5, "reason": "incident"}, lambda: Override.objects.count()),
    Call("overrides_revoke", "post", "/api/v1/overrides/{override}/revoke/", 200, None,
         lambda: Override.objects.filter(revoked_at__isnull=False).count()),
    Call("schema", "get", "/api/v1/schema/", 200),
    Call("docs", "get", "/api/v1/docs/", 200),
]

# The decided table, spelled out: a change to ACCESS must change this too.
EXPECTED_ACCESS = {
    "symbols_list": EVERY_ROLE, "factors_latest_list": EVERY_ROLE, "factors_latest_detail": EVERY_ROLE,
    "factors_history": EVERY_ROLE, "decisions_list": PEOPLE, "decisions_detail": PEOPLE,
    "size_create": {ENGINE}, "size_batch_create": {ENGINE}, "execution_health_list": EVERY_ROLE,
    "execution_health_detail": EVERY_ROLE, "fills_bulk_create": {ENGINE}, "orders_bulk_create": {ENGINE},
    "candles_bulk_create": {ENGINE}, "runs_list": {DASHBOARD, COMPLIANCE, RISK}, "runs_trigger": {RISK},
    "policy_read": {DASHBOARD, COMPLIANCE, RISK}, "policy_global_update": {RISK}, "policy_symbol_update": {RISK},
    "overrides_list": {DASHBOARD, COMPLIANCE, RISK}, "overrides_create": {RISK}, "overrides_revoke": {RISK},
    "schema": EVERY_ROLE, "docs": EVERY_ROLE,
}


def test_access_table_is_the_decided_one():
    assert {op: set(roles) for op, roles in ACCESS.items()} == {op: set(r) for op, r in EXPECTED_ACCESS.items()}


def test_every_routed_operation_is_in_the_table_and_tested():
    routed = set()
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        view_class = getattr(pattern.callback, "view_class", None)
        if view_class is None:
            continue  # docs_asset: static Swagger UI files, no data
        assert RolePermission in view_class.permission_classes, view_class
        operations = view_class.operations
        assert operations, view_class
        for method in operations:
            assert hasattr(view_class, method.lower()), (view_class, method)
        routed |= set(operations.values())
    assert routed == set(ACCESS)
    assert {call.operation for call in CALLS} == set(ACCESS)


def _expected(call: Call, principal: str) -> int:
    if principal == "anonymous":
        return 401
    if principal == "superuser" or principal in ACCESS[call.operation]:
        return call.ok
    return 403


@pytest.fixture
def fixtures_for_calls(market, api_users):
    decision = signal_generator.size_decide("BTCUSDC", 10.0, order_ref="seed")
    override = make_override(market["btc"], pinned_factor=0.9, author=api_users["risk"][0])
    return {"decision": decision.pk, "override": override.pk}


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("call", CALLS, ids=lambda call: f"{call.method.upper()} {call.operation}")
def test_role_matrix(call: Call, principal: str, clients, fixtures_for_calls):
    client = clients[principal]
    path = call.path.format(**fixtures_for_calls)
    before = call.written() if call.written else None
    with mock.patch.object(tasks.recompute, "apply_async", return_value=mock.Mock(id="task-1")) as queued:
        response = getattr(client, call.method)(path, call.body, format="json") if call.body is not None \
            else getattr(client, call.method)(path)
    expected = _expected(call, principal)
    assert response.status_code == expected, response.content[:300]
    if expected in (401, 403):
        body = response.json()
        assert set(body) == {"error"} and body["error"]["code"] in ("not_authenticated", "permission_denied")
        if call.written:
            assert call.written() == before
        assert not queued.called
    elif call.written:
        assert call.written() != before


def test_anonymous_is_asked_for_a_token(clients):
    response = clients["anonymous"].get("/api/v1/symbols/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_bad_tokens_are_refused_without_data(api_users, market):
    from tests.fixtures.api import client_for

    for token in ("0" * 40, "not a token", "x" * 500, "é" * 40):
        response = client_for("x").get("/api/v1/symbols/", HTTP_AUTHORIZATION=f"Token {token}")
        assert response.status_code == 401
        assert "BTCUSDC" not in response.content.decode()


def test_user_with_no_role_is_refused_everywhere(db, market):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from tests.fixtures.api import client_for

    user = get_user_model().objects.create_user("nobody")
    client = client_for(Token.objects.create(user=user).key)
    for path in ("/api/v1/symbols/", "/api/v1/factors/latest/", "/api/v1/schema/", "/api/v1/policy/"):
        assert client.get(path).status_code == 403


def test_several_roles_add_up(db, market):
    from django.contrib.auth.models import Group

    from tests.fixtures.api import client_for, make_api_user

    user, token = make_api_user(ENGINE)
    user.groups.add(Group.objects.get(name=COMPLIANCE))
    client = client_for(token)
    assert client.get("/api/v1/decisions/").status_code == 200  # from compliance
    assert client.post("/api/v1/size/", {"symbol": "BTCUSDC", "gross_target": 1.0}, format="json").status_code == 201


def test_roles_are_read_once_per_request(api_users, market, django_assert_num_queries):
    from tests.fixtures.api import client_for

    client = client_for(api_users[DASHBOARD][1])
    client.get("/api/v1/symbols/")  # token now cached, with its user
    with django_assert_num_queries(1):  # the symbols; no token, no group query on the cached user
        assert client.get("/api/v1/symbols/").status_code == 200


def test_session_users_have_their_role_and_csrf_is_enforced(api_users, market):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(api_users[RISK][0])
    assert client.get("/api/v1/policy/").status_code == 200
    response = client.put("/api/v1/policy/", {"mode": "shadow"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    client.get("/api/v1/policy/")
    engine = APIClient()
    engine.force_login(api_users[ENGINE][0])
    assert engine.get("/api/v1/policy/").status_code == 403


def test_methods_not_offered_answer_405_to_allowed_users(clients, market):
    assert clients[DASHBOARD].delete("/api/v1/symbols/").status_code == 405
    assert clients[DASHBOARD].options("/api/v1/symbols/").status_code == 405
    assert clients["anonymous"].delete("/api/v1/symbols/").status_code == 401


def test_every_role_is_covered():
    assert set(ROLES) == {ENGINE, DASHBOARD, COMPLIANCE, RISK}
