"""Policy services: every change is on record with its author, bad input writes nothing, and sizing obeys at once.

The hot state's poll is pushed out to an hour here, so a change can only show up in sizing
through the services' own invalidation, as it must for "instant in this process".
"""
from __future__ import annotations

import math
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from sizing_app.models import GlobalPolicy, Override, Symbol
from sizing_app.policy.services import global_mode_set, override_create, override_revoke, symbol_mode_set
from sizing_app.signal_generator import size_decide
from sizing_app.sizing.hot_state import hot_state
from tests.factories import make_snapshot, make_symbol, make_user

PERSISTED_FACTOR = 1.5  # the snapshot's factor; the stack is neutral, so live sizes 100 -> 150


@pytest.fixture(autouse=True)
def no_polling(monkeypatch):
    monkeypatch.setattr(hot_state, "refresh_seconds", 3600.0)


@pytest.fixture
def btc():
    symbol = make_symbol("BTCUSDC")
    make_snapshot(symbol, size_factor=PERSISTED_FACTOR, score=1.0)
    return symbol


@pytest.fixture
def alice():
    return make_user("alice")


@pytest.fixture
def bob():
    return make_user("bob")


def sized(symbol: str = "BTCUSDC"):
    decision = size_decide(symbol, 100.0)
    return decision.mode, decision.intel_factor, decision.applied_factor, decision.final_size, decision.override_id


LIVE = ("live", PERSISTED_FACTOR, PERSISTED_FACTOR, 150.0, None)
SHADOW = ("shadow", PERSISTED_FACTOR, 1.0, 100.0, None)


# --- history: who changed what -------------------------------------------------------------------

def test_global_mode_changes_are_in_history_with_their_author(alice, bob):
    global_mode_set(mode="shadow", user=alice)
    global_mode_set(mode="live", user=bob)
    # One entry per change, the very first included, each with its author.
    history = [(entry.history_type, entry.mode, entry.history_user)
               for entry in GlobalPolicy.history.order_by("history_id")]
    assert history == [("+", "shadow", alice), ("~", "live", bob)]
    assert GlobalPolicy.objects.get().mode == "live"


def test_symbol_mode_changes_are_in_history_with_their_author(btc, alice, bob):
    symbol_mode_set(symbol="BTCUSDC", mode="shadow", user=alice)
    symbol_mode_set(symbol="BTCUSDC", mode="", user=bob)
    changes = [(entry.mode, entry.history_user) for entry in Symbol.history.filter(name="BTCUSDC", history_type="~")
               .order_by("history_id")]
    assert changes == [("shadow", alice), ("", bob)]


def test_override_creation_and_revocation_are_in_history_with_their_authors(btc, alice, bob):
    override = override_create(symbol="BTCUSDC", reason="exchange incident", author=alice, pinned_factor=0.5)
    override_revoke(override_id=override.pk, user=bob)
    override_revoke(override_id=override.pk, user=alice)  # already revoked: nothing new on record
    history = list(override.history.order_by("history_id"))
    assert [(entry.history_type, entry.history_user) for entry in history] == [("+", alice), ("~", bob)]
    assert history[0].pinned_factor == 0.5 and history[0].reason == "exchange incident"
    assert history[0].revoked_at is None and history[1].revoked_at is not None
    override.refresh_from_db()
    assert override.author == alice and override.revoked_at == history[1].revoked_at


# --- bad input: a ValueError and nothing written ---------------------------------------------------

def _written() -> tuple[int, ...]:
    return (GlobalPolicy.objects.count(), GlobalPolicy.history.count(), Override.objects.count(),
            Override.history.count(), Symbol.history.count())


@pytest.mark.parametrize("mode", ["turbo", "LIVE", "", None])
def test_an_invalid_global_mode_writes_nothing(alice, mode):
    with pytest.raises(ValueError):
        global_mode_set(mode=mode, user=alice)
    assert _written() == (0, 0, 0, 0, 0)


@pytest.mark.parametrize("symbol, mode", [("BTCUSDC", "fast"), ("NOPEUSDC", "shadow"), ("btc", "shadow")])
def test_an_invalid_symbol_mode_writes_nothing(btc, alice, symbol, mode):
    before = _written()
    with pytest.raises(ValueError):
        symbol_mode_set(symbol=symbol, mode=mode, user=alice)
    assert _written() == before
    assert Symbol.objects.get(name="BTCUSDC").mode == ""


