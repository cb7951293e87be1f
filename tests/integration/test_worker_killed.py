"""SIGKILL in the middle of a chunk: all or nothing per chunk, and the next worker carries on.

The chunk is killed after it wrote its snapshots and its tally, before it committed them (see
slow_chunk_app.py). Killing the whole worker loses the message (acks_late cannot help a worker
that is gone); killing only the pool process makes the worker reject it back onto the queue
(reject_on_worker_lost) and the retry is recorded once.
"""
from __future__ import annotations

import json
import os
import signal
import uuid

import pytest

from sizing_app.models import RecomputeRun, SizingSnapshot
from sizing_app.recompute.service import chunked, symbol_ids_for_run
from sizing_app.recompute.tasks import recompute

from .conftest import Worker, make_market, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FAST, SLOW = ["FAST1", "FAST2"], ["SLOW1", "SLOW2"]
ALL = FAST + SLOW
CHUNK_SIZE = 2


@pytest.fixture()
def slow_worker(stack, celery_worker):
    """A worker whose SLOW* chunks pause before committing; the only worker on the queue."""
    celery_worker.kill()  # if running, idle (drained after its last test); restarted by the next test needing it
    markers = stack.directory / f"markers-{uuid.uuid4().hex[:8]}"
    markers.mkdir()
    worker = Worker(stack, app_module="tests.integration.slow_chunk_app", extra_env={
        "SIZING_TEST_CHUNK_DELAY": "60", "SIZING_TEST_SLOW_PREFIX": "SLOW", "SIZING_TEST_MARKER_DIR": str(markers),
    })
    worker.markers = markers
    worker.start()
    yield worker
    worker.kill()


@pytest.fixture()
def market():
    symbols = make_market(ALL)  # created in this order, so chunk 0 is FAST1-2 and chunk 1 is SLOW1-2
    chunks = [sorted(symbol.name for symbol in symbols if symbol.pk in ids)
              for ids in chunked(symbol_ids_for_run(None), CHUNK_SIZE)]
    assert chunks == [FAST, SLOW]
    return symbols


def run_of(sent) -> RecomputeRun | None:
    return RecomputeRun.objects.filter(task_id=sent.id).first()


def finished(sent) -> RecomputeRun | None:
    run = run_of(sent)
    return run if run is not None and run.status != RecomputeRun.Status.RUNNING else None


def wait_for_paused_slow_chunk(worker: Worker, sent) -> tuple[RecomputeRun, dict]:
    """Until the fast chunk is committed and the slow one sits on its uncommitted writes."""
    marker = wait_for(lambda: next(worker.markers.glob("*.json"), None),
                      what="the slow chunk to write its snapshots and pause before committing",
                      processes=(worker.process,))

    def fast_chunk_recorded():
        run = run_of(sent)
        return run if run is not None and run.chunks_done == [0] else None

    run = wait_for(fast_chunk_recorded, what="the fast chunk to be recorded", processes=(worker.process,))
    return run, json.loads(marker.read_text())


def snapshot_names(**filters) -> list[str]:
    return sorted(SizingSnapshot.objects.filter(**filters).values_list("symbol__name", flat=True))


def test_worker_killed_mid_chunk_leaves_no_trace_of_that_chunk(market, slow_worker, celery_worker):
    sent = recompute.delay(trigger="manual", chunk_size=CHUNK_SIZE)
    run, _ = wait_for_paused_slow_chunk(slow_worker, sent)

    slow_worker.kill()  # SIGKILL to the process group: main process and both pool processes

    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.RUNNING
    assert run.chunks_done == [0]
    assert (run.chunks_total, run.symbols_ok, run.symbols_failed) == (2, 2, 0)
    assert snapshot_names(run=run) == FAST
    assert snapshot_names(symbol__name__in=SLOW) == []

    celery_worker.start()
    again = recompute.delay(trigger="manual", chunk_size=CHUNK_SIZE)
    rerun = wait_for(lambda: finished(again), what="a new run on a new worker",
                     processes=(celery_worker.process,))
    assert rerun.pk != run.pk
    assert rerun.status == RecomputeRun.Status.OK, rerun.errors
    # In the same bucket the rerun writes the slow chunk's snapshots and reports the fast ones, already
    # there, as kept; if the clock has reached the next bucket meanwhile, it writes all of them.
    kept = len(FAST) if rerun.as_of == run.as_of else 0
    assert (rerun.symbols_ok, rerun.symbols_existing, rerun.symbols_failed, rerun.chunks_done) == (
        len(ALL) - kept, kept, 0, [0, 1])
    assert snapshot_names(as_of=rerun.as_of) == sorted(ALL)
    assert snapshot_names(symbol__name__in=SLOW) == SLOW  # once each, written by the new run
    assert snapshot_names(run=rerun, symbol__name__in=SLOW) == SLOW


def test_pool_process_killed_mid_chunk_is_redelivered_and_recorded_once(market, slow_worker):
    sent = recompute.delay(trigger="manual", chunk_size=CHUNK_SIZE)
    run, paused = wait_for_paused_slow_chunk(slow_worker, sent)

    os.kill(paused["pid"], signal.SIGKILL)  # only the pool process: the worker itself survives

    run = wait_for(lambda: finished(sent), what="the redelivered chunk to complete the run",
                   processes=(slow_worker.process,))
    assert run.status == RecomputeRun.Status.OK, run.errors
    # The killed attempt's tally was rolled back with its snapshots: the retry counted once.
    assert (run.symbols_ok, run.symbols_failed, run.chunks_done) == (4, 0, [0, 1])
    assert snapshot_names(run=run) == sorted(ALL)
    assert SizingSnapshot.objects.count() == len(ALL)
    log = slow_worker.process.log()
    assert f"pid:{paused['pid']} exited with 'signal 9 (SIGKILL)'" in log, log
    assert len(list(slow_worker.markers.glob("*.json"))) == 1, "the retry must not pause again"
