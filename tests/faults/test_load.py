"""Sizing under load while the worker and an engine process are SIGKILLed: one ledger row per size handed out.

Real processes on the test database: a gunicorn server (2 workers, the engine role's throttle
lifted), a Celery worker, ENGINES engine processes calling size_for directly and HTTP_CLIENTS
processes POSTing to /api/v1/size/, all on a few symbols so the chains contend. Mid-load a
recompute goes through the broker (new snapshots under the clients' feet, which they must pick
up); a second one is sent and the worker is SIGKILLed (process group) as it starts; one engine
process is SIGKILLed mid-call; the worker is restarted and a third recompute must complete and be
sized on. Then the ledger must hold exactly one row per size a client was handed (by order_ref,
with the size, id and seq it was handed), and nothing else but the killed engine's in-flight
call; every chain must verify; no client may have seen an error, a 5xx or a 503.

Call counts and rates are printed (run with -s to see them); nothing asserts on speed.
"""
from __future__ import annotations

import io
import time
from collections import Counter
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from sizing_app.models import RecomputeRun, SizingDecision, SizingSnapshot
from sizing_app.recompute.service import bucket_for
from sizing_app.recompute.tasks import recompute
from sizing_app.roles import sync_role_groups
from tests.fixtures.api import make_api_user
from tests.integration.conftest import RECOMPUTE_SECONDS, ROOT, make_market, wait_for

from .load_clients import ClientProcess, client_command, read_outcomes
from .web import start_gunicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SYMBOLS = ["BTCUSDC", "ETHUSDC", "SOLUSDC"]  # few, so every chain has several writers at once
ENGINES, HTTP_CLIENTS = 3, 2
LOAD_SECONDS = 25  # at least; longer if the restart or the wait for a fresh bucket (up to 10 s) runs past it
FIRST_RECOMPUTE_AT, KILLS_AT = 4, 10  # seconds into the load
CHUNK_SIZE = 1  # one chunk per symbol: the worker is killed with chunks queued or in flight
KILLED_ENGINE = "engine-0"


def run_for(sent) -> RecomputeRun | None:
    return RecomputeRun.objects.filter(task_id=sent.id).first()


def finished(sent) -> RecomputeRun | None:
    run = run_for(sent)
    return run if run is not None and run.status != RecomputeRun.Status.RUNNING else None


def next_bucket_after(run: RecomputeRun, processes) -> None:
    """Until the recompute bucket is later than the run's: a new run then writes new snapshots.

    Snapshots are unique per (symbol, bucket) and a bucket's first writer wins, so a run in the
    same bucket as an earlier one would leave the snapshots as they were.
    """
    wait_for(lambda: bucket_for(timezone.now(), RECOMPUTE_SECONDS) > run.as_of,
             what=f"the bucket after run {run.pk}'s", processes=processes)


def recomputed_and_sized_on(sent, worker, processes) -> RecomputeRun:
    """Until the sent recompute finished, wrote every symbol's snapshot, and the clients size on them."""
    run = wait_for(lambda: finished(sent), what=f"recompute {sent.id}", processes=(worker.process, *processes))
    assert run.status == RecomputeRun.Status.OK, run.errors
    snapshots = list(SizingSnapshot.objects.filter(run=run).values_list("pk", flat=True))
    assert len(snapshots) == len(SYMBOLS), (run.pk, snapshots)
    wait_for(lambda: SizingDecision.objects.filter(snapshot_id__in=snapshots).exists(),
             what=f"a size on run {run.pk}'s snapshots", processes=processes)
    return run


@pytest.fixture()
def load_dir(stack, transactional_db):
    """A fresh directory for this test's control files, outcome files and logs; its processes die after it."""
    directory = stack.directory / f"load-{time.monotonic_ns()}"
    directory.mkdir()
    (directory / "control").mkdir()
    processes: list[ClientProcess] = []
    yield directory, processes
    for process in processes:
        process.kill()