@pytest.mark.parametrize("changes", [
    {"pinned_factor": 0.1}, {"pinned_factor": 2.5}, {"pinned_factor": 0.2499}, {"pinned_factor": 2.0001},
    {"pinned_factor": -1.0}, {"pinned_factor": math.nan}, {"pinned_factor": math.inf}, {"pinned_factor": True},
    {"pinned_factor": "1.5"},
    {"reason": ""}, {"reason": "   "}, {"reason": None},
    {"expires_at": "past"}, {"expires_at": "now"},
    {"pinned_factor": None, "mode": ""},  # pins nothing
    {"mode": "bogus"},
    {"symbol": "NOPEUSDC"},
], ids=lambda changes: ",".join(f"{key}={value}" for key, value in changes.items()))
def test_an_invalid_override_writes_nothing(btc, alice, changes):
    arguments = {"symbol": "BTCUSDC", "reason": "risk review", "author": alice, "pinned_factor": 1.2, **changes}
    if arguments.get("expires_at") == "past":
        arguments["expires_at"] = timezone.now() - timedelta(minutes=1)
    elif arguments.get("expires_at") == "now":
        arguments["expires_at"] = timezone.now()
    before = _written()
    with pytest.raises(ValueError):
        override_create(**arguments)
    assert _written() == before


@pytest.mark.parametrize("factor", [0.25, 2.0, 1])
def test_pinned_factors_at_the_clamp_ends_are_accepted(btc, alice, factor):
    override = override_create(symbol="BTCUSDC", reason="edge", author=alice, pinned_factor=factor)
    assert override.pinned_factor == float(factor) and isinstance(override.pinned_factor, float)


def test_revoking_an_unknown_override_is_an_error(alice):
    with pytest.raises(ValueError):
        override_revoke(override_id=999_999, user=alice)


# --- effect on sizing ---------------------------------------------------------------------------

def test_shadow_records_the_factor_but_applies_one_and_live_is_back_at_once(btc, alice):
    assert sized() == LIVE
    global_mode_set(mode="shadow", user=alice)
    assert sized() == SHADOW
    global_mode_set(mode="live", user=alice)
    assert sized() == LIVE  # no wait: the poll is an hour away


def test_off_applies_one(btc, alice):
    global_mode_set(mode="off", user=alice)
    assert sized() == ("off", PERSISTED_FACTOR, 1.0, 100.0, None)


def test_a_symbol_mode_wins_over_the_global_one_and_blank_follows_it_again(btc, alice):
    make_symbol("ETHUSDC")
    symbol_mode_set(symbol="BTCUSDC", mode="shadow", user=alice)
    assert sized("BTCUSDC") == SHADOW
    assert sized("ETHUSDC")[0] == "live"
    global_mode_set(mode="off", user=alice)
    assert sized("BTCUSDC")[0] == "shadow" and sized("ETHUSDC")[0] == "off"
    symbol_mode_set(symbol="BTCUSDC", mode="", user=alice)
    assert sized("BTCUSDC")[0] == "off"


def test_a_pinned_factor_applies_until_revoked(btc, alice, bob):
    override = override_create(symbol="BTCUSDC", reason="thin book", author=alice, pinned_factor=0.5)
    assert sized() == ("live", 0.5, 0.5, 50.0, override.pk)
    override_revoke(override_id=override.pk, user=bob)
    assert sized() == LIVE


def test_an_override_mode_wins_and_its_pinned_factor_is_only_recorded_in_shadow(btc, alice):
    override = override_create(symbol="BTCUSDC", reason="watch only", author=alice, pinned_factor=0.5, mode="shadow")
    assert sized() == ("shadow", 0.5, 1.0, 100.0, override.pk)


def test_an_expired_override_stops_applying(btc, alice):
    expires_at = timezone.now() + timedelta(seconds=1.5)
    override = override_create(symbol="BTCUSDC", reason="brief pin", author=alice, pinned_factor=0.5,
                               expires_at=expires_at)
    assert sized() == ("live", 0.5, 0.5, 50.0, override.pk)
    time.sleep(max(0.0, (expires_at - timezone.now()).total_seconds()) + 0.05)
    assert sized() == LIVE  # nothing was written at expiry: the read side checks the time
