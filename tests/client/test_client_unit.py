"""The client's retry and error logic against httpx.MockTransport: no server, no sleeping, no randomness.

A scripted transport answers each attempt in turn (a response, or a transport exception raised as
httpx raises it); FakeTime is the client's clock and sleep, MaxJitter its jitter source (always the
top of the window), so every wait is exact.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from sizing_client import (
    AuthenticationFailed,
    Decision,
    InvalidRequest,
    LatestFactor,
    NotFound,
    Order,
    OrderRefConflict,
    RetryEvent,
    RetryPolicy,
    ServerError,
    SizingClient,
    SizingUnavailable,
    Throttled,
    UnexpectedResponse,
    UnknownSymbol,
)

BASE = "http://sizing.test"
TOKEN = "tok-123"

DECISION = {
    "id": 7, "seq": 3, "created_at": "2025-01-02T03:04:05.123456Z", "symbol": "SOLUSDC", "gross_target": 1000.0,
    "inverse_vol_size": 800.0, "regime_multiplier": 1.1, "sharpe_multiplier": 1.2, "intel_factor": 1.68,
    "applied_factor": 1.68, "final_size": 1774.08, "mode": "live", "stale": False, "fallback_reason": "",
    "snapshot_id": 11, "score": 0.9, "override_id": None, "order_ref": "ord-1", "caller": "engine",
    "journal_ref": "", "prev_hash": "a" * 64, "row_hash": "b" * 64, "replayed": False,
}
LATEST = {
    "symbol": "SOLUSDC", "snapshot_id": 11, "as_of": "2025-01-02T03:00:00Z", "status": "ok", "score": 0.9,
    "size_factor": 1.68, "sharpe_7d": None, "atr_regime_ratio": 0.9, "components": {"slippage": {"value": -3.0}},
    "mode": "live", "override": {"id": 4, "pinned_factor": 0.5, "mode": "", "expires_at": None}, "stale": False,
    "fallback_reason": "", "intel_factor": 0.5, "applied_factor": 0.5, "inverse_vol_multiplier": 0.8,
    "regime_multiplier": 1.1, "sharpe_multiplier": 1.2, "total_multiplier": 0.528, "age_seconds": 65.5,
}


def error(status: int, code: str, message: str = "refused", details=None, headers=None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, "details": details}},
                          headers=headers)


UNAVAILABLE = error(503, "service_unavailable", "The ledger cannot record a decision now", headers={"Retry-After": "1"})


class FakeTime:
    """The client's clock and sleep: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class MaxJitter(random.Random):
    """Jitter at the top of its window, so the waits are exactly the backoff caps."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Script:
    """The transport: answers attempt i with steps[i] (a Response, an exception to raise, or a callable)."""

    def __init__(self, *steps: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]):
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.steps, f"attempt {len(self.requests)} was not expected: {request.method} {request.url}"
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step(request) if callable(step) else step

    def bodies(self) -> list[dict]:
        return [json.loads(request.content) for request in self.requests]


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake_time) -> Callable[..., tuple[SizingClient, Script, list[RetryEvent]]]:
    clients: list[SizingClient] = []

    def make(*steps, retry: RetryPolicy | None = None, **kwargs) -> tuple[SizingClient, Script, list[RetryEvent]]:
        script, events = Script(*steps), []
        client = SizingClient(BASE, TOKEN, transport=httpx.MockTransport(script), retry=retry, sleep=fake_time.sleep,
                              clock=fake_time.clock, rng=MaxJitter(), on_retry=events.append, **kwargs)
        clients.append(client)
        return client, script, events

    yield make
    for client in clients:
        client.close()


def ok(body=None, status: int = 201) -> httpx.Response:
    return httpx.Response(status, json=DECISION if body is None else body)


# --- requests and results ------------------------------------------------------------------------

def test_size_sends_the_token_and_the_body_and_returns_a_typed_decision(make_client):
    client, script, _ = make_client(ok({**DECISION, "added_later": {"x": 1}}))  # unknown fields are ignored
    decision = client.size("SOLUSDC", 1000.0, order_ref="ord-1")
    (request,) = script.requests
    assert (request.method, request.url) == ("POST", httpx.URL(f"{BASE}/api/v1/size/"))
    assert request.headers["Authorization"] == f"Token {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert script.bodies() == [{"symbol": "SOLUSDC", "gross_target": 1000.0, "order_ref": "ord-1",
                                "neutral_if_unknown": False}]
    assert isinstance(decision, Decision)
    assert decision.created_at == datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert (decision.id, decision.final_size, decision.override_id, decision.replayed) == (7, 1774.08, None, False)
    with pytest.raises(AttributeError):
        decision.final_size = 1.0  # frozen


def test_without_an_order_ref_none_is_sent_and_neutral_if_unknown_is_passed_on(make_client):
    client, script, _ = make_client(ok(), ok())
    client.size("SOLUSDC", 5, neutral_if_unknown=True)
    client.size("SOLUSDC", 5, order_ref="")  # empty is no order_ref, as on the service
    assert script.bodies() == [{"symbol": "SOLUSDC", "gross_target": 5, "neutral_if_unknown": True},
                               {"symbol": "SOLUSDC", "gross_target": 5, "neutral_if_unknown": False}]


def test_a_replay_is_a_decision_flagged_replayed(make_client):
    client, _, _ = make_client(ok({**DECISION, "replayed": True}, status=200))
    assert client.size("SOLUSDC", 1000.0, order_ref="ord-1").replayed is True


@pytest.mark.parametrize(("body", "complaint"), [
    ({k: v for k, v in DECISION.items() if k != "final_size"}, "no 'final_size' field"),
    ({**DECISION, "final_size": "1774.08"}, "final_size"),
    ({**DECISION, "stale": 0}, "stale"),
    ({**DECISION, "id": True}, "id"),
    ({**DECISION, "created_at": "yesterday"}, "created_at"),
    ([DECISION], "not a JSON object"),
])
def test_a_body_outside_the_contract_is_an_unexpected_response(make_client, body, complaint):
    client, _, _ = make_client(ok(body))
    with pytest.raises(UnexpectedResponse, match=complaint):
        client.size("SOLUSDC", 1000.0, order_ref="ord-1")


def test_a_success_that_is_not_json_is_an_unexpected_response(make_client):
    client, _, _ = make_client(httpx.Response(201, text="<html>proxy page</html>"))
    with pytest.raises(UnexpectedResponse, match="not JSON"):
        client.size("SOLUSDC", 1.0)


def test_gross_targets_json_cannot_carry_are_refused_before_sending(make_client):
    client, script, _ = make_client()
    for bad in (float("nan"), float("inf")):
        with pytest.raises(InvalidRequest, match="finite"):
            client.size("SOLUSDC", bad)
    with pytest.raises(InvalidRequest, match="JSON"):
        client.size("SOLUSDC", object())  # type: ignore[arg-type]
    assert script.requests == []


def test_decimal_gross_targets_are_sent_as_numbers(make_client):
    client, script, _ = make_client(ok())
    client.size("SOLUSDC", Decimal("12.5"))  # type: ignore[arg-type]
    assert script.bodies()[0]["gross_target"] == 12.5


def test_size_batch_sends_every_order_and_returns_decisions_in_order(make_client):
    second = {**DECISION, "id": 8, "order_ref": "b", "replayed": True}
    client, script, _ = make_client(ok([DECISION, second]))
    decisions = client.size_batch([Order("SOLUSDC", 1000.0, "ord-1"), ("BTCUSDC", 5.0, "b")], neutral_if_unknown=True)
    assert script.requests[0].url.path == "/api/v1/size/batch/"
    assert script.bodies() == [{"orders": [{"symbol": "SOLUSDC", "gross_target": 1000.0, "order_ref": "ord-1"},
                                           {"symbol": "BTCUSDC", "gross_target": 5.0, "order_ref": "b"}],
                                "neutral_if_unknown": True}]
    assert [(d.id, d.replayed) for d in decisions] == [(7, False), (8, True)]


def test_a_batch_answer_of_the_wrong_length_is_refused(make_client):
    client, _, _ = make_client(ok([DECISION]))
    with pytest.raises(UnexpectedResponse, match="2 decisions"):
        client.size_batch([("SOLUSDC", 1.0, "a"), ("SOLUSDC", 1.0, "b")])


def test_latest_factor_parses_the_override_and_quotes_the_symbol(make_client):
    client, script, _ = make_client(httpx.Response(200, json=LATEST), httpx.Response(200, json=[
        {**LATEST, "override": None, "brand_new_field": 1}]), error(404, "not_found"))
    latest = client.latest_factor("SOLUSDC")
    assert isinstance(latest, LatestFactor) and latest.override is not None
    assert (latest.override.id, latest.override.pinned_factor, latest.override.expires_at) == (4, 0.5, None)
    assert latest.components == {"slippage": {"value": -3.0}} and latest.sharpe_7d is None
    hash(latest)  # components (a dict) is kept out of the hash
    (listed,) = client.latest_factors()
    assert listed.override is None and listed.total_multiplier == 0.528
    with pytest.raises(NotFound):
        client.latest_factor("../admin")
    assert [request.url.raw_path for request in script.requests] == [
        b"/api/v1/factors/latest/SOLUSDC/", b"/api/v1/factors/latest/", b"/api/v1/factors/latest/..%2Fadmin/"]


# --- retries: when they are safe ------------------------------------------------------------------

def test_a_503_is_retried_after_the_retry_after_the_service_asks_for(make_client, fake_time):
    client, script, events = make_client(UNAVAILABLE, ok())
    assert client.size("SOLUSDC", 1000.0).id == 7  # even without an order_ref: a 503 recorded nothing
    assert len(script.requests) == 2
    assert fake_time.sleeps == [pytest.approx(1.0 + 0.2)]  # Retry-After 1 s + the first jitter window
    (event,) = events
    assert (event.attempt, event.status, event.delay) == (1, 503, fake_time.sleeps[0])
    assert "service_unavailable" in event.reason


def test_waits_grow_exponentially_up_to_the_cap_and_the_attempts_run_out(make_client, fake_time):
    bare = error(503, "service_unavailable")  # no Retry-After: the backoff alone
    client, script, _ = make_client(*[bare] * 5, retry=RetryPolicy(max_attempts=5, deadline=60, backoff_initial=0.5,
                                                                   backoff_max=1.5))
    with pytest.raises(SizingUnavailable, match="gave up after 5 attempt") as raised:
        client.size("SOLUSDC", 1000.0)
    assert fake_time.sleeps == [0.5, 1.0, 1.5, 1.5]
    assert (raised.value.attempts, raised.value.outcome_unknown, raised.value.status) == (5, False, 503)
    assert raised.value.code == "service_unavailable"
    assert isinstance(raised.value, RuntimeError) and len(script.requests) == 5


def test_the_deadline_ends_the_retries_before_any_wait_would_pass_it(make_client, fake_time):
    client, script, _ = make_client(*[UNAVAILABLE] * 10, retry=RetryPolicy(max_attempts=10, deadline=3.0))
    with pytest.raises(SizingUnavailable, match="deadline") as raised:
        client.size("SOLUSDC", 1000.0)
    assert fake_time.sleeps == [pytest.approx(1.2), pytest.approx(1.4)]  # a third (1.8 s) would end at 4.4 s > 3
    assert raised.value.attempts == len(script.requests) == 3


def test_each_attempt_s_timeouts_fit_in_what_is_left_of_the_deadline(make_client, fake_time):
    client, script, _ = make_client(UNAVAILABLE, ok(), retry=RetryPolicy(deadline=2.0), timeout=5.0,
                                    connect_timeout=0.5)
    client.size("SOLUSDC", 1.0)
    first, second = (request.extensions["timeout"] for request in script.requests)
    assert first == {"connect": 0.5, "read": 2.0, "write": 2.0, "pool": 2.0}
    assert second["read"] == pytest.approx(2.0 - 1.2) and second["connect"] == 0.5


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow SYN"),
                                     httpx.PoolTimeout("no free connection")], ids=lambda e: type(e).__name__)
def test_failures_before_sending_are_retried_even_without_an_order_ref(make_client, failure):
    client, script, events = make_client(failure, ok())
    assert client.size("SOLUSDC", 1000.0).id == 7
    assert len(script.requests) == 2 and "before the request was sent" in events[0].reason


AFTER_SENDING = [httpx.ReadTimeout("no answer"), httpx.WriteTimeout("stuck"), httpx.ReadError("reset"),
                 httpx.WriteError("broken pipe"), httpx.RemoteProtocolError("Server disconnected")]


@pytest.mark.parametrize("failure", AFTER_SENDING, ids=lambda e: type(e).__name__)
def test_a_lost_answer_without_an_order_ref_is_not_retried_and_says_why(make_client, fake_time, failure):
    client, script, events = make_client(failure)
    with pytest.raises(SizingUnavailable) as raised:
        client.size("SOLUSDC", 1000.0)
    assert len(script.requests) == 1 and fake_time.sleeps == [] and events == []
    assert raised.value.outcome_unknown is True and raised.value.attempts == 1
    assert "no order_ref" in str(raised.value) and "size the order twice" in str(raised.value)
    assert raised.value.__cause__ is failure


@pytest.mark.parametrize("failure", AFTER_SENDING, ids=lambda e: type(e).__name__)
def test_a_lost_answer_with_an_order_ref_is_retried_into_the_original(make_client, failure):
    client, script, _ = make_client(failure, ok({**DECISION, "replayed": True}, status=200))
    decision = client.size("SOLUSDC", 1000.0, order_ref="ord-1")
    assert decision.replayed is True and decision.id == 7
    assert [body["order_ref"] for body in script.bodies()] == ["ord-1", "ord-1"]


def test_an_empty_order_ref_does_not_make_a_retry_safe(make_client):
    client, script, _ = make_client(httpx.ReadTimeout("no answer"), httpx.ReadTimeout("no answer"))
    with pytest.raises(SizingUnavailable, match="no order_ref"):
        client.size("SOLUSDC", 1000.0, order_ref="")
    with pytest.raises(SizingUnavailable, match="not every order has one"):
        client.size_batch([("SOLUSDC", 1.0, "a"), ("SOLUSDC", 2.0, "")])
    assert len(script.requests) == 2


def test_an_order_ref_of_blanks_is_an_order_ref_the_service_keeps_as_given(make_client):
    client, script, _ = make_client(httpx.ReadTimeout("no answer"), ok({**DECISION, "replayed": True}, status=200))
    assert client.size("SOLUSDC", 1000.0, order_ref="   ").replayed is True
    assert [body["order_ref"] for body in script.bodies()] == ["   ", "   "]


def test_retries_used_up_after_a_lost_answer_leave_the_outcome_unknown(make_client):
    client, _, _ = make_client(httpx.ReadTimeout("no answer"), UNAVAILABLE, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(SizingUnavailable) as raised:
        client.size("SOLUSDC", 1000.0, order_ref="ord-1")
    assert raised.value.outcome_unknown is True  # the first attempt may be on the ledger: retry later, same ref


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_are_retried_only_with_an_order_ref(make_client, status):
    gateway = httpx.Response(status, text="Bad Gateway")
    client, script, _ = make_client(gateway)
    with pytest.raises(SizingUnavailable, match="no order_ref") as raised:
        client.size("SOLUSDC", 1000.0)
    assert raised.value.status == status and len(script.requests) == 1
    client, script, _ = make_client(gateway, ok())
    assert client.size("SOLUSDC", 1000.0, order_ref="ord-1").id == 7 and len(script.requests) == 2


def test_a_batch_is_retried_after_a_lost_answer_only_when_every_order_has_an_order_ref(make_client):
    client, script, _ = make_client(httpx.ReadTimeout("no answer"), ok([DECISION, DECISION]))
    assert len(client.size_batch([("SOLUSDC", 1.0, "a"), ("SOLUSDC", 2.0, "b")])) == 2
    assert len(script.requests) == 2
    client, script, _ = make_client(httpx.ReadTimeout("no answer"))
    with pytest.raises(SizingUnavailable, match="not every order has one"):
        client.size_batch([("SOLUSDC", 1.0, "a"), ("SOLUSDC", 2.0)])
    assert len(script.requests) == 1


def test_reads_are_always_retried(make_client):
    client, script, _ = make_client(httpx.ReadTimeout("no answer"), httpx.RemoteProtocolError("dropped"),
                                    httpx.Response(200, json=LATEST))
    assert client.latest_factor("SOLUSDC").symbol == "SOLUSDC" and len(script.requests) == 3


def test_no_retries_policy_tries_once(make_client):
    client, script, _ = make_client(UNAVAILABLE, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(SizingUnavailable, match="1 attempt"):
        client.size("SOLUSDC", 1.0)
    assert len(script.requests) == 1


# --- errors: one class per reaction, never retried ---------------------------------------------------

def test_an_unknown_symbol_is_its_own_error_with_the_service_s_message(make_client):
    message = "Unknown symbol 'ZZZUSDT': it is not registered, so it has no data to size from."
    client, script, _ = make_client(error(400, "unknown_symbol", "The request is invalid; see details.",
                                          {"symbol": [message]}))
    with pytest.raises(UnknownSymbol, match="not registered") as raised:
        client.size("ZZZUSDT", 1.0)
    assert raised.value.symbol == "ZZZUSDT" and raised.value.status == 400
    assert isinstance(raised.value, InvalidRequest) and isinstance(raised.value, ValueError)
    assert len(script.requests) == 1


@pytest.mark.parametrize(("symbol", "details"), [
    ("btc-usdc", {"symbol": ["A symbol is 2-32 upper-case letters or digits, e.g. BTCUSDC."]}),
    ("SOLUSDC", {"gross_target": ["gross_target must be a number, got '1'."]}),
    ("SOLUSDC", {"symbol": ["x"], "gross_target": ["y"]}),
    ("SOLUSDC", {"order_rf": ["Unknown field."]}),
    ("SOLUSDC", None),
])
def test_other_400s_are_invalid_requests_showing_the_details(make_client, symbol, details):
    client, _, _ = make_client(error(400, "invalid", "The request is invalid; see details.", details))
    with pytest.raises(InvalidRequest) as raised:
        client.size(symbol, 1.0)
    assert not isinstance(raised.value, UnknownSymbol)
    assert raised.value.details == details and raised.value.code == "invalid"
    if details:
        assert next(iter(details)) in str(raised.value)  # the field names reach the engine's log


def test_a_batch_s_unknown_symbol_names_the_symbol(make_client):
    details = {"orders": [{}, {"symbol": ["Symbol 'OLDUSDC' is inactive (not recomputed)"]}]}
    client, _, _ = make_client(error(400, "unknown_symbol", "see details", details),
                               error(400, "invalid", "see details", {"orders": [{}, {"gross_target": ["bad"]}]}))
    with pytest.raises(UnknownSymbol, match="inactive") as raised:
        client.size_batch([("SOLUSDC", 1.0, "a"), ("OLDUSDC", 1.0, "b")])
    assert raised.value.symbol == "OLDUSDC"
    with pytest.raises(InvalidRequest) as raised:
        client.size_batch([("SOLUSDC", 1.0, "a"), ("OLDUSDC", -1.0, "b")])
    assert not isinstance(raised.value, UnknownSymbol)


@pytest.mark.parametrize(("details", "decision_id"), [(None, None), ({"decision_id": 17}, 17)])
def test_a_conflict_carries_the_order_ref_and_the_decision_id_when_given(make_client, details, decision_id):
    client, script, _ = make_client(error(409, "order_ref_conflict", "order_ref 'ord-1' was already sized", details))
    with pytest.raises(OrderRefConflict, match="already sized") as raised:
        client.size("SOLUSDC", 2.0, order_ref="ord-1")
    assert (raised.value.order_ref, raised.value.decision_id, raised.value.status) == ("ord-1", decision_id, 409)
    assert isinstance(raised.value, ValueError) and len(script.requests) == 1


@pytest.mark.parametrize(("response", "expected", "check"), [
    (error(401, "not_authenticated"), AuthenticationFailed, lambda e: e.status == 401),
    (error(403, "permission_denied"), AuthenticationFailed, lambda e: e.code == "permission_denied"),
    (error(404, "no_snapshot", "SOLUSDC has no snapshot yet"), NotFound, lambda e: e.code == "no_snapshot"),
    (error(429, "throttled", details={"retry_after": 12.5}), Throttled, lambda e: e.retry_after == 12.5),
    (error(429, "throttled", headers={"Retry-After": "30"}), Throttled, lambda e: e.retry_after == 30.0),
    (error(500, "server_error"), ServerError, lambda e: e.status == 500),
    (httpx.Response(500, text="Internal Server Error"), ServerError, lambda e: e.code == "http_500"),
    (error(405, "method_not_allowed"), UnexpectedResponse, lambda e: e.status == 405),
    (error(409, "conflict"), UnexpectedResponse, lambda e: e.code == "conflict"),
], ids=["401", "403", "404", "429-details", "429-header", "500", "500-not-json", "405", "409-other"])
def test_every_status_maps_to_its_error_and_none_is_retried(make_client, fake_time, response, expected, check):
    client, script, _ = make_client(response)
    with pytest.raises(expected) as raised:
        client.latest_factor("SOLUSDC")
    assert check(raised.value)
    assert len(script.requests) == 1 and fake_time.sleeps == []


# --- configuration --------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "kwargs", "complaint"), [
    (("sizing.test", TOKEN), {}, "http://"),
    ((BASE, ""), {}, "token"),
    ((BASE, TOKEN), {"timeout": 0}, "positive"),
])
def test_a_misconfigured_client_is_refused_at_once(args, kwargs, complaint):
    with pytest.raises(ValueError, match=complaint):
        SizingClient(*args, **kwargs)


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"deadline": 0}, {"backoff_initial": 2, "backoff_max": 1}])
def test_a_retry_policy_that_cannot_work_is_refused(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(("header", "expected"), [("1", 1.0), ("0.25", 0.25), ("-3", 0.0), ("nan", None),
                                                  ("Wed, 21 Oct 2015 07:28:00 GMT", None), (None, None)])
def test_retry_after_is_read_as_seconds(make_client, fake_time, header, expected):
    headers = {"Retry-After": header} if header is not None else None
    client, _, _ = make_client(error(503, "service_unavailable", headers=headers), ok())
    client.size("SOLUSDC", 1.0)
    assert fake_time.sleeps == [pytest.approx((expected or 0.0) + 0.2)]


def test_the_token_never_shows_in_the_repr_and_a_closed_client_refuses_to_send(fake_time):
    script = Script(ok())
    with SizingClient(BASE, TOKEN, transport=httpx.MockTransport(script)) as client:
        assert TOKEN not in repr(client)
        client.size("SOLUSDC", 1.0)
    with pytest.raises(RuntimeError, match="closed"):
        client.size("SOLUSDC", 1.0)
