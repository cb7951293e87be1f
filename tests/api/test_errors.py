"""Malformed requests never get a 500, errors are always JSON, throttling and the token cache behave."""
from __future__ import annotations

import json
from unittest import mock

import pytest
from django.core.cache import caches
from django.test import Client
from rest_framework.authtoken.models import Token

from sizing_app.api import authentication, throttling
from sizing_app.api.views import docs, factors
from sizing_app.models import Fill, SizingDecision
from sizing_app.roles import DASHBOARD, ENGINE
from tests.fixtures.api import client_for


def assert_json_error(response, status: int, code: str | None = None):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    if code:
        assert body["error"]["code"] == code
    return body["error"]


@pytest.fixture
def engine(clients, market):
    return clients[ENGINE]


@pytest.mark.parametrize("body", ['{"symbol": "BTCUSDC", ', "{'symbol': 'BTCUSDC'}", '{"gross_target": NaN}',
                                  '{"gross_target": Infinity}', "\xff\xfe", "[" * 100_000,
                                  '{"gross_target": 1' + "0" * 5000 + "}"])
def test_malformed_json_is_a_400(engine, body):
    response = engine.post("/api/v1/size/", body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body,
                           content_type="application/json")
    assert_json_error(response, 400)
    assert not SizingDecision.objects.exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/xml", "application/octet-stream"])
def test_other_content_types_are_a_415(engine, content_type):
    response = engine.post("/api/v1/size/", b'{"symbol": "BTCUSDC", "gross_target": 1}', content_type=content_type)
    assert_json_error(response, 415, "unsupported_media_type")


def test_an_empty_body_names_the_missing_fields(engine):
    error = assert_json_error(engine.post("/api/v1/size/", content_type="application/json"), 400, "invalid")
    assert set(error["details"]) == {"symbol", "gross_target"}


