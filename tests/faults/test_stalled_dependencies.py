"""Dependencies that accept connections and never answer: every API call still answers within 2 s.

A real gunicorn server (project.wsgi, GUNICORN_WORKERS sync workers) on the test database has its
throttle cache or its broker pointed at a stalled listener (stalled_listener.py): the TCP connect
succeeds and nothing is ever said back, so only the server's own timeouts end the wait. Without
them each call hangs until gunicorn kills the worker (30 s) and answers an HTML 500.

Throttling fails open: a call is let through while the cache is stalled, each worker asks the
cache again only once per CACHE_RETRY_SECONDS, and once the cache answers (here: a proxy to the
real Redis takes the stalled listener's port) the same workers count in it again. A stalled broker
makes POST runs/ a JSON 503. A statement stuck behind a lock is cancelled by the web sessions'
statement_timeout (PostgreSQL), and only the web server's sessions have one.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

import psycopg
import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import caches
from django.db import connection
from rest_framework.authtoken.models import Token

from sizing_app.api.throttling import CACHE_RETRY_SECONDS
from sizing_app.models import RecomputeRun, SizingDecision
from sizing_app.roles import ENGINE, RISK, sync_role_groups
from tests.fixtures.api import make_api_user
from tests.integration.conftest import ROOT, service_unavailable

from .ledger_checks import ledger_refs
from .stalled_listener import StalledListener
from .tcp_proxy import ProxyProcess
from .web import GUNICORN_WORKERS, start_gunicorn, timed_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ANSWER_SECONDS = 2.0
LATEST = "/api/v1/factors/latest/BTCUSDC/"
SIZE = "/api/v1/size/"


@pytest.fixture()
def tokens(transactional_db) -> dict[str, str]:
    sync_role_groups(Group, Permission)  # an earlier transactional test's flush may have emptied the groups
    return {role: make_api_user(role)[1] for role in (ENGINE, RISK)}


@pytest.fixture()
def web_server(stack):
    """Start gunicorn with extra environment; ready once an anonymous call is refused (no throttle, no cache)."""
    directory = stack.directory / f"stalled-{time.monotonic_ns()}"
    directory.mkdir()
    processes: list = []

    def start(env: dict) -> int:
        return start_gunicorn(stack, directory, processes, env=env, ready_status=401)[1]

    yield start
    for process in processes:
        process.kill()


@pytest.fixture()
def throttle_redis():
    """The Redis the throttle counts in (THROTTLE_CACHE_URL), emptied, and a client to read it."""
    import redis

    url = os.environ.get("THROTTLE_CACHE_URL", "")
    if not url.startswith(("redis://", "rediss://")):
        pytest.skip("needs Redis as the throttle cache (THROTTLE_CACHE_URL=redis://...): the cache to recover onto")
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_unavailable(f"Redis asked for by THROTTLE_CACHE_URL is unreachable: {exc}")
    caches["throttle"].clear()  # no count of an earlier test under a reused user id
    yield urlsplit(url), client
    client.close()


def size_body(order_ref: str) -> dict:
    return {"symbol": "BTCUSDC", "gross_target": 100.0, "order_ref": order_ref}


def assert_answered_in_time(answers: list, expected: dict) -> None:
    """Each (method, Answer) got its expected status within ANSWER_SECONDS."""
    wrong = Counter((method, answer.status) for method, answer in answers if answer.status != expected[method])
    assert not wrong, f"unexpected answers (method, status): {dict(wrong)} of {len(answers)} calls"
    slowest = max(answer.seconds for _, answer in answers)
    assert slowest < ANSWER_SECONDS, f"slowest answer {slowest:.2f} s"


def test_a_stalled_throttle_cache_lets_every_call_through_within_2_s_and_is_asked_once_per_retry_period(
        snapshot_market, tokens, web_server):
    token = tokens[ENGINE]
    with StalledListener() as cache:
        port = web_server({"THROTTLE_CACHE_URL": cache.url(), "API_THROTTLE_ENGINE": "100000/min"})
        answers = []
        started = time.monotonic()
        # Past one retry period: the calls measured include the ones that wait out the cache's timeout again.
        while time.monotonic() - started < 1.5 * CACHE_RETRY_SECONDS:
            index = len(answers) // 2
            answers.append(("GET", timed_request(port, "GET", LATEST, token)))
            answers.append(("POST", timed_request(port, "POST", SIZE, token, size_body(f"stalled-cache-{index}"))))
        elapsed = time.monotonic() - started
        asked = cache.accepted  # each connection is one worker asking the cache, and waiting for nothing

    assert_answered_in_time(answers, {"GET": 200, "POST": 201})
    # Once when it first syncs, then once per retry period: not once per call.
    most = GUNICORN_WORKERS * (int(elapsed // CACHE_RETRY_SECONDS) + 1)
    assert 1 <= asked <= most, f"the stalled cache was asked {asked} times in {elapsed:.1f} s ({len(answers)} calls)"
    assert len(answers) > 3 * most, "too few calls for the bound above to show anything"
    assert SizingDecision.objects.filter(order_ref__startswith="stalled-cache-").count() == len(answers) // 2


def test_throttling_counts_in_the_cache_again_once_it_answers(snapshot_market, tokens, web_server, throttle_redis):
    redis_url, client = throttle_redis
    token = tokens[ENGINE]
    limit = 30  # per minute; above the calls made while the cache is stalled, so none is refused then
    cache = StalledListener()
    proxy = ProxyProcess(redis_url.port or 6379, target_host=redis_url.hostname or "127.0.0.1", listen_port=cache.port)
    try:
        port = web_server({"THROTTLE_CACHE_URL": cache.url(path=redis_url.path or "/0"),
                           "API_THROTTLE_ENGINE": f"{limit}/min"})
        answers = []
        for index in range(5):
            answers.append(("GET", timed_request(port, "GET", LATEST, token)))
            answers.append(("POST", timed_request(port, "POST", SIZE, token, size_body(f"before-recovery-{index}"))))
        assert_answered_in_time(answers, {"GET": 200, "POST": 201})
        assert cache.accepted >= 1, "the server never asked the stalled cache"

        # The cache comes back at the same address, under the same server processes.
        cache.close()
        proxy.start()
        time.sleep(CACHE_RETRY_SECONDS + 0.5)  # every worker's retry period is over
        statuses = []
        while 429 not in statuses and len(statuses) < 3 * limit:
            statuses.append(timed_request(port, "GET", LATEST, token).status)
        window = int(time.time() // 60)
    finally:
        cache.close()
        proxy.kill()

    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}, statuses
    user_id = Token.objects.get(key=token).user_id
    shared = [client.get(f"throttle:1:rate:engine:{user_id}:60:{minute}") for minute in (window, window - 1)]
    # Counted in Redis past the limit: the refusal came from the shared count, not from a worker's own.
    assert max(int(value or 0) for value in shared) > limit, shared


def test_a_stalled_broker_makes_post_runs_a_json_503_within_2_s(tokens, web_server):
    with StalledListener() as broker:
        port = web_server({"CELERY_BROKER_URL": broker.url()})
        answers = [timed_request(port, "POST", "/api/v1/runs/", tokens[RISK]) for _ in range(3)]
        reached = broker.accepted

    for answer in answers:
        assert (answer.status, answer.content_type) == (503, "application/json"), answer
        assert answer.json()["error"]["code"] == "service_unavailable"
        assert answer.seconds < ANSWER_SECONDS, f"503 after {answer.seconds:.2f} s"
    assert reached >= len(answers), "a call answered without trying the broker"
    assert not RecomputeRun.objects.exists()


@pytest.mark.parametrize("lock", [
    # As a migration altering the ledger would: every INSERT queues behind it.
    pytest.param(f'LOCK TABLE "{SizingDecision._meta.db_table}" IN ACCESS EXCLUSIVE MODE', id="table-lock"),
    # As a session stalled mid-decision would: the ledger's lock on BTCUSDC's chain (services.decisions).
    pytest.param("SELECT pg_advisory_xact_lock(hashtextextended('BTCUSDC', 0))", id="chain-lock"),
])
def test_a_statement_stuck_behind_a_lock_is_a_json_503_within_the_statement_timeout(
        postgres, snapshot_market, tokens, web_server, lock):
    statement_timeout = 1.0
    token = tokens[ENGINE]
    port = web_server({"DATABASE_STATEMENT_TIMEOUT": str(statement_timeout)})
    assert timed_request(port, "POST", SIZE, token, size_body("before-lock")).status == 201

    settings_dict = connection.settings_dict
    with psycopg.connect(host=settings_dict["HOST"] or None, port=settings_dict["PORT"] or None,
                         user=settings_dict["USER"] or None, password=settings_dict["PASSWORD"] or None,
                         dbname=settings_dict["NAME"], connect_timeout=3) as locker:
        locker.execute(lock)  # held until the rollback
        answer = timed_request(port, "POST", SIZE, token, size_body("behind-lock"))
        locker.rollback()

    assert (answer.status, answer.content_type) == (503, "application/json"), answer
    assert answer.json()["error"]["code"] == "service_unavailable"
    assert statement_timeout - 0.1 < answer.seconds < statement_timeout + 1.0, f"503 after {answer.seconds:.2f} s"
    assert timed_request(port, "POST", SIZE, token, size_body("after-lock")).status == 201
    assert ledger_refs() == ["after-lock", "before-lock"]


SHOW_STATEMENT_TIMEOUT = ("from django.db import connection\n"
                          "with connection.cursor() as cursor:\n"
                          "    cursor.execute('SHOW statement_timeout')\n"
                          "    print(cursor.fetchone()[0])\n")


def test_only_the_web_servers_sessions_have_a_statement_timeout(stack, postgres):
    """Management commands (migrate, recompute_factors, the importers) and workers run long statements."""
    env = {**stack.env, "DATABASE_STATEMENT_TIMEOUT": "1.5"}

    def shown(command: list[str]) -> str:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    web = shown([sys.executable, "-c", "import project.wsgi\n" + SHOW_STATEMENT_TIMEOUT])
    command = shown([sys.executable, "manage.py", "shell", "-c", SHOW_STATEMENT_TIMEOUT])
    assert (web, command) == ("1500ms", "0")
