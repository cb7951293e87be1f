"""API tests start with no remembered tokens, throttle history or cached JSON (tests/fixtures/api.py)."""
import pytest


@pytest.fixture(autouse=True)
def _fresh_api_state(fresh_api_state):
    """Every test here, as if the process had just started."""
