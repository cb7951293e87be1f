"""The OpenAPI contract: it validates, covers every endpoint, and holds under fuzzing against a live server.

Schemathesis runs as a subprocess against pytest-django's live server once per role (and superuser),
with every check except positive_data_acceptance: schema-valid input is legitimately refused here
(an unknown symbol, a conflicting re-post, an order moving backwards), so a 4xx for it is no defect.
Bounded by SCHEMATHESIS_MAX_EXAMPLES (default 10) and a fixed SCHEMATHESIS_SEED for reproducible CI.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import requests
import yaml
from django.core.management import call_command
from django.urls import URLPattern

from sizing_app.api.permissions import ACCESS
from sizing_app.recompute import tasks
from sizing_app.roles import ROLES

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))  # per operation, superuser run
ROLE_MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_ROLE_MAX_EXAMPLES", "5"))  # per operation, role runs
SEED = os.environ.get("SCHEMATHESIS_SEED", "20251123")
EXCLUDED_CHECKS = "positive_data_acceptance"


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("schema") / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_schema_validates_without_warnings(schema):
    assert schema["openapi"].startswith("3.")


def _api_routes() -> set[str]:
    from sizing_app.api import urls

    routes = set()
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        view_class = getattr(pattern.callback, "view_class", None)
        if view_class is None or view_class.operations.get("GET") in ("schema", "docs"):
            continue
        route = "/api/v1/" + str(pattern.pattern).replace("<str:", "{").replace("<id64:pk>", "{id}").replace(">", "}")
        routes.add(route)
    return routes


def test_schema_describes_every_endpoint(schema):
    assert set(schema["paths"]) == _api_routes()
    operation_ids = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    assert operation_ids - {"policy_global_replace"} == set(ACCESS) - {"schema", "docs"}


def test_operation_descriptions_are_their_views_own(schema):
    """No operation is described by a docstring inherited from the API's base classes (notes for maintainers)."""
    from sizing_app.api.views import base as views

    internal = {views.CachedAllowMixin.__doc__, views.StrictQueryMixin.__doc__}
    descriptions = [op.get("description", "") for item in schema["paths"].values() for op in item.values()]
    assert not [text for text in descriptions for note in internal if note and note.strip()[:40] in text]
    assert any(descriptions)  # the views that have docstrings keep them


def test_every_operation_documents_auth_and_its_errors(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "403", "429"} <= set(responses), (method, path)
            assert any(code.startswith("2") for code in responses), (method, path)
            assert operation["security"] == [{"tokenAuth": []}, {"cookieAuth": []}]
            if method in ("post", "put", "patch"):
                assert {"400", "413", "415"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            for code, response in responses.items():
                if not code.startswith("2"):
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "503" in schema["paths"]["/api/v1/runs/"]["post"]["responses"]


def test_bulk_bodies_document_their_row_limits(schema):
    for path in ("/api/v1/fills/", "/api/v1/orders/", "/api/v1/candles/"):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["type"] == "array" and body["minItems"] == 1 and body["maxItems"] == 5000


# Fuzzing -------------------------------------------------------------------------------------------
def _ledger_guards(action: str) -> None:
    """Install or remove SQLite's append-only triggers (migration 0004's own functions)."""
    from django.apps import apps
    from django.db import connection

    if connection.vendor != "sqlite":
        return  # PostgreSQL's flush uses TRUNCATE, which the triggers leave alone
    guards = importlib.import_module("sizing_app.migrations.0004_append_only_triggers")

    def execute(sql, params=None):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    editor = SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name, execute=execute)
    getattr(guards, f"{action}_guards")(apps, editor)


@pytest.fixture(scope="module", autouse=True)
def restore_database_state(django_db_blocker):
    """The live-server tests end with a flush of every table: give back the role groups and triggers."""
    yield
    from django.contrib.auth.models import Group, Permission

    from sizing_app.roles import sync_role_groups

    with django_db_blocker.unblock():
        _ledger_guards("install")
        sync_role_groups(Group, Permission)


