"""The outage journal under a real database cut: engines keep sizing, nothing goes unrecorded.

Engines share one journal file (SIZING_JOURNAL_PATH) and reach PostgreSQL through a TCP proxy;
SIGKILL to the proxy is the outage. Every size an engine hands out during it must reach the
ledger once the database is back, in order, with every chain intact, even if the engine that
journaled it was killed -9 in the meantime.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sizing_app.models import SizingDecision
from tests.integration.conftest import ROOT

from .ledger_checks import ledger_refs, verify_ledger

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture()
def journal_path(stack):
    path = stack.directory / "journal" / "ledger.jsonl"
    yield str(path)
    path.unlink(missing_ok=True)


def journaled_refs(path: str) -> list[str]:
    with open(path) as handle:
        return [entry["order_ref"] for line in handle for entry in json.loads(line)]


def size_ok(engine, symbol: str, gross: float, order_ref: str) -> float:
    reply = engine.size(symbol, gross, order_ref)
    assert reply["ok"], f"{order_ref}: {reply}"
    return reply["size"]


def test_outage_is_journaled_by_every_engine_and_replayed_by_the_next_decision(
        stack, engine_market, database_proxy, engines, journal_path):
    first, second = engines(journal_path=journal_path), engines(journal_path=journal_path)
    sizes = {"before": size_ok(first, "BTCUSDC", 100.0, "before")}

    database_proxy.kill()
    for n in range(3):
        sizes[f"a-{n}"] = size_ok(first, "BTCUSDC", 100.0 + n, f"a-{n}")
        sizes[f"b-{n}"] = size_ok(second, "BTCUSDC" if n % 2 else "ETHUSDC", 50.0 + n, f"b-{n}")
    assert journaled_refs(journal_path) == ["a-0", "b-0", "a-1", "b-1", "a-2", "b-2"]
    assert ledger_refs() == ["before"]
    first.kill()  # kill -9 with its decisions only on disk: they must not be lost

    database_proxy.restart()
    sizes["after"] = size_ok(second, "BTCUSDC", 100.0, "after")  # replays the journal, then appends

    assert journaled_refs(journal_path) == []
    rows = {row.order_ref: row for row in SizingDecision.objects.all()}
    assert sorted(rows) == sorted(sizes), "exactly the sizes handed out, each once"
    assert {ref: row.final_size for ref, row in rows.items()} == sizes
    btc = list(SizingDecision.objects.filter(symbol="BTCUSDC").order_by("seq").values_list("order_ref", flat=True))
    assert btc == ["before", "a-0", "a-1", "b-1", "a-2", "after"], "journal order kept within each chain"
    assert all(rows[ref].journal_ref for ref in sizes if ref not in ("before", "after"))
    result = verify_ledger(stack)
    assert result.returncode == 0, result.stdout + result.stderr


def test_replay_journal_command_recovers_an_engine_killed_during_the_outage(
        stack, engine_market, database_proxy, engines, journal_path):
    engine = engines(journal_path=journal_path)
    database_proxy.kill()
    handed_out = {f"j-{n}": size_ok(engine, "ETHUSDC", 10.0 * (n + 1), f"j-{n}") for n in range(4)}
    engine.kill()
    database_proxy.restart()

    command = [sys.executable, "manage.py", "replay_journal"]
    env = {**stack.env, "SIZING_JOURNAL_PATH": journal_path}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "4 journaled decision(s) added" in result.stdout, result.stdout + result.stderr
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "0 journaled decision(s) added" in again.stdout, again.stdout + again.stderr

    assert dict(SizingDecision.objects.filter(journal_ref__gt="").values_list("order_ref", "final_size")) == handed_out
    result = verify_ledger(stack)
    assert result.returncode == 0, result.stdout + result.stderr
