"""Several OS processes sizing at once append to the ledger without forking, losing or refusing a row.

Each worker is a separate Python process with its own connection and chain-head cache, like the
engine's workers. SQLite: a file copy of the migrated test database; PostgreSQL: the test database.
The workers start once (start-up dominates the cost) and run both phases on command.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from tests.factories import make_symbol

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROCESSES = 4
CALLS = 50
DEADLINE = 120  # seconds for a whole pool, start-up included, on a busy machine; then it is killed

# A worker connects, answers "ready", then runs one JSON command per stdin line:
# {"size": [symbols], "calls": N, "tag": T} sizes N orders (round robin over symbols) and reports
# the sizes handed out and the calls that raised; {"check": true} runs verify_ledger and returns every chain.
WORKER = r"""
import io, json, sys
import django
django.setup()
from django.core.management import call_command
from django.core.management.base import CommandError
from sizing_app.sizing.hot_state import hot_state
from sizing_app.models import SizingDecision
from sizing_app.signal_generator import size_for

name = sys.argv[1]
SizingDecision.objects.exists()  # connect and warm the hot state before the race starts
hot_state.latest("BTCUSDC")
print(json.dumps({"ready": name}), flush=True)
for line in sys.stdin:
    command = json.loads(line)
    if "size" in command:
        sized, failures = [], []
        for index in range(command["calls"]):
            symbol = command["size"][index % len(command["size"])]
            order_ref = f"{name}-{command['tag']}-{index}"
            try:
                size_for(symbol, 100.0, order_ref=order_ref, caller="concurrency")
                sized.append([symbol, order_ref])
            except Exception as exc:  # reported, not fatal: the test says which calls failed and why
                failures.append(f"{order_ref}: {type(exc).__name__}: {exc}"[:300])
        print(json.dumps({"sized": sized, "failures": failures}), flush=True)
    elif "repeat" in command:  # the same orders as every other worker: an engine's retries racing
        sizes, failures = {}, []
        for order_ref in command["repeat"]:
            try:
                sizes[order_ref] = size_for("BTCUSDC", 100.0, order_ref=order_ref, caller="retrying-engine")
            except Exception as exc:
                failures.append(f"{order_ref}: {type(exc).__name__}: {exc}"[:300])
        print(json.dumps({"sizes": sizes, "failures": failures}), flush=True)
    elif "check" in command:
        out = io.StringIO()
        try:
            call_command("verify_ledger", stdout=out, stderr=io.StringIO())
            status = 0
        except CommandError:
            status = 1
        chains = {}
        for symbol, seq, order_ref in SizingDecision.objects.order_by("symbol", "seq").values_list(
                "symbol", "seq", "order_ref"):
            chains.setdefault(symbol, []).append([seq, order_ref])
        print(json.dumps({"status": status, "output": out.getvalue().splitlines(), "chains": chains}), flush=True)
