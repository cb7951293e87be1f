"""Shared fixtures: every test may use the database, and starts with empty per-process caches."""
import pytest

from sizing_app.latest import latest_cache, policy_cache
from sizing_app.services.decisions import chain_heads


@pytest.fixture(autouse=True)
def enable_db_access_for_all_tests(db):
    """The plan's tests call size_for, which writes its ledger row, without a db marker."""


@pytest.fixture(autouse=True)
def fresh_caches():
    for cache in (latest_cache, policy_cache):
        cache.invalidate()
    chain_heads.forget()
    yield
    for cache in (latest_cache, policy_cache):
        cache.invalidate()
    chain_heads.forget()
