"""Redelivered chunk messages on a real worker, and wall-clock jumps under the bucket logic.

Redelivery: Redis hands an unacknowledged message out again (visibility timeout, restored unacked
messages) with the same id and body; here the same message is sent several times to a real
worker, while the run is open and after it closed. Clock jumps (an NTP step, a VM restored from a
snapshot) are played in-process with a settable `django.utils.timezone.now`, through the same
dispatcher (`tasks.recompute`, chunks run inline) and hot state the product uses.
"""
from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db.models import Count

from sizing_app.models import RecomputeRun, SizingDecision, SizingSnapshot
from sizing_app.recompute import service as service
from sizing_app.recompute import tasks
from sizing_app.signal_generator import size_for
from sizing_app.sizing.hot_state import hot_state
from sizing_app.sizing.steps import persisted_factor as symbol_size_factor
from tests.integration.conftest import RECOMPUTE_SECONDS, make_market, wait_for

NAMES = ["BTCUSDC", "ETHUSDC", "SOLUSDC", "XRPUSDC"]
MAX_AGE_SECONDS = 3 * RECOMPUTE_SECONDS
# tasks.recompute closes a run still open after this long: every chunk's hard limit has passed.
ABANDON_AFTER = timedelta(seconds=max(2 * RECOMPUTE_SECONDS, 2 * tasks.CHUNK_HARD_LIMIT))


def assert_one_snapshot_per_symbol_and_bucket():
    duplicates = SizingSnapshot.objects.values("symbol_id", "as_of").annotate(count=Count("id")).filter(count__gt=1)
    assert list(duplicates) == []


# Redelivery on a real worker -------------------------------------------------------------------
def chunk_results(log: str, task_id: str) -> list[str]:
    return re.findall(rf"recompute_chunk\[{task_id}\] succeeded in [0-9.e-]+s: (True|False)", log)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_redelivered_chunk_is_recorded_once_while_open_and_after_close(worker):
    make_market(NAMES)
    ids = service.symbol_ids_for_run(None)
    run = service.run_start(trigger="manual", as_of=service.bucket_for(datetime.now(UTC)),
                            symbol_ids=ids, chunk_size=2)
    first, second = service.chunked(ids, 2)
    log_start = len(worker.process.log())

    def send(chunk_index: int, symbol_ids: list[int], task_id: str) -> None:
        tasks.recompute_chunk.apply_async(
            kwargs={"run_id": run.pk, "chunk_index": chunk_index, "symbol_ids": symbol_ids}, task_id=task_id)

    # The same message three times (same id, same body): with concurrency 2, copies run side by side.
    redelivered = str(uuid.uuid4())
    for _ in range(3):
        send(0, first, redelivered)
    wait_for(lambda: len(chunk_results(worker.process.log()[log_start:], redelivered)) == 3,
             what="the three deliveries of chunk 0 to finish", processes=(worker.process,))
    assert sorted(chunk_results(worker.process.log()[log_start:], redelivered)) == ["False", "False", "True"]
    run.refresh_from_db()
    assert (run.status, run.chunks_done, run.symbols_ok) == (RecomputeRun.Status.RUNNING, [0], 2)

    send(1, second, str(uuid.uuid4()))
    wait_for(lambda: RecomputeRun.objects.filter(pk=run.pk).exclude(status=RecomputeRun.Status.RUNNING).exists(),
             what="the run to complete", processes=(worker.process,))
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.OK, run.errors
    assert (run.chunks_done, run.symbols_ok, run.symbols_failed) == ([0, 1], len(NAMES), 0)
    written = {row["id"]: row for row in SizingSnapshot.objects.values()}
    assert sorted(SizingSnapshot.objects.filter(run=run).values_list("symbol__name", flat=True)) == sorted(NAMES)

    # A copy delivered long after the run closed (a restored unacked message): changes nothing.
    send(0, first, redelivered)
    wait_for(lambda: len(chunk_results(worker.process.log()[log_start:], redelivered)) == 4,
             what="the late delivery to finish", processes=(worker.process,))
    assert chunk_results(worker.process.log()[log_start:], redelivered)[-1] == "False"
    run.refresh_from_db()
    assert (run.status, run.chunks_done, run.symbols_ok, run.symbols_failed) == (
        RecomputeRun.Status.OK, [0, 1], len(NAMES), 0)
    assert {row["id"]: row for row in SizingSnapshot.objects.values()} == written
    assert_one_snapshot_per_symbol_and_bucket()
    assert "raised unexpected" not in worker.process.log()[log_start:]


