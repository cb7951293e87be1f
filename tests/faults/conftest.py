"""Fault tests: real processes (workers, beats, servers, engine clients) killed and restarted.

The process machinery is the integration suite's; its fixtures are re-exported here so both
folders start workers, beats and the test database the same way.

Engines (tests/faults/engine.py) reach PostgreSQL through a TCP proxy (tcp_proxy.py): SIGKILL to
the proxy drops their connections at once and refuses new ones, like a database host gone away.
"""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from sizing_app.recompute.service import recompute_run
from tests.integration.conftest import (  # noqa: F401  (fixtures, found by name)
    beats,
    celery_worker,
    make_market,
    recompute_interval,
    required_services,
    stack,
    worker,
)

from .engine import EngineProcess
from .tcp_proxy import ProxyProcess

NAMES = ["BTCUSDC", "ETHUSDC"]


@pytest.fixture(autouse=True)
def _empty_append_only_tables(empty_append_only_tables):
    """Real processes commit ledger and snapshot rows: every test here empties them (tests/conftest.py)."""


@pytest.fixture()
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): SQLite is a file, there is no connection to cut")


@pytest.fixture()
def snapshot_market():
    """BTCUSDC and ETHUSDC with candles and a fresh snapshot each."""
    make_market(NAMES)
    run = recompute_run(trigger="manual")
    assert run.symbols_ok == len(NAMES)
    return run


@pytest.fixture()
def engine_market(postgres, snapshot_market):
    """The snapshot market, for engines reaching PostgreSQL through the proxy."""
    return snapshot_market


@pytest.fixture()
def database_proxy(postgres):
    settings_dict = connection.settings_dict
    proxy = ProxyProcess(int(settings_dict["PORT"] or 5432), target_host=settings_dict["HOST"] or "127.0.0.1")
    proxy.start()
    yield proxy
    proxy.kill()


@pytest.fixture()
def engines(stack, database_proxy):  # noqa: F811  (the stack fixture, imported above to be found by name)
    """Start engine processes whose DATABASE_URL goes through the proxy; all killed after the test."""
    started: list[EngineProcess] = []

    def start(*, warm: bool = True, journal_path: str = "") -> EngineProcess:
        url = urlsplit(stack.env["DATABASE_URL"])
        through_proxy = urlunsplit(url._replace(netloc=f"{url.username or 'postgres'}"
                                                       f"{':' + url.password if url.password else ''}"
                                                       f"@127.0.0.1:{database_proxy.port}"))
        engine = EngineProcess({**stack.env, "DATABASE_URL": through_proxy, "SIZING_BACKGROUND_REFRESH": "true",
                                # No outage journal unless asked for: then sizing fails closed.
                                "SIZING_JOURNAL_PATH": journal_path, "SIZING_FAULT_ENGINE_WARM": "1" if warm else "0"},
                               log_path=stack.directory / f"engine-{len(started) + 1}.log")
        started.append(engine)
        return engine.start()

    yield start
    for engine in started:
        engine.kill()
