"""The broker cut off under a running worker and beat: sizing carries on, goes stale, and recovers calmly.

Redis is reached through TCP proxies (tcp_proxy.py): one for the worker, one for beat, so the
outage can end for beat first (its sends then pile up in Redis) and for the worker later, which
is when a backlog storm would happen. The engine (engine.py) reads the database directly: the
broker is not on its path. Needs Redis: the filesystem broker has no connection to cut.
"""
from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from project.celery import app
from sizing_app.models import RecomputeRun, SizingDecision, SizingSnapshot
from tests.integration.conftest import QUEUE, RECOMPUTE_SECONDS, WAIT_SECONDS, Worker, make_market, wait_for

from .engine import EngineProcess
from .tcp_proxy import ProxyProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NAMES = ["BTCUSDC", "ETHUSDC"]
MAX_AGE_SECONDS = 3 * RECOMPUTE_SECONDS  # what tests.integration's Stack starts every process with
# The worker retries its broker connection after 2, 4, 6 ... s (kombu's ensure_connection): after a
# minute-long outage it may sleep up to ~15 s before it tries again.
RECOVERY_SECONDS = 90
SEND = "Sending due task"


class BrokerPath:
    """A proxy to the session's Redis database and the broker URL that goes through it."""

    def __init__(self, redis_url: str):
        parts = urlsplit(redis_url)
        self.proxy = ProxyProcess(parts.port or 6379, target_host=parts.hostname or "127.0.0.1").start()
        auth = parts.netloc.rpartition("@")[0]
        self.url = urlunsplit(parts._replace(netloc=f"{auth + '@' if auth else ''}127.0.0.1:{self.proxy.port}"))


@pytest.fixture()
def outage_stack(stack, celery_worker):
    """A worker and a beat, each talking to Redis through its own proxy; the only consumers of the queue."""
    if not stack.redis_url:
        pytest.skip("needs Redis as the broker (CELERY_BROKER_URL=redis://...): "
                    "the filesystem broker has no connection to cut")
    celery_worker.kill()  # the package's standard worker would consume straight from Redis
    worker_path, beat_path = BrokerPath(stack.redis_url), BrokerPath(stack.redis_url)
    processes = {"worker": None, "beat": None, "engine": None}
    try:
        make_market(NAMES)
        call_command("setup_periodic_tasks", stdout=io.StringIO())
        processes["worker"] = Worker(stack, extra_env={"CELERY_BROKER_URL": worker_path.url}).start()
        beat = stack.spawn("beat", ["-A", "project", "beat", "-S", "django_celery_beat.schedulers:DatabaseScheduler",
                                    "-l", "INFO"], extra_env={"CELERY_BROKER_URL": beat_path.url})
        processes["beat"] = beat
        wait_for(lambda: "beat: Starting..." in beat.log(), what="beat to start", processes=(beat,))
        engine = EngineProcess({**stack.env, "SIZING_BACKGROUND_REFRESH": "true"},
                               log_path=stack.directory / "engine-broker.log")
        processes["engine"] = engine.start()
        yield {"worker_path": worker_path, "beat_path": beat_path, "worker": processes["worker"], "beat": beat,
               "engine": engine}
    finally:
        for name in ("beat", "engine", "worker"):
            if processes[name] is not None:
                processes[name].kill()
        worker_path.proxy.kill()
        beat_path.proxy.kill()
        app.control.purge()  # nothing of this test may reach a later test's worker


def complete_beat_run(after_pk: int = 0) -> RecomputeRun | None:
    return (RecomputeRun.objects.filter(trigger="beat", status=RecomputeRun.Status.OK, pk__gt=after_pk)
            .order_by("-pk").first())


