"""Shared fixtures: every test may use the database, and starts with an empty hot state."""
import atexit
import os
import shutil
import tempfile

import pytest
from django.conf import settings

from sizing_app.ledger.writer import chain_heads
from sizing_app.sizing.hot_state import hot_state
from tests.append_only import sqlite_empty_append_only_tables
from tests.integration.conftest import real_process_collection_finish, real_process_unconfigure

# Fixtures several packages use, defined once (requested by name; none is autouse).
pytest_plugins = ["tests.fixtures.api", "tests.fixtures.sizing"]

# Registered here, at the root, so that tests/integration and tests/faults (real worker, beat and
# server processes on a test database other processes can open) work when run alone or together.
pytest_collection_finish = real_process_collection_finish
pytest_unconfigure = real_process_unconfigure

# Tests read the hot state inline: a background thread cannot see a test's uncommitted rows.
settings.SIZING_BACKGROUND_REFRESH = False
# No collectstatic manifest in tests, and a fast hasher: test speed, not production settings.
settings.STORAGES = {**settings.STORAGES,
                     "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if not os.environ.get("THROTTLE_CACHE_URL"):
    # API rate counts in a directory of this run's own (the servers it starts inherit it): two runs
    # on one machine would otherwise share var/cache/throttle, counting each other's requests under
    # the same user ids and clearing each other's counts. (CI's PostgreSQL stage uses Redis.)
    _throttle_dir = tempfile.mkdtemp(prefix="sizing-test-throttle-")
    atexit.register(shutil.rmtree, _throttle_dir, ignore_errors=True)
    os.environ["THROTTLE_CACHE_URL"] = f"filecache://{_throttle_dir}?max_entries=10000"  # as the default's
    settings.CACHES["throttle"] = {**settings.CACHES["throttle"], "LOCATION": _throttle_dir}


@pytest.fixture(autouse=True)
def enable_db_access_for_all_tests(db):
    """The plan's tests call size_for, which writes its ledger row, without a db marker."""


@pytest.fixture(autouse=True)
def fresh_caches():
    hot_state.reset()
    chain_heads.forget()
    yield
    hot_state.reset()
    chain_heads.forget()


@pytest.fixture
def empty_append_only_tables():
    """Empty the ledger tables before pytest-django flushes the database after a transactional test.

    On SQLite migration 0004 guards them with BEFORE DELETE triggers, and flush empties tables
    with DELETE, so it would fail on the rows the test committed. PostgreSQL flushes with
    TRUNCATE, which the guard deliberately lets through. Lift, delete, restore: one transaction.
    """
    yield
    sqlite_empty_append_only_tables()
