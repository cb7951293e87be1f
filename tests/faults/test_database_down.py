"""The database cut off under a running engine: sizing fails closed, and the ledger stays whole.

The engine (tests/faults/engine.py) reaches PostgreSQL through a TCP proxy (tcp_proxy.py);
SIGKILL to the proxy drops its connections at once and refuses new ones, like a database host
that went away. Needs PostgreSQL: SQLite is a file, there is no connection to cut.
"""
from __future__ import annotations

import time

import pytest
from django.db import connection

from sizing_app.models import SizingDecision

from .ledger_checks import ledger_refs, verify_ledger

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CONNECT_TIMEOUT_SECONDS = 2  # libpq's connect_timeout: settings' default, and libpq's smallest


def assert_unavailable(reply: dict) -> None:
    assert reply["ok"] is False, f"a size was handed out while the database was unreachable: {reply}"
    assert reply["error"] == "SizingUnavailable", reply
    assert "ledger database cannot be reached" in reply["message"], reply


def test_database_cut_fails_closed_and_leaves_a_whole_ledger(stack, engine_market, database_proxy, engines):
    engine = engines()
    assert engine.size("BTCUSDC", 100.0, "before-btc")["ok"]
    assert engine.size("ETHUSDC", 50.0, "before-eth")["ok"]

    database_proxy.kill()  # SIGKILL: the engine's connections drop at once, new ones are refused

    # Each answer is waited for with a bound (engine.ANSWER_TIMEOUT_SECONDS): failing closed must not hang.
    assert_unavailable(engine.size("BTCUSDC", 100.0, "during-1"))
    assert_unavailable(engine.size("ETHUSDC", 50.0, "during-2"))
    # Reads still come from memory: the latest factor is known, only the ledger is out of reach.
    intel = engine.intel("BTCUSDC")
    assert intel["ok"] and intel["snapshot_id"] == engine_market.snapshots.get(symbol__name="BTCUSDC").pk, intel

    assert ledger_refs() == ["before-btc", "before-eth"], "no row, not even half of one, for a refused size"
    checked = verify_ledger(stack)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # Back up: an engine (re)started on the restored database carries on the same chains.
    database_proxy.restart()
    assert engines().size("BTCUSDC", 100.0, "after-btc")["ok"]
    assert ledger_refs() == ["after-btc", "before-btc", "before-eth"]
    btc = list(SizingDecision.objects.filter(symbol="BTCUSDC").order_by("seq").values_list("order_ref", "seq"))
    assert btc == [("before-btc", 1), ("after-btc", 2)]
    checked = verify_ledger(stack)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_same_engine_process_sizes_again_once_the_database_is_back(stack, engine_market, database_proxy, engines):
    engine = engines()
    assert engine.size("BTCUSDC", 100.0, "before")["ok"]
    database_proxy.kill()
    assert_unavailable(engine.size("BTCUSDC", 100.0, "during"))
    assert_unavailable(engine.size("BTCUSDC", 100.0, "during-reconnect"))  # a new connection is refused too

    database_proxy.restart()
    # No restart of the engine, no retry needed: the broken connection was dropped when the call failed.
    reply = engine.size("BTCUSDC", 100.0, "after")
    assert reply["ok"], reply
    assert ledger_refs() == ["after", "before"]
    checked = verify_ledger(stack)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_unresponsive_database_fails_closed_within_the_connect_timeout(stack, engine_market, database_proxy, engines):
    """A path that hangs (SIGSTOP: the kernel completes the handshake, nobody answers) must not hang sizing."""
    connect_timeout = connection.settings_dict["OPTIONS"]["connect_timeout"]
    assert connect_timeout == CONNECT_TIMEOUT_SECONDS, "settings' default, unless DATABASE_URL overrides it"
    database_proxy.pause()
    engine = engines(warm=False)  # its first request is its first connection: through the frozen path
    # Without libpq's connect_timeout (settings: OPTIONS.connect_timeout) this request never returns and
    # the bounded wait fails.
    started = time.monotonic()
    reply = engine.size("BTCUSDC", 100.0, "frozen")
    elapsed = time.monotonic() - started
    assert_unavailable(reply)
    # One connect timeout, waited out (so the path was frozen, not refused), and nothing waited after it.
    assert connect_timeout - 0.2 < elapsed < connect_timeout + 1.0, f"SizingUnavailable after {elapsed:.2f} s"
    database_proxy.resume()
    assert ledger_refs() == []


def test_first_size_after_a_failed_start_uses_the_persisted_snapshot(stack, engine_market, database_proxy, engines):
    database_proxy.kill()
    engine = engines(warm=False)
    assert_unavailable(engine.size("BTCUSDC", 100.0, "down"))
    database_proxy.restart()
    reply = engine.size("BTCUSDC", 100.0, "back")
    assert reply["ok"], reply
    decision = SizingDecision.objects.get(order_ref="back")
    assert decision.snapshot_id is not None and decision.fallback_reason == "", (
        f"sized with neutral factors ({decision.fallback_reason}) although a snapshot exists")