def start_server(stack, directory: Path, processes: list, token: str) -> tuple[ClientProcess, int]:
    """gunicorn (2 sync workers) on the test database; the engine role's throttle lifted for the load."""
    return start_gunicorn(stack, directory, processes, env={"API_THROTTLE_ENGINE": "100000000/min"}, token=token,
                          worker_timeout=120)


def test_load_with_worker_and_engine_killed_keeps_one_ledger_row_per_size(stack, worker, load_dir):
    directory, processes = load_dir
    control = directory / "control"
    make_market(SYMBOLS)
    # Snapshots before the load, through the broker: the chains start on persisted factors.
    initial = recompute.delay(trigger="manual", chunk_size=CHUNK_SIZE)
    run = wait_for(lambda: finished(initial), what="the initial recompute", processes=(worker.process,))
    assert run.status == RecomputeRun.Status.OK, run.errors

    sync_role_groups(Group, Permission)  # an earlier transactional test's flush may have emptied the groups
    user, token = make_api_user("engine")
    username = user.get_username()
    server, port = start_server(stack, directory, processes, token)

    clients: dict[str, ClientProcess] = {}
    for index in range(ENGINES + HTTP_CLIENTS):
        kind = "engine" if index < ENGINES else "http"
        name = f"{kind}-{index if kind == 'engine' else index - ENGINES}"
        command = client_command(kind, name, control=control, out=directory / f"{name}.jsonl", symbols=SYMBOLS,
                                 seed=index, url=f"http://127.0.0.1:{port}", token=token)
        clients[name] = ClientProcess(name, command, env=stack.env, cwd=ROOT, log_path=directory / f"{name}.log")
        processes.append(clients[name])
    everyone = (server, *clients.values())
    wait_for(lambda: all((control / f"ready-{name}").exists() for name in clients),
             what="every load client to be ready", processes=everyone)

    # The load -------------------------------------------------------------------------------------------
    (control / "go").touch()
    started = time.monotonic()

    def at(seconds: float) -> None:
        time.sleep(max(0.0, started + seconds - time.monotonic()))

    at(FIRST_RECOMPUTE_AT)
    next_bucket_after(run, everyone)
    during = recompute.delay(trigger="manual", chunk_size=CHUNK_SIZE)
    during_run = recomputed_and_sized_on(during, worker, everyone)

    at(KILLS_AT)
    doomed = recompute.delay(trigger="manual", chunk_size=CHUNK_SIZE)
    wait_for(lambda: run_for(doomed), what="the worker to start the doomed recompute",
             processes=(worker.process, *everyone), interval=0.05)
    worker.kill()  # SIGKILL to the worker's process group, its chunks queued or in flight
    killed_engine = clients[KILLED_ENGINE]
    killed_engine.kill()  # mid-call: it is always in a call but for writing its outcome line
    killed_at = time.monotonic() - started
    survivors = (server, *(process for name, process in clients.items() if name != KILLED_ENGINE))

    worker.start()
    doomed_run = run_for(doomed)
    next_bucket_after(doomed_run, survivors)
    after = recompute.delay(trigger="manual", chunk_size=CHUNK_SIZE)
    after_run = recomputed_and_sized_on(after, worker, survivors)

    at(LOAD_SECONDS)
    (control / "stop").touch()
    load_seconds = time.monotonic() - started
    for name, process in clients.items():
        if name != KILLED_ENGINE:
            wait_for(lambda p=process: not p.alive(), what=f"{name} to stop", timeout=60,
                     processes=(server,))
    assert server.alive(), server.log_tail()
    exit_codes = {name: process.popen.returncode for name, process in clients.items()}
    expected_codes = {name: (-9 if name == KILLED_ENGINE else 0) for name in clients}
    assert exit_codes == expected_codes, "\n".join(process.log_tail() for process in everyone)

    # What the clients saw ---------------------------------------------------------------------------------
    outcomes = {name: read_outcomes(name, directory / f"{name}.jsonl") for name in clients}
    seen_ok: dict[str, dict] = {}
    failures = []
    for name, outcome in outcomes.items():
        for record in outcome.records:
            if record["ok"]:
                seen_ok[record["ref"]] = {**record, "client": name}
            else:
                failures.append({"client": name, **record})
    unknown = {outcomes[KILLED_ENGINE].next_ref}  # its in-flight call, if it was in one

    # What the ledger holds --------------------------------------------------------------------------------
    rows = list(SizingDecision.objects.values("id", "symbol", "seq", "order_ref", "caller", "final_size",
                                              "snapshot_id"))
    per_ref = Counter(row["order_ref"] for row in rows)
    by_ref = {row["order_ref"]: row for row in rows}
    duplicates = {ref: count for ref, count in per_ref.items() if count > 1}
    missing = sorted(set(seen_ok) - set(per_ref))
    extra = sorted(set(per_ref) - set(seen_ok) - unknown)
    mismatched = []
    for ref, record in seen_ok.items():
        row = by_ref.get(ref)
        if row is None:
            continue
        # Engine processes see the size and sign as themselves; HTTP clients see the row, signed by the user.
        handed = {"symbol": record["symbol"], "final_size": record["final_size"],
                  "caller": record["client"] if record["client"].startswith("engine") else username}
        if "id" in record:
            handed.update(id=record["id"], seq=record["seq"], order_ref=record["order_ref"])
            if record["decision_symbol"] != record["symbol"]:
                handed["symbol"] = f"{record['symbol']} asked, {record['decision_symbol']} answered"
        recorded = {key: row[key] for key in handed}
        if recorded != handed:
            mismatched.append({"ref": ref, "handed": handed, "recorded": recorded})

    verify_out = io.StringIO()
    try:
        call_command("verify_ledger", stdout=verify_out, stderr=io.StringIO())
        verify_problem = None
    except CommandError as exc:
        verify_problem = f"{exc}\n{verify_out.getvalue()}"

    # Report --------------------------------------------------------------------------------------------------
    per_client = {name: len(outcome.records) for name, outcome in outcomes.items()}
    engine_calls = sum(count for name, count in per_client.items() if name.startswith("engine"))
    http_calls = sum(count for name, count in per_client.items() if name.startswith("http"))
    snapshot_runs = dict(SizingSnapshot.objects.values_list("pk", "run_id"))
    decisions_per_run = Counter(snapshot_runs.get(row["snapshot_id"]) for row in rows)
    doomed_run.refresh_from_db()
    run_names = {run.pk: "initial", during_run.pk: "during", doomed_run.pk: "doomed", after_run.pk: "after restart",
                 None: "none"}
    print(
        f"\nload on {connection.vendor}: {load_seconds:.1f} s, {len(rows)} ledger rows, "
        f"{sum(per_client.values())} calls seen ({len(rows) / load_seconds:.0f} rows/s): "
        f"engine {engine_calls} ({engine_calls / load_seconds:.0f}/s over {ENGINES} processes, "
        f"{KILLED_ENGINE} killed at {killed_at:.1f} s), http {http_calls} ({http_calls / load_seconds:.0f}/s over "
        f"{HTTP_CLIENTS} clients); per client {per_client}; per symbol "
        f"{dict(Counter(row['symbol'] for row in rows))}; killed engine's in-flight call "
        f"{'on' if unknown & set(per_ref) else 'not on'} the ledger; decisions per snapshot run "
        f"{ {run_names.get(key, key): value for key, value in decisions_per_run.items()} }; "
        f"doomed run left {doomed_run.status}, chunks {doomed_run.chunks_done} of {doomed_run.chunks_total} recorded"
    )

    assert not failures, f"{len(failures)} calls failed, first ones: {failures[:10]}\n{server.log_tail()}"
    assert not duplicates, f"order_refs on the ledger more than once: {dict(list(duplicates.items())[:10])}"
    assert not missing, f"{len(missing)} sizes handed out with no ledger row: {missing[:10]}"
    assert not extra, f"{len(extra)} ledger rows for calls no client saw succeed: {extra[:10]}"
    assert not mismatched, f"{len(mismatched)} ledger rows differ from what was handed out: {mismatched[:5]}"
    assert verify_problem is None, verify_problem
    assert engine_calls and http_calls, per_client
