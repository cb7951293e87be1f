"""Shared fixtures: every test may use the database, and starts with an empty hot state."""
import pytest
from django.conf import settings

from sizing_app.latest import hot_state
from sizing_app.services.decisions import chain_heads
from tests.integration.conftest import real_process_collection_finish, real_process_unconfigure

# Registered here, at the root, so that tests/integration and tests/faults (real worker, beat and
# server processes on a test database other processes can open) work when run alone or together.
pytest_collection_finish = real_process_collection_finish
pytest_unconfigure = real_process_unconfigure

# Tests read the hot state inline: a background thread cannot see a test's uncommitted rows.
settings.SIZING_BACKGROUND_REFRESH = False
# No collectstatic manifest in tests, and a fast hasher: test speed, not production settings.
settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
