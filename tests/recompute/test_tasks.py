"""The Celery configuration as Celery actually loaded it, not as settings.py spells it.

A typo'd CELERY_ setting is silently ignored, so every assertion reads `app.conf` or the task.
"""
from __future__ import annotations

import difflib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery.app.defaults import DEFAULTS
from celery.utils.imports import symbol_by_name
from django.conf import settings as django_settings
from django_celery_beat.schedulers import DatabaseScheduler
from kombu.transport.redis import Channel as RedisChannel

from project.celery import app
from sizing_app.recompute.schedule import SCHEDULE_PREFIX, declared_entries

ROOT = Path(__file__).resolve().parents[2]
CHUNK_TASK = "sizing_app.tasks.recompute_chunk"
DISPATCH_TASK = "sizing_app.tasks.recompute"
NAMESPACE = "CELERY_"


def _registered() -> dict:
    app.loader.import_default_modules()  # the worker imports every app's tasks at start-up too
    return dict(app.tasks)


def _task(name: str):
    return _registered()[name]


def _effective(task, option: str):
    """A task option as the worker applies it: the task's own value, else the app-wide setting."""
    value = getattr(task, option, None)
    return app.conf[f"task_{option}"] if value is None else value


def unknown_celery_settings(names) -> list[str]:
    """Setting names meant for Celery that Celery will not read, each with a suggestion.

    Catches an unknown key behind the namespace (CELERY_TASK_TIME_LIMT) and a misspelt namespace
    (CELERT_TASK_TIME_LIMIT), which Celery never even looks at.
    """
    known = set(DEFAULTS)
    problems = []
    for name in names:
        if name.startswith(NAMESPACE):
            key = name[len(NAMESPACE):].lower()
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (meant {NAMESPACE}{close[0].upper()}?)" if close else ""
                problems.append(f"{name}: unknown to Celery{hint}")
        elif difflib.SequenceMatcher(None, name[:len(NAMESPACE)], NAMESPACE).ratio() >= 0.8:
            problems.append(f"{name}: does not start with {NAMESPACE}, so Celery never reads it")
    return problems


def test_every_celery_setting_is_known_to_celery():
    assert unknown_celery_settings(dir(django_settings)) == []


def test_the_typo_check_catches_typos():
    found = unknown_celery_settings(["CELERT_TASK_TIME_LIMIT", "CELERY_TASK_TIME_LIMT", "CELERYTASK_ACKS_LATE",
                                     "CELERY_TASK_TIME_LIMIT", "CELERY_BROKER_URL", "SIZING_RECOMPUTE_SECONDS"])
    assert [problem.split(":")[0] for problem in found] == [
        "CELERT_TASK_TIME_LIMIT", "CELERY_TASK_TIME_LIMT", "CELERYTASK_ACKS_LATE",
    ]
    assert "meant CELERY_TASK_TIME_LIMIT?" in found[1]


def test_a_typo_in_settings_is_reported(settings):
    settings.CELERY_TASK_TIME_LIMT = 10
    settings.CELERT_TASK_SOFT_TIME_LIMIT = 5
    assert sorted(problem.split(":")[0] for problem in unknown_celery_settings(dir(django_settings))) == [
        "CELERT_TASK_SOFT_TIME_LIMIT", "CELERY_TASK_TIME_LIMT",
    ]


def test_every_celery_setting_reached_app_conf():
    names = [name for name in dir(django_settings) if name.startswith(NAMESPACE)]
    assert names, "no CELERY_ settings found: is the namespace right?"
    for name in names:
        assert app.conf[name[len(NAMESPACE):].lower()] == getattr(django_settings, name), name


def test_app_wide_limits_and_acknowledgement():
    assert app.conf.task_acks_late is False  # only tasks that are safe to run twice opt in
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_time_limit == 300
    assert app.conf.task_soft_time_limit == 240
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]


def test_chunk_task_is_acked_late_with_its_own_limits():
    chunk = _task(CHUNK_TASK)
    assert chunk.acks_late is True
    assert chunk.reject_on_worker_lost is True
    assert chunk.time_limit == 180
    assert chunk.soft_time_limit == 120