def oldest_queued_expiry(redis_url: str) -> datetime:
    """The `expires` stamped by beat on the oldest message waiting in the queue (kombu LPUSHes, BRPOPs)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5)
    try:
        message = json.loads(client.lindex(QUEUE, -1))
    finally:
        client.close()
    return datetime.fromisoformat(message["headers"]["expires"])


def decision(order_ref: str) -> SizingDecision:
    return SizingDecision.objects.get(order_ref=order_ref)


def api_get(path: str) -> dict:
    user = get_user_model().objects.get_or_create(username="fault-reviewer", defaults={"is_superuser": True})[0]
    client = APIClient()
    client.force_authenticate(user=user)
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.json()


def test_broker_outage_sizing_serves_last_snapshots_goes_stale_and_recovers_without_backlog(stack, outage_stack):
    worker, beat, engine = outage_stack["worker"], outage_stack["beat"], outage_stack["engine"]
    worker_path, beat_path = outage_stack["worker_path"], outage_stack["beat_path"]
    celery = (worker.process, beat)

    # Up: beat's runs complete and the engine sizes with their factors.
    last_run = wait_for(complete_beat_run, what="a complete beat-fired run", processes=celery)
    # Cut right after a run completed: the next send is most of an interval away, so no dispatch is
    # caught half-way (run opened, chunks not yet queued).
    worker_path.proxy.kill()
    beat_path.proxy.kill()
    beat_log_at_cut = len(beat.log())
    sends_at_cut = beat.log().count(SEND)
    last = SizingSnapshot.objects.get(run=last_run, symbol__name="BTCUSDC")

    # Down, still fresh: the last snapshots are served (once the engine's refresh has seen them).
    wait_for(lambda: engine.intel("BTCUSDC")["snapshot_id"] == last.pk, what="the engine to load the last snapshot")
    assert engine.size("BTCUSDC", 100.0, "down-fresh")["ok"]
    fresh = decision("down-fresh")
    stale_by_then = (fresh.created_at - last.as_of).total_seconds() > MAX_AGE_SECONDS  # only on a crawling machine
    assert (fresh.snapshot_id, fresh.stale) == (last.pk, stale_by_then)
    assert fresh.intel_factor == (1.0 if stale_by_then else last.size_factor)

    # Down: beat keeps ticking (its sends fail and are not kept), nothing reaches Redis.
    wait_for(lambda: "Message Error: Couldn't apply scheduled task" in beat.log()[beat_log_at_cut:],
             what="beat to try a send while the broker is down", processes=(beat,))
    assert stack.queued() == 0, "a send made while the broker was unreachable was queued after all"

    # Beat's path comes back first: its sends now pile up in Redis, the worker still cannot take them.
    beat_path.proxy.restart()
    wait_for(lambda: stack.queued() >= 2, what="two scheduled sends queued while no worker can consume",
             timeout=WAIT_SECONDS, processes=(beat,))

    # Past SIZING_MAX_AGE_SECONDS: same snapshot, flagged stale, intel factor neutral.
    wait_for(lambda: engine.intel("BTCUSDC")["stale"], what="the engine to flag the last snapshot stale",
             timeout=MAX_AGE_SECONDS + WAIT_SECONDS, interval=1.0)
    assert engine.size("BTCUSDC", 100.0, "down-stale")["ok"]
    stale = decision("down-stale")
    assert (stale.snapshot_id, stale.stale, stale.fallback_reason) == (last.pk, True, "stale_snapshot")
    assert (stale.intel_factor, stale.applied_factor) == (1.0, 1.0)
    assert stale.final_size == pytest.approx(stale.inverse_vol_size * stale.regime_multiplier
                                             * stale.sharpe_multiplier)
    latest = api_get("/api/v1/factors/latest/BTCUSDC/")
    assert (latest["snapshot_id"], latest["stale"]) == (last.pk, True)
    assert latest["age_seconds"] > MAX_AGE_SECONDS
    health = api_get("/api/v1/execution-health/BTCUSDC/")
    assert health["stale"] is True
    assert (health["sizing"]["intel_size_factor"], health["sizing"]["fallback_reason"]) == (1.0, "stale_snapshot")
    assert not RecomputeRun.objects.filter(pk__gt=last_run.pk).exists(), "no run without a worker"

    # The worker's path comes back: the expired sends are dropped, the current one runs.
    assert stack.queued() >= 2
    oldest_expires = oldest_queued_expiry(stack.redis_url)
    wait_for(lambda: datetime.now(UTC) > oldest_expires, what="the oldest queued send to expire",
             timeout=RECOMPUTE_SECONDS + 5)
    worker_log_start = len(worker.process.log())
    worker_path.proxy.restart()
    recovered = wait_for(lambda: complete_beat_run(after_pk=last_run.pk), what="a complete run after recovery",
                         timeout=RECOVERY_SECONDS, processes=celery)
    wait_for(lambda: not engine.intel("BTCUSDC")["stale"], what="the engine to serve the new snapshot",
             processes=celery)
    assert engine.size("BTCUSDC", 100.0, "recovered")["ok"]
    after = decision("recovered")
    assert (after.stale, after.fallback_reason, after.intel_factor) == (False, "", after.snapshot.size_factor)
    assert after.snapshot.as_of >= recovered.as_of > last.as_of

    # No storm: at most the current interval's send ran, not one run per send made since the cut.
    runs_after = RecomputeRun.objects.filter(pk__gt=last_run.pk)
    sends_since_cut = beat.log().count(SEND) - sends_at_cut
    assert runs_after.count() <= 2 < sends_since_cut, (runs_after.count(), sends_since_cut)
    assert all(run.as_of >= last.as_of for run in runs_after)
    worker_log = worker.process.log()[worker_log_start:]
    discarded = re.findall(r"Discarding revoked task: sizing_app\.tasks\.recompute\[", worker_log)
    assert discarded, f"the queued sends older than one interval should have expired\n{worker_log}"
    assert "raised unexpected" not in worker_log, worker_log