@pytest.fixture
def live_api(transactional_db, live_server, settings):
    """The live server with role users, market data, high throttle rates and a stand-in broker."""
    from django.contrib.auth.models import Group, Permission

    from sizing_app.roles import sync_role_groups
    from tests.fixtures.api import PRINCIPALS, make_api_user

    _ledger_guards("install")
    sync_role_groups(Group, Permission)  # an earlier flush may have emptied the groups
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "engine": "100000/min", "user": "100000/min", "anon": "100000/min"}}
    tokens = {name: make_api_user(name)[1] for name in PRINCIPALS[1:]}
    _fuzz_market()
    with mock.patch.object(tasks.recompute, "apply_async", return_value=mock.Mock(id="fuzz")):
        yield live_server.url, tokens
    _ledger_guards("remove")  # the flush after this test deletes ledger rows


def _fuzz_market():
    from datetime import timedelta

    from django.utils import timezone

    from sizing_app import signal_generator
    from tests.factories import make_override, make_snapshot, make_symbol, make_user

    now = timezone.now()
    btc = make_symbol("BTCUSDC")
    make_symbol("ETHUSDC")
    make_snapshot(btc, as_of=now - timedelta(minutes=5), size_factor=1.1)
    signal_generator.size_decide("BTCUSDC", 100.0, order_ref="seed")
    make_override(btc, pinned_factor=0.9, author=make_user("author"))


def fuzz_schema(text: str) -> dict:
    """The served schema, minus row limits above 20 (maxItems 5000 / 1000).

    Generating boundary arrays of 5001 rows takes minutes and proves nothing the unit tests
    (test_ingest.test_bulk_row_limit, test_sizing.test_batch_shape_errors) do not prove in milliseconds.
    """
    schema = yaml.safe_load(text)

    def trim(node):
        if isinstance(node, dict):
            if isinstance(node.get("maxItems"), int) and node["maxItems"] > 20:
                del node["maxItems"]
            for value in node.values():
                trim(value)
        elif isinstance(node, list):
            for value in node:
                trim(value)

    trim(schema)
    return schema


def _operations_for(principal: str) -> list[str]:
    if principal == "superuser":
        return []  # every operation
    allowed = sorted(op for op, roles in ACCESS.items() if principal in roles and op not in ("schema", "docs"))
    if "policy_global_update" in allowed:
        allowed.append("policy_global_replace")  # PUT policy/ shares PATCH's operation in the role table
    return allowed


@pytest.mark.slow
@pytest.mark.parametrize("principal", ["superuser", *ROLES])
def test_schemathesis_finds_nothing(live_api, principal, tmp_path):
    """No 5xx, no undocumented status, no response outside its schema, no schema-invalid input accepted.

    The superuser reaches every operation and runs every phase (coverage included: boundary values of
    each parameter and field); each role then fuzzes the operations it is allowed. Refusals per role
    are covered cell by cell in test_permissions.
    """
    base_url, tokens = live_api
    headers = {"Authorization": f"Token {tokens[principal]}"}
    # The CLI does not send --header when it loads the schema, so the test fetches it.
    response = requests.get(f"{base_url}/api/v1/schema/", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    schema_file = tmp_path / "schema.yaml"
    schema_file.write_text(yaml.safe_dump(fuzz_schema(response.text)))
    operations = _operations_for(principal)
    command = [
        str(SCHEMATHESIS), "run", str(schema_file), "--url", base_url,
        "--header", f"Authorization: Token {tokens[principal]}",
        "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
        "--max-examples", str(MAX_EXAMPLES if principal == "superuser" else ROLE_MAX_EXAMPLES),
        "--seed", SEED, "--workers", "1",
        "--phases", "examples,coverage,fuzzing,stateful" if principal == "superuser" else "examples,fuzzing",
        # Our token is the credential: a generated session cookie beside it would make ignored_auth
        # report "invalid auth accepted" although the token alone authenticated the request.
        "--generation-with-security-parameters", "false",
        "--generation-database", "none", "--request-timeout", "20", "--no-color",
        "--suppress-health-check", "all",
    ]
    if operations:
        command += ["--include-operation-id-regex", "^(" + "|".join(operations) + ")$"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert "Tested:" in output