def test_oversized_bodies_are_a_413(engine, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    rows = json.dumps([{"symbol": "BTCUSDC", "trade_id": f"t{i}"} for i in range(100)])
    assert_json_error(engine.post("/api/v1/fills/", rows, content_type="application/json"), 413, "payload_too_large")
    assert not Fill.objects.exists()


def test_oversized_form_posts_with_a_session_are_a_413(api_users, market, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = Client(raise_request_exception=False)
    client.force_login(api_users[ENGINE][0])
    response = client.post("/api/v1/size/", "a=" + "x" * 5000, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (403, 413, 415)  # refused one way or another, never a 500
    assert response["Content-Type"] == "application/json"


def test_odd_accept_headers_still_get_json(engine):
    for response in (engine.get("/api/v1/symbols/", HTTP_ACCEPT="application/xml"),
                     engine.get("/api/v1/symbols/", HTTP_ACCEPT="text/html;q=0.9, */*;q=0.1")):
        assert response.status_code == 200 and response["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["/api/v1/symbols/?format=xml", "/api/v1/factors/history/?symbl=BTCUSDC",
                                  "/api/v1/decisions/?order-ref=x", "/api/v1/size/?dry_run=1"])
def test_unknown_query_parameters_are_a_400(clients, market, path):
    client = clients["superuser"]
    response = client.post(path, {}, format="json") if "size" in path else client.get(path)
    error = assert_json_error(response, 400, "invalid")
    assert "Unknown query parameter" in str(error["details"])


def test_unknown_api_paths_are_json_404_and_other_paths_are_not(engine):
    assert_json_error(engine.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert_json_error(engine.get("/api/v2/symbols/"), 404, "not_found")
    assert "application/json" not in engine.get("/no-such-page/")["Content-Type"]


def test_unexpected_failures_are_a_json_500(api_users, market, monkeypatch):
    def explode(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr(factors.SymbolListView, "get", explode)
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Token {api_users[ENGINE][1]}")
    error = assert_json_error(client.get("/api/v1/symbols/"), 500, "server_error")
    assert "boom" not in error["message"]


def test_schema_and_docs_errors_are_json(clients, market):
    assert_json_error(clients["anonymous"].get("/api/v1/schema/"), 401)
    assert_json_error(clients["anonymous"].get("/api/v1/docs/"), 401)


def test_schema_formats(clients, market):
    assert clients[DASHBOARD].get("/api/v1/schema/")["Content-Type"].startswith("application/vnd.oai.openapi")
    as_json = clients[DASHBOARD].get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert json.loads(as_json.content)["openapi"].startswith("3.")


def test_docs_use_local_swagger_assets_when_installed(clients, market):
    page = clients[DASHBOARD].get("/api/v1/docs/").content.decode()
    if docs.SWAGGER_ASSETS is None:
        pytest.skip("drf-spectacular-sidecar not installed: Swagger UI comes from the CDN")
    assert "/api/v1/docs/assets/swagger-ui-dist/swagger-ui-bundle.js" in page
    asset = Client().get("/api/v1/docs/assets/swagger-ui-dist/swagger-ui.css")
    assert asset.status_code == 200
    assert Client().get("/api/v1/docs/assets/swagger-ui-dist/..%2F..%2F__init__.py").status_code == 404


def test_docs_run_no_inline_script_and_serve_their_start_up_script(clients, market):
    """Under the Content-Security-Policy (no inline scripts) Swagger UI starts from a script of its own."""
    response = clients[DASHBOARD].get("/api/v1/docs/")
    page = response.content.decode()
    assert "<script>" not in page and '<script src="/api/v1/docs/?script="' in page
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self' 'unsafe-inline'" in policy  # its template's <style>
    script = clients[DASHBOARD].get("/api/v1/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode() and "/api/v1/schema/" in script.content.decode()
    assert_json_error(clients["anonymous"].get("/api/v1/docs/?script="), 401)
    assert script["Cross-Origin-Resource-Policy"] == "same-origin"  # it holds the CSRF token: ours alone


def test_the_csrf_failure_page_keeps_its_own_style_and_nothing_else(db):
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403 and response["Content-Type"].startswith("text/html")
    directives = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert directives["style-src"] == "'self' 'unsafe-inline'" and directives["script-src"] == "'self'"


@pytest.mark.parametrize("path", ["/admin/login/", "/dashboard/", "/dashboard/BTCUSDC/", "/admin/"])
def test_every_page_carries_the_strict_content_security_policy(clients, market, path):
    response = clients[DASHBOARD].get(path, follow=True)
    assert response["Content-Type"].startswith("text/html")
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"


def test_api_data_carries_no_policy_of_its_own(clients, market):
    """JSON is no document: the policy is not built for the engine's calls (django-csp costs ~30 µs a response)."""
    response = clients[DASHBOARD].get("/api/v1/symbols/")
    assert response.status_code == 200 and "Content-Security-Policy" not in response


# Throttling ---------------------------------------------------------------------------------------
def _rates(settings, **rates):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"engine": None, "user": None, "anon": None, **rates}}


def test_throttled_requests_get_a_429_with_retry_after(clients, market, settings):
    _rates(settings, engine="3/min")
    statuses = [clients[ENGINE].get("/api/v1/symbols/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = clients[ENGINE].get("/api/v1/symbols/")
    error = assert_json_error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60 and error["details"]["retry_after"] > 0
    assert clients[DASHBOARD].get("/api/v1/symbols/").status_code == 200  # another user, another count


def test_each_user_has_its_own_count(clients, market, settings):
    _rates(settings, user="2/min")
    for _ in range(2):
        assert clients[DASHBOARD].get("/api/v1/symbols/").status_code == 200
    assert clients[DASHBOARD].get("/api/v1/symbols/").status_code == 429
    assert clients["risk"].get("/api/v1/symbols/").status_code == 200


def test_counts_live_in_the_shared_throttle_cache(clients, market, settings):
    _rates(settings, engine="100/min")
    clients[ENGINE].get("/api/v1/symbols/")
    cache = caches["throttle"]
    assert settings.CACHES["throttle"]["BACKEND"] != "django.core.cache.backends.locmem.LocMemCache"
    keys = [key for key in _cache_keys(cache) if ":engine:" in key]
    assert keys


def _cache_keys(cache):
    # FileBasedCache has no key listing: probe the key the throttle writes for this minute.
    import time

    from sizing_app.roles import ENGINE as role

    user_id = Token.objects.get(user__username=role).user_id
    key = f"rate:engine:{user_id}:60:{int(time.time() // 60)}"
    return [key] if cache.get(key) else []


class _Clock:
    """The throttle's clocks, moved by hand: a fixed wall-clock time mid-window and a monotonic one."""

    WALL = 1_800_000_030.0  # 30 s into a minute

    def __init__(self):
        self.seconds = 1000.0

    def monotonic(self) -> float:
        return self.seconds

    def time(self) -> float:
        return self.WALL


@pytest.fixture
def throttle_clock(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(throttling, "time", clock)
    return clock


def _broken_cache():
    broken = mock.Mock()
    broken.incr.side_effect = ConnectionError("redis down")
    return broken


def test_a_throttle_cache_outage_lets_the_request_through_and_counts_in_the_process(clients, market, settings,
                                                                                    throttle_clock):
    _rates(settings, engine="3/min")
    broken = _broken_cache()
    with mock.patch("sizing_app.api.throttling.caches", {"throttle": broken}):
        statuses = [clients[ENGINE].get("/api/v1/symbols/").status_code for _ in range(5)]
    # The first request finds the outage and is let through; then the process counts alone, refusing
    # only what its own count puts over the limit, without asking the cache (and waiting) again.
    assert statuses == [200, 200, 200, 429, 429]
    assert broken.incr.call_count == 1


def test_the_throttle_tries_the_cache_again_after_a_few_seconds_and_sends_its_counts_once_it_answers(
        clients, market, settings, throttle_clock):
    _rates(settings, engine="100/min")
    broken = _broken_cache()

    def get() -> int:
        return clients[ENGINE].get("/api/v1/symbols/").status_code

    with mock.patch("sizing_app.api.throttling.caches", {"throttle": broken}):
        assert get() == 200
        throttle_clock.seconds += throttling.CACHE_RETRY_SECONDS - 0.01
        assert get() == 200
        assert broken.incr.call_count == 1, "the cache was tried again before the retry period was over"
        throttle_clock.seconds += 0.02
        assert get() == 200
        assert broken.incr.call_count == 2
    throttle_clock.seconds += throttling.CACHE_RETRY_SECONDS
    assert get() == 200  # the real cache again
    user_id = Token.objects.get(user__username=ENGINE).user_id
    key = f"rate:engine:{user_id}:60:{int(_Clock.WALL // 60)}"
    assert caches["throttle"].get(key) == 4, "the counts of the outage were not sent once the cache answered"


def test_the_shared_cache_is_written_once_per_sync_period_not_once_per_request(clients, market, settings,
                                                                              throttle_clock):
    _rates(settings, engine="100/min")
    cache = mock.Mock(wraps=caches["throttle"])
    with mock.patch("sizing_app.api.throttling.caches", {"throttle": cache}):
        for _ in range(10):
            assert clients[ENGINE].get("/api/v1/symbols/").status_code == 200
        first_window = cache.incr.call_count + cache.add.call_count
        throttle_clock.seconds += throttling.SYNC_SECONDS
        assert clients[ENGINE].get("/api/v1/symbols/").status_code == 200
    assert first_window == 2  # incr finds no key, add creates it: the first request only
    assert cache.incr.call_count + cache.add.call_count == 3


# Token cache --------------------------------------------------------------------------------------
def test_tokens_are_cached_for_a_few_seconds_only(api_users, market, monkeypatch, django_assert_num_queries):
    key = api_users[ENGINE][1]
    client = client_for(key)
    assert client.get("/api/v1/factors/latest/").status_code == 200
    Token.objects.filter(key=key).delete()
    assert client.get("/api/v1/factors/latest/").status_code == 200  # still cached
    clock = authentication.time.monotonic() + authentication.TOKEN_CACHE_SECONDS + 0.1
    monkeypatch.setattr(authentication.time, "monotonic", lambda: clock)
    assert_json_error(client.get("/api/v1/factors/latest/"), 401, "authentication_failed")


def test_a_token_checked_before_a_database_outage_keeps_reading_from_memory(api_users, market, monkeypatch):
    from django.db import OperationalError
    from rest_framework.authentication import TokenAuthentication

    client = client_for(api_users[ENGINE][1])
    assert client.get("/api/v1/factors/latest/BTCUSDC/").status_code == 200  # the token is checked and cached

    def unreachable(self, key):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(TokenAuthentication, "authenticate_credentials", unreachable)
    start = authentication.time.monotonic()
    clock = {"now": start + authentication.TOKEN_CACHE_SECONDS + 1}  # past the cache's few seconds
    monkeypatch.setattr(authentication.time, "monotonic", lambda: clock["now"])
    assert client.get("/api/v1/factors/latest/BTCUSDC/").status_code == 200  # hot reads go on
    clock["now"] = start + authentication.TOKEN_OUTAGE_GRACE_SECONDS + 1
    response = client.get("/api/v1/factors/latest/BTCUSDC/")
    assert_json_error(response, 503, "service_unavailable")
    assert "nothing was written" in response.json()["error"]["message"]
    assert "ledger" not in response.json()["error"]["message"]  # a read: not a sizing message
    unknown = client_for("1" * 40).get("/api/v1/factors/latest/BTCUSDC/")  # never checked: no grace
    assert_json_error(unknown, 503, "service_unavailable")


def test_invalid_tokens_are_not_cached(api_users, market):
    client_for("0" * 40).get("/api/v1/symbols/")
    assert authentication.token_cache.get("0" * 40) is None
