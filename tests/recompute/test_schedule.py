"""setup_periodic_tasks: django-celery-beat's tables match the schedule declared in sizing_app.schedule.

Declared entries are created and kept in line, ours that the code dropped are deleted, other
tasks and an operator's interval edit are left alone (unless --reset-schedule).
"""
from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from sizing_app.recompute.schedule import SCHEDULE_PREFIX, declared_entries

RECOMPUTE = f"{SCHEDULE_PREFIX}recompute factors"
STABLE_FIELDS = ("id", "name", "task", "interval_id", "crontab_id", "solar_id", "clocked_id", "args", "kwargs",
                 "queue", "exchange", "routing_key", "headers", "priority", "expires", "expire_seconds", "one_off",
                 "start_time", "enabled", "last_run_at", "total_run_count", "description")


@pytest.fixture(autouse=True)
def recompute_every_60_seconds(settings):
    settings.SIZING_RECOMPUTE_SECONDS = 60
    settings.SIZING_MAX_AGE_SECONDS = 180


def sync(*args) -> str:
    out = io.StringIO()
    call_command("setup_periodic_tasks", *args, stdout=out)
    return out.getvalue()


def table_state():
    tasks = {task["name"]: task for task in PeriodicTask.objects.values(*STABLE_FIELDS)}
    intervals = sorted(IntervalSchedule.objects.values_list("id", "every", "period"))
    return tasks, intervals


def test_creates_every_declared_entry():
    output = sync()
    entries = declared_entries()
    assert {entry.name for entry in entries} == {RECOMPUTE}
    for entry in entries:
        task = PeriodicTask.objects.get(name=entry.name)
        assert task.task == entry.task
        assert (task.interval.every, task.interval.period) == (entry.every_seconds, IntervalSchedule.SECONDS)
        assert json.loads(task.kwargs) == entry.kwargs
        assert json.loads(task.args) == []
        assert task.expire_seconds == entry.expire_seconds
        assert task.enabled is True
        assert task.crontab is None and task.solar is None and task.clocked is None
        assert f"created: {entry.name} (every {entry.every_seconds} seconds)" in output


def test_recompute_entry_fires_the_dispatcher_as_beat_every_interval():
    sync()
    task = PeriodicTask.objects.get(name=RECOMPUTE)
    assert task.task == "sizing_app.tasks.recompute"
    assert task.interval.every == 60
    assert json.loads(task.kwargs) == {"trigger": "beat"}
    assert task.expire_seconds == 60


def test_running_twice_changes_nothing():
    sync()
    # Beat's own bookkeeping between two deploys must survive the second sync too.
    PeriodicTask.objects.filter(name=RECOMPUTE).update(
        last_run_at=timezone.now() - timedelta(seconds=30), total_run_count=7
    )
    before = table_state()
    output = sync()
    assert table_state() == before
    assert f"updated: {RECOMPUTE} (every 60 seconds)" in output
    assert "created" not in output and "deleted" not in output


def test_entry_the_code_no_longer_declares_is_deleted():
    sync()
    every_minute = IntervalSchedule.objects.get(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name=f"{SCHEDULE_PREFIX}old housekeeping", task="sizing_app.tasks.gone",
                                interval=every_minute)
    output = sync()
    assert not PeriodicTask.objects.filter(name=f"{SCHEDULE_PREFIX}old housekeeping").exists()
    assert PeriodicTask.objects.filter(name=RECOMPUTE).exists()
    assert f"deleted: {SCHEDULE_PREFIX}old housekeeping (no longer declared)" in output


def test_unrelated_periodic_tasks_are_kept():
    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    others = [
        PeriodicTask.objects.create(name="celery.backend_cleanup", task="celery.backend_cleanup", interval=hourly),
        PeriodicTask.objects.create(name="billing: nightly export", task="billing.export", interval=hourly),
        # Only the exact prefix is ours: a name that merely starts alike is someone else's.
        PeriodicTask.objects.create(name="sizing:manual", task="other.task", interval=hourly),
    ]
    sync()
    sync()
    for task in others:
        kept = PeriodicTask.objects.get(pk=task.pk)
        assert (kept.name, kept.task, kept.interval_id) == (task.name, task.task, hourly.pk)


def test_interval_edited_in_admin_is_kept():
    sync()
    task = PeriodicTask.objects.get(name=RECOMPUTE)
    task.interval = IntervalSchedule.objects.create(every=15, period=IntervalSchedule.MINUTES)
    task.save()
    sync()
    task.refresh_from_db()
    assert (task.interval.every, task.interval.period) == (15, IntervalSchedule.MINUTES)


def test_reset_schedule_restores_the_declared_interval():
    sync()
    task = PeriodicTask.objects.get(name=RECOMPUTE)
    task.interval = IntervalSchedule.objects.create(every=15, period=IntervalSchedule.MINUTES)
    task.save()
    sync("--reset-schedule")
    task.refresh_from_db()
    assert (task.interval.every, task.interval.period) == (60, IntervalSchedule.SECONDS)


def test_definition_fields_are_put_back_but_a_disabled_entry_stays_disabled():
    sync()
    PeriodicTask.objects.filter(name=RECOMPUTE).update(
        task="sizing_app.tasks.renamed", kwargs='{"trigger": "manual"}', expire_seconds=None, enabled=False,
    )
    sync()
    task = PeriodicTask.objects.get(name=RECOMPUTE)
    assert task.task == "sizing_app.tasks.recompute"
    assert json.loads(task.kwargs) == {"trigger": "beat"}
    assert task.expire_seconds == 60
    # Switching the recompute off in admin is an operator's decision that a deploy must not undo.
    assert task.enabled is False


def test_a_failed_sync_changes_nothing(settings, monkeypatch):
    from sizing_app.management.commands import setup_periodic_tasks
    from sizing_app.recompute.schedule import PeriodicEntry

    sync()
    PeriodicTask.objects.create(name=f"{SCHEDULE_PREFIX}stale", task="x",
                                interval=IntervalSchedule.objects.get(every=60, period=IntervalSchedule.SECONDS))
    before = table_state()
    settings.SIZING_RECOMPUTE_SECONDS = 30
    # The first entry is rewritten (new interval), then the second one cannot be serialized.
    unserializable = PeriodicEntry(name=f"{SCHEDULE_PREFIX}broken", task="x", every_seconds=30,
                                   kwargs={"when": object()})
    monkeypatch.setattr(setup_periodic_tasks, "declared_entries", lambda: [*declared_entries(), unserializable])
    with pytest.raises(TypeError):
        sync("--reset-schedule")
    assert table_state() == before


def test_a_new_declared_interval_replaces_one_nobody_edited(settings):
    settings.SIZING_RECOMPUTE_SECONDS = 60
    call_command("setup_periodic_tasks", stdout=io.StringIO())
    settings.SIZING_RECOMPUTE_SECONDS = 120
    settings.SIZING_MAX_AGE_SECONDS = 360
    call_command("setup_periodic_tasks", stdout=io.StringIO())
    task = PeriodicTask.objects.get(name=RECOMPUTE)
    assert (task.interval.every, task.interval.period) == (120, IntervalSchedule.SECONDS)