# Clock jumps ---------------------------------------------------------------------------------
class Clock:
    """A frozen, settable wall clock behind django.utils.timezone.now (monotonic time is untouched)."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def jump(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture()
def clock(monkeypatch):
    start = service.bucket_for(datetime.now(UTC), RECOMPUTE_SECONDS) + timedelta(seconds=3)
    clock = Clock(start)
    monkeypatch.setattr("django.utils.timezone.now", clock)
    return clock


@pytest.fixture()
def inline_chunks(monkeypatch):
    """The dispatcher under test is the real one; its chunks run inline instead of through the broker."""
    inline = SimpleNamespace(delay=lambda **kwargs: service.chunk_recompute(**kwargs))
    monkeypatch.setattr(tasks, "recompute_chunk", inline)


@pytest.fixture()
def market(db, clock, inline_chunks):
    make_market(NAMES)


def beat_fires() -> RecomputeRun | None:
    """What a scheduled send does when it reaches a worker (tasks.recompute with trigger="beat")."""
    run_id = tasks.recompute(trigger="beat")
    return None if run_id is None else RecomputeRun.objects.get(pk=run_id)


def snapshot_rows(**filters) -> dict[int, tuple]:
    return {row[0]: row[1:] for row in SizingSnapshot.objects.filter(**filters).values_list(
        "pk", "symbol_id", "as_of", "size_factor", "score", "computed_at", "run_id")}


def lost_chunk_run(as_of: datetime) -> RecomputeRun:
    """A scheduled run whose only chunk message was lost (worker killed): it stays 'running'."""
    return service.run_start(trigger="beat", as_of=as_of, symbol_ids=service.symbol_ids_for_run(None),
                             chunk_size=len(NAMES))


@pytest.mark.django_db
def test_backward_clock_jump_never_duplicates_or_overwrites_a_snapshot(clock, market):
    now_run = beat_fires()
    assert now_run.status == RecomputeRun.Status.OK
    current = snapshot_rows(run=now_run)
    served = symbol_size_factor("BTCUSDC")
    assert served["snapshot_id"] in current and not served["stale"]

    clock.jump(-timedelta(hours=1))  # the bucket an hour ago had no run: it gets one
    # By this clock the snapshot just served is an hour in the future: neutral at once, and never served
    # as the latest (it would shadow every snapshot computed until the clock caught up).
    intel = symbol_size_factor("BTCUSDC")
    assert (intel["stale"], intel["size_factor"]) == (True, 1.0)
    past_run = beat_fires()
    assert past_run.as_of == now_run.as_of - timedelta(hours=1) and past_run.status == RecomputeRun.Status.OK
    past_snapshot = symbol_size_factor("BTCUSDC")["snapshot_id"]
    assert SizingSnapshot.objects.get(pk=past_snapshot).run_id == past_run.pk

    clock.jump(-timedelta(seconds=2))  # and back again into that same, already computed bucket
    assert beat_fires() is None, "a scheduled run holds the bucket already"
    again = service.recompute_run(trigger="manual")
    assert again.as_of == past_run.as_of

    assert snapshot_rows(run=now_run) == current, "the newer snapshots are untouched"
    assert not SizingSnapshot.objects.filter(run=again).exists(), "first writer of a (symbol, bucket) wins"
    assert_one_snapshot_per_symbol_and_bucket()
    beat_runs = RecomputeRun.objects.filter(trigger="beat").values("as_of").annotate(count=Count("id"))
    assert [row for row in beat_runs if row["count"] != 1] == []
    hot_state.reset()  # a process started now loads the same choice from the database
    assert symbol_size_factor("BTCUSDC")["snapshot_id"] == past_snapshot
    clock.jump(timedelta(hours=1, seconds=2))  # the clock back where it was: the newer snapshot is served
    time.sleep(hot_state.refresh_seconds + 0.05)  # again, from the next refresh on
    assert symbol_size_factor("BTCUSDC")["snapshot_id"] == served["snapshot_id"]


@pytest.mark.django_db
def test_forward_clock_jump_flags_snapshots_stale_and_abandons_stale_runs(clock, market):
    first = beat_fires()
    clock.jump(timedelta(seconds=RECOMPUTE_SECONDS))
    lost = lost_chunk_run(service.bucket_for(clock.now))
    clock.jump(timedelta(seconds=RECOMPUTE_SECONDS))
    assert beat_fires() is None, "before the jump, the open run still counts as working"

    clock.jump(timedelta(days=1))
    intel = symbol_size_factor("BTCUSDC")
    assert (intel["stale"], intel["size_factor"], intel["fallback_reason"]) == (True, 1.0, "stale_snapshot")
    size_for("BTCUSDC", 100.0, order_ref="after-jump")
    decision = SizingDecision.objects.get(order_ref="after-jump")
    assert (decision.stale, decision.intel_factor, decision.applied_factor) == (True, 1.0, 1.0)
    assert decision.snapshot.run_id == first.pk

    fresh = beat_fires()
    lost.refresh_from_db()
    assert lost.status == RecomputeRun.Status.FAILED and lost.errors["_run"].startswith("abandoned")
    assert fresh is not None and fresh.status == RecomputeRun.Status.OK
    assert fresh.as_of == service.bucket_for(clock.now)
    intel = symbol_size_factor("BTCUSDC")
    assert SizingSnapshot.objects.get(pk=intel["snapshot_id"]).run_id == fresh.pk
    # Fresh, but the market's candles stopped a day ago (this clock jumped past them): stale input.
    assert (intel["stale"], intel["fallback_reason"]) == (True, "stale_input")

    # The lost chunk's message turning up now records nothing on the abandoned run.
    assert service.chunk_recompute(run_id=lost.pk, chunk_index=0, symbol_ids=service.symbol_ids_for_run(None)) is False
    assert not SizingSnapshot.objects.filter(run=lost).exists()
    assert_one_snapshot_per_symbol_and_bucket()


@pytest.mark.django_db
def test_a_snapshot_dated_in_the_future_never_shadows_the_fresh_ones(clock, market):
    start = clock.now
    first = beat_fires()
    clock.jump(timedelta(days=1))
    future = beat_fires()
    clock.now = start + timedelta(seconds=RECOMPUTE_SECONDS)  # the clock is put right
    served = symbol_size_factor("BTCUSDC")
    assert SizingSnapshot.objects.get(pk=served["snapshot_id"]).run_id == first.pk  # not the future one
    fresh = beat_fires()
    served = symbol_size_factor("BTCUSDC")
    assert SizingSnapshot.objects.get(pk=served["snapshot_id"]).run_id == fresh.pk
    assert not served["stale"]
    hot_state.reset()
    assert symbol_size_factor("BTCUSDC")["snapshot_id"] == served["snapshot_id"]

    clock.now = future.as_of + timedelta(seconds=MAX_AGE_SECONDS + 1)  # its time came and went: old, stale
    for _ in range(2):
        intel = symbol_size_factor("BTCUSDC")
        assert (intel["stale"], intel["size_factor"]) == (True, 1.0)
        hot_state.reset()  # and so for a process started now, which may serve the once-future row


@pytest.mark.django_db
def test_after_a_forward_jump_is_corrected_the_new_snapshots_are_served(clock, market):
    start = clock.now
    beat_fires()
    clock.jump(timedelta(days=1))
    future = beat_fires()
    clock.now = start + timedelta(seconds=2 * RECOMPUTE_SECONDS)  # the clock is put right
    corrected = beat_fires()
    assert corrected is not None and corrected.status == RecomputeRun.Status.OK

    intel = symbol_size_factor("BTCUSDC")
    served_run = SizingSnapshot.objects.get(pk=intel["snapshot_id"]).run_id
    assert served_run == corrected.pk or intel["stale"], (
        f"served the snapshot of run {served_run} dated {intel['as_of']} (run {future.pk}) as fresh at {clock.now}")


@pytest.mark.django_db
def test_backward_clock_jump_does_not_block_scheduled_runs_behind_a_lost_chunk(clock, market):
    lost = lost_chunk_run(service.bucket_for(clock.now))
    clock.jump(-timedelta(hours=1))
    clock.jump(ABANDON_AFTER + timedelta(seconds=RECOMPUTE_SECONDS))  # past the abandonment window since the jump
    run = beat_fires()
    lost.refresh_from_db()
    assert run is not None, f"scheduled recompute still blocked by run {lost.pk} started at {lost.started_at}"


@pytest.mark.django_db
def test_a_broker_lost_mid_fan_out_closes_the_run_and_blocks_no_later_run(clock, market, monkeypatch):
    from kombu.exceptions import OperationalError

    sent = []

    def delay_until_the_broker_goes(**kwargs):
        if sent:
            raise OperationalError("[Errno 111] Connection refused")
        sent.append(kwargs["chunk_index"])
        service.chunk_recompute(**kwargs)

    monkeypatch.setattr(tasks, "recompute_chunk", SimpleNamespace(delay=delay_until_the_broker_goes))
    with pytest.raises(OperationalError):
        tasks.recompute(trigger="beat", chunk_size=1)  # the dispatcher fails loudly, as before...
    run = RecomputeRun.objects.get()
    # ...but its run is closed, the chunks it could not send counted as failed, with the reason:
    # it used to stay "running" and hold back every scheduled run until abandoned, minutes later.
    assert (run.status, run.symbols_ok, run.symbols_failed) == (RecomputeRun.Status.PARTIAL, 1, len(NAMES) - 1)
    assert sorted(run.errors) == sorted(NAMES[1:])
    assert all(reason.startswith("not queued: OperationalError: [Errno 111]") for reason in run.errors.values())
    assert run.chunks_done == list(range(len(NAMES)))

    monkeypatch.setattr(tasks, "recompute_chunk",
                        SimpleNamespace(delay=lambda **kwargs: service.chunk_recompute(**kwargs)))
    clock.jump(timedelta(seconds=RECOMPUTE_SECONDS))  # the broker is back by the next tick
    following = beat_fires()
    assert following is not None and following.status == RecomputeRun.Status.OK
    assert following.symbols_ok == len(NAMES)
