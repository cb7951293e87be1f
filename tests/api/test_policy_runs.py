"""Policy (global and per-symbol mode), overrides, and recompute runs (list and trigger)."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from sizing_app import signal_generator
from sizing_app.api.views import runs as views
from sizing_app.models import GlobalPolicy, Override, RecomputeRun, Symbol
from sizing_app.recompute import tasks
from sizing_app.roles import DASHBOARD, ENGINE, RISK
from tests.factories import make_override


@pytest.fixture
def risk(clients):
    return clients[RISK]


def test_policy_read(clients, market):
    body = clients[DASHBOARD].get("/api/v1/policy/").json()
    assert body == {"global_mode": "live", "symbols": [{"symbol": "BTCUSDC", "mode": ""},
                                                        {"symbol": "ETHUSDC", "mode": ""},
                                                        {"symbol": "OLDUSDC", "mode": ""}]}


@pytest.mark.parametrize("method", ["put", "patch"])
def test_global_mode_change_takes_effect_and_is_kept_in_history(risk, clients, market, api_users, method):
    response = getattr(risk, method)("/api/v1/policy/", {"mode": "shadow"}, format="json")
    assert response.status_code == 200 and response.json()["global_mode"] == "shadow"
    assert GlobalPolicy.history.latest("history_id").history_user == api_users[RISK][0]
    sized = clients[ENGINE].post("/api/v1/size/", {"symbol": "BTCUSDC", "gross_target": 100}, format="json").json()
    assert sized["mode"] == "shadow" and sized["applied_factor"] == 1.0 and sized["intel_factor"] == 1.2


@pytest.mark.parametrize("body, field", [({}, "mode"), ({"mode": "on"}, "mode"), ({"mode": ""}, "mode"),
                                         ({"mode": None}, "mode"), ({"mode": ["live"]}, "mode"),
                                         ([], "non_field_errors")])
def test_global_mode_input_errors(risk, market, body, field):
    response = risk.put("/api/v1/policy/", body, format="json")
    assert response.status_code == 400 and field in response.json()["error"]["details"]
    assert not GlobalPolicy.objects.exists()


def test_symbol_mode(risk, market):
    response = risk.patch("/api/v1/policy/symbols/ETHUSDC/", {"mode": "off"}, format="json")
    assert response.json() == {"symbol": "ETHUSDC", "mode": "off"}
    assert Symbol.objects.get(name="ETHUSDC").mode == "off"
    assert risk.patch("/api/v1/policy/symbols/ETHUSDC/", {"mode": ""}, format="json").json()["mode"] == ""
    assert risk.patch("/api/v1/policy/symbols/ETHUSDC/", {"mode": "loud"}, format="json").status_code == 400
    for symbol in ("NOPEUSDC", "eth", "%3Cb%3E"):
        response = risk.patch(f"/api/v1/policy/symbols/{symbol}/", {"mode": "off"}, format="json")
        assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_symbol"


def test_override_create_list_and_revoke(risk, clients, market, api_users):
    expires = timezone.now() + timedelta(hours=1)
    response = risk.post("/api/v1/overrides/", {"symbol": "BTCUSDC", "pinned_factor": 0.5, "reason": "incident",
                                                "expires_at": expires.isoformat()}, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["active"] is True and created["author"] == "risk" and created["pinned_factor"] == 0.5
    sized = clients[ENGINE].post("/api/v1/size/", {"symbol": "BTCUSDC", "gross_target": 100}, format="json").json()
    assert sized["intel_factor"] == 0.5 and sized["override_id"] == created["id"]

    old = make_override(market["eth"], mode="off", author=api_users[RISK][0], revoked_at=timezone.now())
    listed = clients[DASHBOARD].get("/api/v1/overrides/").json()
    assert [(row["id"], row["active"]) for row in listed["results"]] == [(created["id"], True), (old.pk, False)]

    for query in ("limit=0", "limit=501", "offset=-1", "offset=null", "limit="):
        assert clients[DASHBOARD].get(f"/api/v1/overrides/?{query}").status_code == 400
    assert len(clients[DASHBOARD].get("/api/v1/overrides/?limit=1&offset=1").json()["results"]) == 1

    revoked = risk.post(f"/api/v1/overrides/{created['id']}/revoke/").json()
    assert revoked["active"] is False and revoked["revoked_at"] is not None
    again = risk.post(f"/api/v1/overrides/{created['id']}/revoke/")
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked["revoked_at"]
    assert risk.post("/api/v1/overrides/999999/revoke/").status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"symbol": "BTCUSDC", "reason": "x"}, None),  # neither factor nor mode: the service says why
    ({"symbol": "BTCUSDC", "pinned_factor": 5.0, "reason": "x"}, None),
    ({"symbol": "BTCUSDC", "pinned_factor": 0.5, "reason": "   "}, "reason"),
    ({"symbol": "BTCUSDC", "pinned_factor": 0.5}, "reason"),
    ({"symbol": "NOPEUSDC", "pinned_factor": 0.5, "reason": "x"}, None),
    ({"symbol": "BTCUSDC", "pinned_factor": "NaN", "reason": "x"}, "pinned_factor"),
    ({"symbol": "BTCUSDC", "mode": "loud", "reason": "x"}, "mode"),
    ({"symbol": "BTCUSDC", "mode": "off", "reason": "x", "expires_at": "2001-01-01T00:00:00Z"}, None),
    ({"symbol": "BTCUSDC", "mode": "off", "reason": "x", "expires_at": "soon"}, "expires_at"),
])
def test_override_input_errors(risk, market, body, field):
    response = risk.post("/api/v1/overrides/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    if field:
        assert field in error["details"]
    else:
        assert error["details"] is None and error["message"]
    assert not Override.objects.exists()


# Runs ---------------------------------------------------------------------------------------------
def test_runs_list_newest_first(clients, market):
    now = timezone.now()
    runs = [RecomputeRun.objects.create(trigger="manual", as_of=now, started_at=now - timedelta(minutes=i),
                                        status="ok") for i in range(3)]
    body = clients[DASHBOARD].get("/api/v1/runs/?page_size=2").json()
    rest = clients[DASHBOARD].get(body["next"]).json()["results"]
    assert [row["id"] for row in body["results"] + rest] == [run.pk for run in reversed(runs)]
    assert clients[DASHBOARD].get("/api/v1/runs/?status=failed").json()["results"] == []
    assert clients[DASHBOARD].get("/api/v1/runs/?status=nope").status_code == 400


def test_trigger_queues_a_recompute(risk, market):
    with mock.patch.object(tasks.recompute, "apply_async", return_value=mock.Mock(id="abc")) as queued:
        response = risk.post("/api/v1/runs/")
    assert response.status_code == 202
    assert response.json() == {"message": "Recompute queued.", "task_id": "abc"}
    assert queued.call_args.kwargs["kwargs"] == {"trigger": "api"}


def test_trigger_with_the_broker_down_is_a_503(risk, market):
    with mock.patch.object(tasks.recompute, "apply_async", side_effect=OperationalError("connection refused")):
        response = risk.post("/api/v1/runs/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"


def test_trigger_against_an_unreachable_broker_is_a_503(risk, market):
    """A real connection attempt to a dead port, with the view's own timeouts and bounded retry policy."""
    from project.celery import app

    connect = app.connection_for_write
    opened = []

    def to_a_dead_port(url=None, **kwargs):
        if "transport_options" not in kwargs:  # the app's own pool (send_task reads its driver type): untouched
            return connect(url, **kwargs)
        opened.append(connect("redis://127.0.0.1:1/0", **kwargs))  # nothing listens on port 1
        return opened[-1]

    started = timezone.now()
    with mock.patch.object(app, "connection_for_write", to_a_dead_port):
        response = risk.post("/api/v1/runs/")
    assert (timezone.now() - started).total_seconds() < 2
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    (broker,) = opened
    assert broker.transport_options["socket_timeout"] == views.BROKER_PUBLISH_TRANSPORT_OPTIONS["socket_timeout"]


def test_execution_health(clients, market):
    signal_generator.size_decide("BTCUSDC", 1.0)
    body = clients[ENGINE].get("/api/v1/execution-health/").json()
    assert set(body["symbols"]) == {"BTCUSDC", "ETHUSDC"}
    one = clients[ENGINE].get("/api/v1/execution-health/BTCUSDC/").json()
    assert one["sizing"]["intel_size_factor"] == 1.2 and one["sizing"]["mode"] == "live"
    assert clients[ENGINE].get("/api/v1/execution-health/NOPEUSDC/").status_code == 404
    assert clients[ENGINE].get("/api/v1/execution-health/x/").status_code == 404
