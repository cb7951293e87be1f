"""Security: secrets from the environment, CSRF, no anonymous reads, an unchangeable record, security headers.

`manage.py check --deploy` with production settings is tests/test_deploy.py's; this file adds what it
cannot see: start-up without a secret, every routed URL crawled anonymously, every API route and admin
page tried as every role (superuser included) against the ledger and snapshots, every management command
run over an existing ledger, CSRF on session-authenticated writes, and the response headers production
settings produce.
"""
from __future__ import annotations

import io
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from sizing_app.models import RecomputeRun, SizingDecision, SizingSnapshot
from sizing_app.signal_generator import size_for
from tests.factories import make_override
from tests.fixtures.api import PRINCIPALS

from .hostile import assert_record_only_grew, fingerprint, record_rows

# API tokens, throttle counts and cached JSON start empty in every test (tests/fixtures/api.py).
pytestmark = pytest.mark.usefixtures("fresh_api_state")

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {"DEBUG": "false", "HTTPS": "true", "ALLOWED_HOSTS": "sizing.example.com"}


@pytest.fixture(autouse=True)
def unthrottled(settings):
    """No rate limits: hundreds of requests per test, and the throttle's file cache is shared with other runs."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}


def python(code: str, env_overrides: dict, tmp_path) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with the project's settings and exactly these environment overrides."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("SECRET_KEY", "DEBUG", "HTTPS", "ALLOWED_HOSTS", "DATABASE_URL")}
    env.update({"SIZING_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "project.settings",
                "PYTHONPATH": str(ROOT), **env_overrides})
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


# ---------------------------------------------------------------------------------------------
# Secrets come from the environment


def test_production_settings_refuse_to_start_without_a_secret_key_from_the_environment(tmp_path):
    result = python("import django; django.setup()", PRODUCTION, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set in the environment in production" in result.stderr
    assert not (tmp_path / "secret_key").exists()  # no key was made up and written to disk instead


def test_production_settings_use_the_environments_secret_key_and_write_none(tmp_path):
    key = secrets.token_urlsafe(64)
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    result = python(code, {**PRODUCTION, "SECRET_KEY": key}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key and not (tmp_path / "secret_key").exists()


def test_no_secret_is_committed_with_the_code():
    """Settings hold no literal key; the development key lives under var/, which git ignores."""
    settings_text = (ROOT / "project" / "settings.py").read_text()
    assert not re.search(r"SECRET_KEY\s*=\s*['\"]", settings_text)
    assert "var/" in (ROOT / ".gitignore").read_text().splitlines()
    assert not (ROOT / ".env").exists() or "SECRET_KEY" not in (ROOT / ".env").read_text()


# ---------------------------------------------------------------------------------------------
# Security headers with production settings

HEADERS_SCRIPT = r"""
import json, django
django.setup()
from django.conf import settings
from django.test import Client
# No collectstatic in a scratch directory: plain static storage, so pages render (headers are the point).
settings.STORAGES = {**settings.STORAGES,
                     "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
client = Client(HTTP_HOST="sizing.example.com", HTTP_X_FORWARDED_PROTO="https")
plain = Client(HTTP_HOST="sizing.example.com")
report = {}
for path in ("/admin/login/", "/api/v1/symbols/", "/api/v1/no-such-endpoint/", "/dashboard/"):
    response = client.get(path)
    report[path] = {"status": response.status_code, "headers": dict(response.headers),
                    "cookies": {name: dict(morsel) for name, morsel in response.cookies.items()}}
insecure = plain.get("/api/v1/symbols/")
report["http"] = {"status": insecure.status_code, "location": insecure.headers.get("Location", "")}
print(json.dumps(report))
"""


def test_production_responses_carry_the_security_headers(tmp_path):
    env = {**PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(64),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    result = python(HEADERS_SCRIPT, env, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["http"]["status"] == 301 and report["http"]["location"].startswith("https://")
    for path in ("/admin/login/", "/api/v1/symbols/", "/api/v1/no-such-endpoint/", "/dashboard/"):
        headers = {name.lower(): value for name, value in report[path]["headers"].items()}
        assert report[path]["status"] in (200, 302, 401, 404), (path, report[path]["status"])
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["referrer-policy"] == "same-origin", path
        assert headers["cross-origin-opener-policy"] == "same-origin", path
        assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload", path
    login_cookies = report["/admin/login/"]["cookies"]
    assert login_cookies["csrftoken"]["secure"] is True and login_cookies["csrftoken"]["samesite"] == "Lax"


def test_development_responses_still_set_the_non_transport_headers(client):
    response = client.get("/admin/login/")
    assert response["X-Content-Type-Options"] == "nosniff" and response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin" and response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response  # no HSTS over plain HTTP (HTTPS=false)


# ---------------------------------------------------------------------------------------------
# No URL is readable anonymously

def routed_patterns(patterns=None, prefix="", namespace=""):
    """(route text, namespaced URL name, pattern) for every URL pattern, includes expanded."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(part for part in (namespace, pattern.namespace) if part)
            yield from routed_patterns(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        else:
            assert isinstance(pattern, URLPattern)
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield prefix + str(pattern.pattern), name, pattern


# Sample values for each placeholder; a new kind of placeholder fails the test until it gets one.
ROUTE_SAMPLES = {"path": "1", "str": "BTCUSDC", "id64": "1", "int": "1", "": "1"}
REGEX_SAMPLES = {
    r"^(?P<app_label>auth|authtoken|django_celery_beat|sizing_app)/$": "sizing_app/",
    r"(?P<url>.*)$": "no-such-page/",
    r"^docs/assets/(?P<path>swagger-ui-dist/[A-Za-z0-9_.-]+)$": "docs/assets/swagger-ui-dist/swagger-ui.css",
    r"^(?P<symbol>[A-Z0-9]{2,32})/$": "BTCUSDC/",
    r"^([^/]+)/history/([^/]+)/$": "1/history/1/",
}


def sample_path(route: str) -> str:
    for regex, sample in REGEX_SAMPLES.items():
        if route.endswith(regex):
            return "/" + route[: -len(regex)] + sample
    assert "(" not in route and "^" not in route, f"no sample for the regex route {route!r}: add one"

    def fill(match):
        converter = match.group(1) or ""
        assert converter in ROUTE_SAMPLES, f"no sample for <{match.group(0)}> in {route!r}: add one"
        return ROUTE_SAMPLES[converter]

    return "/" + re.sub(r"<(?:(\w+):)?\w+>", fill, route)


# Anonymous GETs that may answer 200, each for a reason:
PUBLIC = {
    "admin:login": "the login form itself",
    "api-docs-asset": "Swagger UI's own JavaScript and CSS (a third-party package's static files, no data)",
}
# Answers that give nothing away: a login demand, a refusal, or a method the page does not serve.
REFUSED = (401, 403)


def test_every_routed_url_refuses_anonymous_reads(db, market):
    size_for("BTCUSDC", 1.0, order_ref="anonymous-must-not-see-this")
    client = Client(raise_request_exception=False)
    crawled = set()
    for route, name, _ in routed_patterns():
        path = sample_path(route)
        crawled.add(path)
        response = client.get(path)
        status = response.status_code
        if route == "admin/logout/":
            # Logging out takes a POST; a GET shows nothing (405) or sends back to the admin, which asks for a login.
            assert status == 405 or (status == 302 and response["Location"] == "/admin/"), (path, status)
        elif status in (301, 302):
            location = response["Location"]
            assert location.startswith("/admin/login/"), (path, location)
        elif name in PUBLIC and status == 200:
            pass
        else:
            assert status in REFUSED, (path, name, status, response.content[:200])
            if path.startswith("/api/"):
                assert response["Content-Type"] == "application/json"
        body = b"" if response.streaming else response.content
        assert b"anonymous-must-not-see-this" not in body and b"BTCUSDC" not in body or name in PUBLIC, path
    assert len(crawled) > 100  # the whole admin, API and dashboard, not a handful


def test_the_public_exceptions_still_exist_and_serve_what_they_claim(db):
    client = Client()
    assert client.get("/admin/login/").status_code == 200
    asset = client.get("/api/v1/docs/assets/swagger-ui-dist/swagger-ui.css")
    assert asset.status_code in (200, 404)  # 404 when the optional sidecar package is missing
    if asset.status_code == 200:
        assert asset["Content-Type"].startswith("text/css")
    assert client.get("/api/v1/docs/assets/swagger-ui-dist/../../../project/settings.py").status_code == 404


def test_anonymous_writes_are_refused_everywhere_in_the_api(db, market):
    client = APIClient()
    before = fingerprint()
    for route, name, _ in routed_patterns():
        if not route.startswith("api/v1/") or name == "api-docs-asset":
            continue
        path = sample_path(route)
        for method in ("post", "put", "patch", "delete"):
            response = getattr(client, method)(path, {"symbol": "BTCUSDC", "gross_target": 1, "mode": "off"},
                                               format="json")
            assert response.status_code in REFUSED, (method, path, response.status_code)
    assert fingerprint() == before


# ---------------------------------------------------------------------------------------------
# The record (ledger and snapshots) cannot be changed through any endpoint, page or command


@pytest.fixture
def record(market, api_users):
    """A ledger with rows on two chains, a snapshot per symbol, a run and an override."""
    for index in range(3):
        size_for("BTCUSDC", 100.0 + index, order_ref=f"btc-{index}")
    size_for("ETHUSDC", 50.0, order_ref="eth-0")
    now = timezone.now()
    run = RecomputeRun.objects.create(as_of=now, started_at=now)
    override = make_override(market["btc"], author=api_users["risk"][0], pinned_factor=1.5)
    return {"decision": SizingDecision.objects.order_by("id").first(), "snapshot": market["snapshots"]["BTCUSDC"],
            "run": run, "override": override}


TAMPER = {"id": 1, "seq": 1, "symbol": "BTCUSDC", "gross_target": 1e9, "final_size": 1e9, "size_factor": 2.0,
          "score": 4.0, "order_ref": "btc-0", "row_hash": "0" * 64, "mode": "live", "reason": "tamper",
          "orders": [{"symbol": "BTCUSDC", "gross_target": 1}]}


def test_no_api_route_changes_an_existing_ledger_or_snapshot_row_for_any_role(clients, record, monkeypatch):
    from sizing_app.recompute import tasks

    monkeypatch.setattr(tasks.recompute, "apply_async", lambda *a, **k: type("Result", (), {"id": "stub"})())
    before = record_rows()
    paths = []
    for route, name, _ in routed_patterns():
        if route.startswith("api/v1/") and name != "api-docs-asset":
            path = sample_path(route)
            paths.append(path)
            if "decisions/1/" in path:  # the real ids of the record too
                paths += [path.replace("/1/", f"/{record['decision'].pk}/")]
    for principal in PRINCIPALS:
        for path in paths:
            for method in ("post", "put", "patch", "delete"):
                response = getattr(clients[principal], method)(path, TAMPER, format="json")
                assert response.status_code != 500, (principal, method, path)
                if path.startswith(("/api/v1/decisions/", "/api/v1/factors/")):
                    assert response.status_code in (401, 403, 405), (principal, method, path, response.status_code)
                assert_record_only_grew(before, f"after {principal} {method.upper()} {path}")
    # Appends happened only where sizing is the operation, and only for the roles allowed to size.
    callers = set(SizingDecision.objects.exclude(pk__in=before["sizing_app.SizingDecision"]).values_list("caller",
                                                                                                         flat=True))
    assert callers <= {"engine", "superuser"}


def admin_client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_user(username="root", is_staff=True, is_superuser=True)


@pytest.mark.parametrize("model", ["sizingdecision", "sizingsnapshot", "recomputerun"])
def test_no_admin_page_changes_the_record_even_for_a_superuser(superuser, record, model):
    client = admin_client(superuser)
    row = {"sizingdecision": record["decision"], "sizingsnapshot": record["snapshot"],
           "recomputerun": record["run"]}[model]
    run_before = RecomputeRun.objects.values().get(pk=record["run"].pk)
    before = record_rows()
    base = f"/admin/sizing_app/{model}/"
    form = {"order_ref": "edited", "final_size": "1", "size_factor": "2", "status": "failed", "post": "yes",
            "_save": "Save", "action": "delete_selected", "_selected_action": [str(row.pk)], "index": "0"}
    assert client.get(base + "add/").status_code == 403
    assert client.post(base + "add/", form).status_code == 403
    for suffix in ("change/", "delete/"):
        assert client.post(f"{base}{row.pk}/{suffix}", form).status_code == 403, suffix
    assert client.get(f"{base}{row.pk}/delete/").status_code == 403
    for path in (base, f"{base}{row.pk}/", f"{base}{row.pk}/history/", f"{base}export.csv"):
        response = client.post(path, form)
        assert response.status_code in (200, 302, 403, 405), (path, response.status_code)
    changelist = client.get(base)
    assert changelist.status_code == 200
    html = changelist.content.decode()
    assert 'value="delete_selected"' not in html and 'name="action"' not in html
    assert_record_only_grew(before, f"after admin posts to {model}")
    assert RecomputeRun.objects.values().get(pk=record["run"].pk) == run_before


def test_no_admin_action_anywhere_deletes_or_edits_the_record(superuser, record):
    """Every admin registered for a recorded model offers no action at all (delete_selected included)."""
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = superuser
    for model in (SizingDecision, SizingSnapshot, RecomputeRun):
        model_admin = admin.site._registry[model]
        assert model_admin.get_actions(request) == {}, model
        assert not model_admin.has_change_permission(request, None) and not model_admin.has_delete_permission(request)
        assert not model_admin.has_add_permission(request)


def ledger_digest() -> dict[str, str]:
    return fingerprint(("sizing_app.SizingDecision", "sizing_app.SizingSnapshot"))


COMMAND_RUNS = {
    # command: argument lists to try (with the record in place); None entries mean "project command, see below"
    "size": [["BTCUSDC", "10", "--order-ref", "cli-1"], ["ETHUSDC", "0"]],
    "verify_ledger": [[], ["--symbol", "BTCUSDC"]],
    "recompute_factors": [[], ["--symbol", "ETHUSDC"]],
    "create_api_user": [["ops-1", "--role", "risk"], ["ops-1", "--role", "engine", "--superuser"]],
    "setup_periodic_tasks": [[], ["--reset-schedule"]],
    "import_candles": [["{candles}", "--symbol", "BTCUSDC", "--interval", "1h"]],
    "import_fills": [["{fills}"]],
    "import_symbols": [["{symbols}"]],
    "seed_demo": [["--symbols", "BTCUSDC,ETHUSDC", "--days", "2", "--history-hours", "1"]],
    "replay_journal": [[]],  # no journal configured in tests: refused; with one, it only appends
}


def test_every_project_command_leaves_existing_ledger_and_snapshot_rows_untouched(record, tmp_path):
    project_commands = {name for name, app in get_commands().items() if app == "sizing_app"}
    assert project_commands == set(COMMAND_RUNS), "a new command: add it to COMMAND_RUNS"
    candles = tmp_path / "candles.csv"
    candles.write_text("1700000000000,1,2,0.5,1.5,10,1700003599999,1,1,1,1,0\n")
    fills = tmp_path / "fills.csv"
    fills.write_text("symbol,trade_id,side,qty,price,executed_at\nBTCUSDC,cli-t1,buy,1,100,2024-01-01T00:00:00Z\n")
    symbols = tmp_path / "exchangeInfo.json"
    symbols.write_text('{"symbols": [{"symbol": "BTCUSDC", "baseAsset": "BTC", "quoteAsset": "USDC"}]}')
    before = record_rows()
    for command, runs in COMMAND_RUNS.items():
        for arguments in runs:
            arguments = [a.format(candles=candles, fills=fills, symbols=symbols) for a in arguments]
            try:
                call_command(command, *arguments, stdout=io.StringIO(), stderr=io.StringIO())
            except CommandError:
                pass  # refusing is fine; changing the record is not
            assert_record_only_grew(before, f"after manage.py {command} {' '.join(arguments)}")
    call_command("verify_ledger", stdout=io.StringIO())  # and every chain still verifies


# ---------------------------------------------------------------------------------------------
# CSRF on session-authenticated writes


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(user)
    return client


API_WRITES = [
    ("post", "/api/v1/size/", {"symbol": "BTCUSDC", "gross_target": 1}),
    ("post", "/api/v1/size/batch/", {"orders": [{"symbol": "BTCUSDC", "gross_target": 1}]}),
    ("post", "/api/v1/fills/", []), ("post", "/api/v1/orders/", []), ("post", "/api/v1/candles/", []),
    ("post", "/api/v1/runs/", {}), ("put", "/api/v1/policy/", {"mode": "off"}),
    ("patch", "/api/v1/policy/", {"mode": "off"}), ("patch", "/api/v1/policy/symbols/BTCUSDC/", {"mode": "off"}),
    ("post", "/api/v1/overrides/", {"symbol": "BTCUSDC", "mode": "off", "reason": "csrf"}),
    ("post", "/api/v1/overrides/1/revoke/", {}),
]


@pytest.mark.parametrize("method, path, body", API_WRITES)
def test_session_writes_to_the_api_without_a_csrf_token_are_refused(superuser, record, method, path, body):
    client = csrf_client(superuser)
    path = path.replace("/overrides/1/", f"/overrides/{record['override'].pk}/")
    before = fingerprint()
    response = getattr(client, method)(path, json.dumps(body), content_type="application/json")
    assert response.status_code == 403, (path, response.status_code, response.content[:200])
    assert "CSRF" in response.json()["error"]["message"]
    assert fingerprint() == before


def test_a_session_write_with_the_csrf_token_passes(superuser, record):
    """The 403s above are CSRF's: the same write with the token is accepted."""
    client = csrf_client(superuser)
    client.get("/admin/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.put("/api/v1/policy/", json.dumps({"mode": "shadow"}), content_type="application/json",
                          HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content[:200]


def test_token_authenticated_writes_need_no_csrf_token(api_users, market):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_users['risk'][1]}")
    assert client.put("/api/v1/policy/", {"mode": "shadow"}, format="json").status_code == 200


@pytest.mark.parametrize("path, form", [
    ("/admin/sizing_app/globalpolicy/add/", {"mode": "off"}),
    ("/admin/sizing_app/symbol/{btc}/change/", {"mode": "off"}),
    ("/admin/sizing_app/override/add/", {"symbol": "{btc}", "mode": "off", "reason": "csrf"}),
    ("/admin/sizing_app/override/", {"action": "revoke_overrides", "_selected_action": "{override}"}),
    ("/admin/logout/", {}),
    ("/admin/password_change/", {"old_password": "x", "new_password1": "y", "new_password2": "y"}),
])
def test_admin_posts_without_a_csrf_token_are_refused(superuser, record, market, path, form):
    values = {"btc": market["btc"].pk, "override": record["override"].pk}
    client = csrf_client(superuser)
    before = fingerprint()
    response = client.post(path.format(**values), {key: str(value).format(**values) for key, value in form.items()})
    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert fingerprint() == before
    assert client.get("/admin/").status_code == 200  # still logged in: the logout was refused too


def test_admin_login_without_a_csrf_token_is_refused(db):
    get_user_model().objects.create_user(username="person", password="correct horse battery", is_staff=True)
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "person", "password": "correct horse battery"})
    assert response.status_code == 403 and "_auth_user_id" not in client.session
