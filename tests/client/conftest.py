"""Fixtures for the client's tests: a real gunicorn on the test database, a market on it, a token for it.

The integration suite's process machinery is reused (its fixtures re-exported here, as
tests/faults does): the `stack` environment names the session's test database, which SQLite
keeps in a file and PostgreSQL under a per-session name so that the server process can open it.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from sizing_client import SizingClient

from sizing_app.roles import sync_role_groups
from tests.factories import make_snapshot, make_symbol
from tests.fixtures.api import make_api_user
from tests.integration.conftest import (  # noqa: F401  (fixtures, found by name)
    required_services,
    stack,
)

from .live import LiveServer


@pytest.fixture(autouse=True)
def _empty_append_only_tables(empty_append_only_tables):
    """The live server commits ledger rows: every test here empties them (tests/conftest.py)."""


# SOLUSDC's snapshot moves the size at every step of the stack, so a wrong term shows in final_size.
SOL = {"size_factor": 1.68, "inverse_vol_multiplier": 0.8, "regime_multiplier": 1.1, "sharpe_multiplier": 1.2,
       "score": 0.9}
LIVE_TIMEOUT = 20.0  # seconds per read: generous for a loaded 2-core machine; the fault tests set their own


@pytest.fixture()
def market(transactional_db) -> dict:
    """Committed rows the server can see: SOLUSDC and BTCUSDC with fresh snapshots, OLDUSDC inactive,
    NEWUSDC active without a snapshot."""
    as_of = timezone.now() - timedelta(minutes=1)
    sol, btc = make_symbol("SOLUSDC"), make_symbol("BTCUSDC")
    make_symbol("OLDUSDC", is_active=False)
    make_symbol("NEWUSDC")
    return {"SOLUSDC": make_snapshot(sol, as_of=as_of, **SOL),
            "BTCUSDC": make_snapshot(btc, as_of=as_of, size_factor=0.8, score=-0.3)}


@pytest.fixture()
def tokens(transactional_db) -> dict[str, str]:
    """An API token per role the tests use (the role groups again: a transactional flush empties them)."""
    sync_role_groups(Group, Permission)
    return {role: make_api_user(role)[1] for role in ("engine", "dashboard")}


@pytest.fixture()
def server(stack, market, tokens, tmp_path: Path) -> Iterator[LiveServer]:  # noqa: F811  (stack: imported above)
    server = LiveServer(stack.env, cwd=stack.var_dir, log_dir=tmp_path, token=tokens["engine"]).start()
    yield server
    server.kill()


@pytest.fixture()
def sizing(server, tokens) -> Iterator[SizingClient]:
    """A client of the engine role with default retries, talking straight to the server."""
    with SizingClient(server.url, tokens["engine"], timeout=LIVE_TIMEOUT) as client:
        yield client