"""


@pytest.fixture
def shared_database_url(transactional_db, tmp_path):
    """A DATABASE_URL every process can open, holding the migrated test schema and the symbols raced on."""
    for name in ("BTCUSDC", "ETHUSDC", "SOLUSDC"):
        make_symbol(name)
    if connection.vendor == "postgresql":
        params = connection.settings_dict
        user = quote(params["USER"] or "") + (f":{quote(params['PASSWORD'])}" if params["PASSWORD"] else "")
        return f"postgres://{user}@{params['HOST'] or 'localhost'}:{params['PORT'] or 5432}/{quote(params['NAME'])}"
    # The SQLite test database lives in this process's memory: copy it (tables, triggers) to a file.
    path = tmp_path / "ledger.sqlite3"
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.execute("PRAGMA journal_mode=WAL")
    target.close()
    return f"sqlite:///{path}"


class Workers:
    """Worker processes driven over stdin/stdout; stderr goes to a file so a chatty one never blocks."""

    def __init__(self, database_url: str, count: int, log_dir):
        env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "project.settings",
               "SIZING_BACKGROUND_REFRESH": "false", "PYTHONPATH": str(settings.BASE_DIR)}
        self.logs = [log_dir / f"worker{number}.log" for number in range(count)]
        self.processes = []
        for number, log in enumerate(self.logs):
            with open(log, "w") as stderr:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-c", WORKER, f"w{number}"], cwd=settings.BASE_DIR, env=env, text=True,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                ))
        # A hung worker (a deadlock, a lock never released) is killed, so a read returns and the test fails.
        self._watchdog = threading.Timer(DEADLINE, self.kill)
        self._watchdog.start()

    def _read(self, number: int) -> dict:
        line = self.processes[number].stdout.readline()
        if not line:
            self.kill()
            raise AssertionError(f"worker {number} died or was killed: {self.logs[number].read_text()[-3000:]}")
        return json.loads(line)

    def wait_ready(self) -> None:
        for number in range(len(self.processes)):
            assert "ready" in self._read(number)

    def run(self, commands: list[dict]) -> list[dict]:
        """Send every worker its command at once (they overlap), then collect the answers."""
        for process, command in zip(self.processes, commands):
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()
        return [self._read(number) for number in range(len(commands))]

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()

    def close(self) -> None:
        self._watchdog.cancel()
        for process in self.processes:
            if process.poll() is None:
                process.stdin.close()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            process.stdout.close()


@pytest.fixture
def workers(shared_database_url, tmp_path):
    pool = Workers(shared_database_url, PROCESSES, tmp_path)
    try:
        pool.wait_ready()
        yield pool
    finally:
        pool.close()


def _race(workers: Workers, plans: list[list[str]], tag: str, expected: dict[str, set[str]]) -> list[str]:
    """Every worker sizes CALLS orders round robin over its symbols; returns the calls that raised."""
    answers = workers.run([{"size": plan, "calls": CALLS, "tag": tag} for plan in plans])
    for answer in answers:
        for symbol, order_ref in answer["sized"]:
            expected.setdefault(symbol, set()).add(order_ref)
    return [failure for answer in answers for failure in answer["failures"]]


def _assert_chains(workers: Workers, expected: dict[str, set[str]]):
    """Each chain is 1..n with no gap or fork, holds exactly the sizes handed out, and verifies."""
    (report,) = workers.run([{"check": True}])
    assert sorted(report["chains"]) == sorted(expected)
    for symbol, refs in expected.items():
        chain = report["chains"][symbol]
        assert [seq for seq, _ in chain] == list(range(1, len(chain) + 1)), f"{symbol}: gap or fork in seq"
        assert sorted(ref for _, ref in chain) == sorted(refs), f"{symbol}: rows lost or doubled"
    total, symbols = sum(len(refs) for refs in expected.values()), len(expected)
    assert report["output"] == [f"{symbols} symbol{'s' * (symbols != 1)} checked, {total} rows checked, 0 problems"]
    assert report["status"] == 0


def test_concurrent_processes_keep_every_chain_unbroken(workers):
    expected: dict[str, set[str]] = {}
    # Phase 1: every process sizes the same symbol, all racing for one chain head.
    failures = _race(workers, [["BTCUSDC"]] * PROCESSES, "same", expected)
    _assert_chains(workers, expected)
    assert sum(len(refs) for refs in expected.values()) + len(failures) == PROCESSES * CALLS
    # Phase 2: two symbols in parallel, each written by every process (alternating, opposite phases).
    plans = [["ETHUSDC", "SOLUSDC"] if number % 2 else ["SOLUSDC", "ETHUSDC"] for number in range(PROCESSES)]
    failures += _race(workers, plans, "two", expected)
    _assert_chains(workers, expected)
    # Integrity holds whatever happens; a size_for that raises under contention is a bug as well.
    assert failures == [], f"{len(failures)} of {2 * PROCESSES * CALLS} size_for calls raised, e.g. {failures[:3]}"


def test_processes_repeating_the_same_orders_at_once_size_each_order_once(workers):
    refs = [f"retry-{index}" for index in range(CALLS)]
    answers = workers.run([{"repeat": refs}] * PROCESSES)
    assert [answer["failures"] for answer in answers] == [[]] * PROCESSES
    # Every caller got the same size for each order: the one on the ledger, recorded once.
    assert all(answer["sizes"] == answers[0]["sizes"] for answer in answers)
    (report,) = workers.run([{"check": True}])
    chain = report["chains"]["BTCUSDC"]
    assert sorted(ref for _, ref in chain) == sorted(refs)
    assert [seq for seq, _ in chain] == list(range(1, CALLS + 1)) and report["status"] == 0
