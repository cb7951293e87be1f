"""API test fixtures: one user and token per role, clients for them, and a small market with snapshots."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from sizing_app.api.authentication import token_cache
from sizing_app.api.throttling import window_counter
from sizing_app.api.views import latest_json
from sizing_app.roles import ROLES
from tests.factories import make_snapshot, make_symbol

PRINCIPALS = ("anonymous", *ROLES, "superuser")


@pytest.fixture(autouse=True)
def fresh_api_state():
    """Each test starts with no remembered tokens and no throttle history."""
    token_cache.clear()
    window_counter.clear()
    latest_json.clear()
    caches["throttle"].clear()
    yield
    token_cache.clear()
    window_counter.clear()


def make_api_user(name: str):
    user = get_user_model().objects.create_user(username=name)  # no password: hashing is slow
    if name == "superuser":
        user.is_superuser = True
        user.save()
    else:
        user.groups.set([Group.objects.get(name=name)])
    return user, Token.objects.create(user=user).key


@pytest.fixture
def api_users(db) -> dict:
    """principal -> (user, token key); "anonymous" maps to (None, None)."""
    users = {"anonymous": (None, None)}
    for name in PRINCIPALS[1:]:
        users[name] = make_api_user(name)
    return users


def client_for(token: str | None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def clients(api_users) -> dict[str, APIClient]:
    return {name: client_for(token) for name, (_, token) in api_users.items()}


@pytest.fixture
def market(db):
    """BTCUSDC and ETHUSDC with a fresh snapshot each, and an inactive OLDUSDC without one."""
    now = timezone.now()
    btc, eth = make_symbol("BTCUSDC"), make_symbol("ETHUSDC")
    make_symbol("OLDUSDC", is_active=False)
    snapshots = {
        "BTCUSDC": make_snapshot(btc, as_of=now - timedelta(minutes=5), size_factor=1.2, score=0.4,
                                 components={"slippage": {"value": -3.0, "contribution": 0.1}}),
        "ETHUSDC": make_snapshot(eth, as_of=now - timedelta(minutes=5), size_factor=0.8, score=-0.3),
    }
    return {"btc": btc, "eth": eth, "snapshots": snapshots, "now": now}
