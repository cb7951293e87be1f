"""Beat for real: the schedule written by setup_periodic_tasks, fired by django-celery-beat's scheduler.

With SIZING_RECOMPUTE_SECONDS=10 beat fires every 10 s and each fire lands in its own 10 s bucket.
Two beats at once fire everything twice; the bucket's unique run keeps the outcome single.
"""
from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.db.models import Count

from sizing_app.models import RecomputeRun, SizingSnapshot
from sizing_app.recompute.schedule import declared_entries

from .conftest import RECOMPUTE_SECONDS, make_market, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NAMES = ["BTCUSDC", "ETHUSDC", "SOLUSDC"]


def recompute_entry():
    (entry,) = [entry for entry in declared_entries() if entry.task == "sizing_app.tasks.recompute"]
    return entry


def sends(beat) -> int:
    return beat.log().count(f"Sending due task {recompute_entry().name} (sizing_app.tasks.recompute)")


def complete_buckets(symbol_count: int) -> list:
    rows = SizingSnapshot.objects.values("as_of").annotate(count=Count("id")).filter(count=symbol_count)
    return sorted(row["as_of"] for row in rows)


def assert_one_snapshot_per_symbol_and_bucket():
    duplicates = SizingSnapshot.objects.values("symbol_id", "as_of").annotate(count=Count("id")).filter(count__gt=1)
    assert list(duplicates) == []


def assert_bucket_complete(as_of, symbols):
    run = RecomputeRun.objects.get(trigger="beat", as_of=as_of)
    assert run.status == RecomputeRun.Status.OK, run.errors
    assert (run.symbols_ok, run.symbols_failed) == (len(symbols), 0)
    assert run.task_id, "a beat run is opened by a Celery task, which records its id"
    assert as_of.timestamp() % RECOMPUTE_SECONDS == 0, "buckets are aligned to the interval"
    snapshots = SizingSnapshot.objects.filter(as_of=as_of)
    assert sorted(snapshots.values_list("symbol_id", flat=True)) == sorted(symbol.pk for symbol in symbols)


def test_beat_fires_the_declared_schedule(beats, worker):
    symbols = make_market(NAMES)
    call_command("setup_periodic_tasks", stdout=io.StringIO())
    beat = beats()

    def two_complete_buckets():
        buckets = complete_buckets(len(symbols))
        return buckets if len(buckets) >= 2 else None

    buckets = wait_for(two_complete_buckets, what="beat-fired snapshots in two buckets",
                       processes=(worker.process, beat))
    beat.kill()
    worker.wait_idle()

    assert sends(beat) >= 2
    assert_one_snapshot_per_symbol_and_bucket()
    assert len(set(buckets)) >= 2
    for as_of in buckets:
        assert_bucket_complete(as_of, symbols)
    assert not RecomputeRun.objects.exclude(trigger="beat").exists()


def test_two_beats_start_one_run_per_bucket(beats, worker):
    symbols = make_market(NAMES)
    call_command("setup_periodic_tasks", stdout=io.StringIO())
    worker_log_start = len(worker.process.log())
    first, second = beats(), beats()

    # Both schedulers fire on their own: wait until each has sent the recompute twice (~25 s).
    wait_for(lambda: sends(first) >= 2 and sends(second) >= 2, what="both beats to fire twice",
             processes=(worker.process, first, second))
    first.kill()
    second.kill()
    worker.wait_idle()

    runs = RecomputeRun.objects.filter(trigger="beat")
    per_bucket = runs.values("as_of").annotate(count=Count("id"))
    assert [row for row in per_bucket if row["count"] != 1] == []
    assert runs.count() >= 2
    assert_one_snapshot_per_symbol_and_bucket()
    for run in runs:
        assert_bucket_complete(run.as_of, symbols)

    worker_log = worker.process.log()[worker_log_start:]
    assert "raised unexpected" not in worker_log, worker_log
    # The duplicates really reached the worker and were absorbed there, not lost on the way.
    dispatches = re.findall(r"Task sizing_app\.tasks\.recompute\[[^\]]+\] received", worker_log)
    assert len(dispatches) > runs.count(), worker_log