def test_dispatcher_is_not_acked_late():
    # Redelivering the dispatcher could open a second manual run; it is cheap to fire again instead.
    dispatch = _task(DISPATCH_TASK)
    assert _effective(dispatch, "acks_late") is False
    assert dispatch.time_limit == 90
    assert dispatch.soft_time_limit == 60


def test_every_sizing_task_soft_limit_comes_before_its_hard_limit():
    tasks = {name: task for name, task in _registered().items() if name.startswith("sizing_app.")}
    assert {CHUNK_TASK, DISPATCH_TASK} <= set(tasks)
    for name, task in tasks.items():
        soft, hard = _effective(task, "soft_time_limit"), _effective(task, "time_limit")
        assert soft and hard and soft < hard, name


def _celery_conf_in_subprocess(tmp_path, **environment) -> dict:
    """Load settings and the Celery app in a fresh interpreter with a patched environment."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"CELERY_BROKER_URL", "CELERY_VISIBILITY_TIMEOUT", "DATABASE_URL"}}
    env.update(SIZING_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="project.settings", **environment)
    code = (
        "import json; from project.celery import app; "
        "print(json.dumps({'broker_url': app.conf.broker_url, "
        "'transport_options': app.conf.broker_transport_options}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_redis_visibility_timeout_exceeds_every_late_acked_task_limit(tmp_path):
    # Redis redelivers a message left unacknowledged for visibility_timeout: below a task's hard
    # limit, a slow but healthy chunk would be handed to a second worker while still running.
    loaded = _celery_conf_in_subprocess(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/15")
    assert loaded["broker_url"] == "redis://127.0.0.1:6379/15"
    visibility_timeout = loaded["transport_options"]["visibility_timeout"]
    late_acked = [task for name, task in _registered().items()
                  if not name.startswith("celery.") and _effective(task, "acks_late")]
    assert _task(CHUNK_TASK) in late_acked
    for task in late_acked:
        assert _effective(task, "time_limit") < visibility_timeout, task.name


def test_redis_read_timeout_outlasts_the_workers_queue_poll(tmp_path):
    # A worker waits for messages with BRPOP and a server-side timeout (kombu's polling_interval when
    # set, else its default): under a shorter read timeout, a reader waiting on BRPOP's reply would
    # fail every idle poll. And a broker that never answers must not block a send forever.
    options = _celery_conf_in_subprocess(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/15")["transport_options"]
    poll = options.get("polling_interval") or inspect.signature(RedisChannel._brpop_start).parameters["timeout"].default
    assert poll < options["socket_timeout"]
    assert 0 < options["socket_connect_timeout"] <= options["socket_timeout"]


def test_filesystem_broker_lives_under_the_var_dir(tmp_path):
    loaded = _celery_conf_in_subprocess(tmp_path)
    assert loaded["broker_url"] == "filesystem://"
    options = loaded["transport_options"]
    broker_dir = tmp_path / "var" / "broker"
    assert options["data_folder_in"] == options["data_folder_out"] == str(broker_dir / "queue")
    assert Path(options["processed_folder"]).is_relative_to(broker_dir)


def test_beat_uses_the_database_scheduler():
    assert symbol_by_name(app.conf.beat_scheduler) is DatabaseScheduler


def test_declared_beat_entries_expire_within_their_interval():
    entries = declared_entries()
    assert entries
    for entry in entries:
        assert entry.name.startswith(SCHEDULE_PREFIX)
        assert entry.task in _registered(), f"{entry.name} names an unknown task {entry.task}"
        # A send nobody consumed before the next one is due is dropped instead of piling up.
        assert entry.expire_seconds is not None
        assert 0 < entry.expire_seconds <= entry.every_seconds, entry.name


@pytest.mark.parametrize("interval", [10, 300, 3600])
def test_declared_interval_follows_the_setting(settings, interval):
    settings.SIZING_RECOMPUTE_SECONDS = interval
    settings.SIZING_MAX_AGE_SECONDS = 3 * interval
    (entry,) = [entry for entry in declared_entries() if entry.task == DISPATCH_TASK]
    assert entry.every_seconds == interval
    assert entry.expire_seconds == interval
    assert entry.kwargs == {"trigger": "beat"}
