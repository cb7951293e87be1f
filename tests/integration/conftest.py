"""Real processes for the integration tests: Celery workers and beats on the test database.

Each test session gets a private SIZING_VAR_DIR (so a private filesystem broker queue) or, when
CELERY_BROKER_URL names Redis, a dedicated Redis database (SIZING_TEST_REDIS_DB, default 15)
flushed before and after; this process is pointed at the same broker. Workers reach
pytest-django's test database through DATABASE_URL: SQLite's test database is moved from memory
to a file, PostgreSQL's gets a per-session name. Every wait is bounded (WAIT_SECONDS) and every
process group is SIGKILLed in teardown. SIZING_TEST_KEEP_LOGS=1 keeps the processes' logs.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection, connections
from django.utils import timezone
from kombu.exceptions import ChannelError

from project.celery import app
from tests.processes import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
WAIT_SECONDS = 60
RECOMPUTE_SECONDS = 10  # the shortest interval sizing_app.conf accepts: beat tests stay short
REDIS_TEST_DB = int(os.environ.get("SIZING_TEST_REDIS_DB", "15"))
QUEUE = "celery"

_session_dir: Path | None = None


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def service_unavailable(reason: str) -> None:
    """A service the environment asks for is down: a failure in CI, a skip on a laptop."""
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: services are required)", pytrace=False)
    pytest.skip(reason)


def session_dir() -> Path:
    global _session_dir
    if _session_dir is None:
        # Memory-backed when available: SQLite's fsyncs dominate migrating the test database.
        shm = Path("/dev/shm")
        parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        _session_dir = Path(tempfile.mkdtemp(prefix="sizing-integration-", dir=parent))
    return _session_dir


def real_process_collection_finish(session):
    """Give the test database a name other processes can open, when integration tests will run.

    SQLite's test database moves from memory to a file; PostgreSQL's gets a per-session name.

    Done here rather than in a `django_db_modify_db_settings` override because the test database
    is created once per session, by whichever test needs it first, often one outside this folder.
    """
    real_process_dirs = (HERE, HERE.parent / "faults", HERE.parent / "client")
    if not any(Path(str(item.path)).is_relative_to(d) for item in session.items for d in real_process_dirs):
        return
    database = connections["default"].settings_dict
    test_settings = database.setdefault("TEST", {})
    if database["ENGINE"] == "django.db.backends.sqlite3":
        test_settings["NAME"] = str(session_dir() / "test.sqlite3")
    elif not test_settings.get("NAME"):
        # Another session on the same server would drop and recreate the shared default name
        # (test_postgres) under this session's workers.
        test_settings["NAME"] = f"test_{database['NAME']}_{os.getpid()}"


def real_process_unconfigure(config):
    if _session_dir is None:
        return
    if os.environ.get("SIZING_TEST_KEEP_LOGS"):
        print(f"\nintegration logs and database kept in {_session_dir}")
    else:
        shutil.rmtree(_session_dir, ignore_errors=True)


def _redis_url() -> str | None:
    """The dedicated test database on the Redis server CELERY_BROKER_URL names, or None."""
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith(("redis://", "rediss://")):
        return None
    return urlunsplit(urlsplit(url)._replace(path=f"/{REDIS_TEST_DB}"))


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture(scope="session", autouse=True)
def required_services():
    """Fail fast (CI) or skip (laptop) when DATABASE_URL / CELERY_BROKER_URL point at a dead server."""
    database = connections["default"].settings_dict
    if database["ENGINE"] == "django.db.backends.postgresql":
        import psycopg

        try:
            psycopg.connect(
                host=database["HOST"] or None, port=database["PORT"] or None, user=database["USER"] or None,
                password=database["PASSWORD"] or None, dbname=database["NAME"], connect_timeout=3,
            ).close()
        except psycopg.Error as exc:
            service_unavailable(f"PostgreSQL asked for by DATABASE_URL is unreachable: {exc}")
    configured = os.environ.get("CELERY_BROKER_URL", "")
    if configured and not configured.startswith(("filesystem://", "redis://", "rediss://")):
        service_unavailable(f"integration tests run on the filesystem broker or Redis, "
                            f"not {configured.split('://')[0]}://")
    url = _redis_url()
    if url:
        import redis

        try:
            _flush_redis(url)
        except redis.RedisError as exc:
            service_unavailable(f"Redis asked for by CELERY_BROKER_URL is unreachable: {exc}")


def _test_database_url() -> str:
    """DATABASE_URL of pytest-django's test database (call after it is set up)."""
    database = connections["default"].settings_dict
    if database["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(database['NAME']).resolve()}"
    configured = os.environ["DATABASE_URL"]
    return urlunsplit(urlsplit(configured)._replace(path=f"/{database['NAME']}"))


class CeleryProcess(ManagedProcess):
    """One `celery` command (worker, beat) as a ManagedProcess."""

    def __init__(self, name: str, args: list[str], *, env: dict, cwd: Path, log_path: Path):
        super().__init__(name, [sys.executable, "-m", "celery", *args], env=env, cwd=cwd, log_path=log_path)


def wait_for(condition: Callable[[], object], *, what: str, timeout: float = WAIT_SECONDS, interval: float = 0.25,
             processes: tuple[ManagedProcess, ...] = ()):
    """Poll until `condition()` is truthy; fail with the processes' logs at the deadline or if one dies."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        dead = [process for process in processes if not process.alive()]
        if dead:
            raise AssertionError(f"{dead[0].name} exited with {dead[0].popen.returncode} while waiting for {what}\n"
                                 + "\n".join(process.log_tail() for process in processes))
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n"
                                 + "\n".join(process.log_tail() for process in processes))
        time.sleep(interval)


def _override_conf(**values) -> None:
    """Override Celery settings in this process; None removes the override.

    The app reads Django's CELERY_ settings, and a namespaced key wins over a plain one, so
    `app.conf.broker_url = ...` would be silently shadowed: override the namespaced key.
    """
    for key, value in values.items():
        namespaced = f"CELERY_{key.upper()}"
        if value is None:
            app.conf.changes.pop(namespaced, None)
        else:
            app.conf[namespaced] = value
    _reset_broker_connections()


def _reset_broker_connections() -> None:
    # The app caches its connection pool; drop it so the next send uses the new broker settings.
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


class Stack:
    """The environment every Celery process of the session shares, and how to start them."""

    def __init__(self, directory: Path, *, database_url: str, redis_url: str | None):
        self.directory = directory
        self.var_dir = directory / "var"
        self.var_dir.mkdir(exist_ok=True)
        self.redis_url = redis_url
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
        inherited.pop("CELERY_BROKER_URL", None)
        self.env = {
            **inherited,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
            "PYTHONUNBUFFERED": "1",
            "SIZING_VAR_DIR": str(self.var_dir),
            "DATABASE_URL": database_url,
            "SIZING_RECOMPUTE_SECONDS": str(RECOMPUTE_SECONDS),
            "SIZING_MAX_AGE_SECONDS": str(3 * RECOMPUTE_SECONDS),
            "LOG_LEVEL": "INFO",
            **({"CELERY_BROKER_URL": redis_url} if redis_url else {}),
        }
        self.processes: list[CeleryProcess] = []
        self._count = 0

    def loaded_broker_settings(self) -> tuple[str, dict]:
        """The broker URL and transport options a process started with self.env really loads."""
        code = ("import json; from project.celery import app; "
                "print(json.dumps([app.conf.broker_url, app.conf.broker_transport_options]))")
        result = subprocess.run([sys.executable, "-c", code], cwd=self.var_dir, env=self.env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        url, options = json.loads(result.stdout.strip().splitlines()[-1])
        return url, options

    def spawn(self, kind: str, args: list[str], *, extra_env: dict | None = None) -> CeleryProcess:
        self._count += 1
        name = f"{kind}-{self._count}"
        # cwd is the private var dir: kombu's filesystem transport keeps its exchange tables in
        # ./control unless told otherwise, and those must not be shared with other sessions.
        process = CeleryProcess(name, args, env={**self.env, **(extra_env or {})}, cwd=self.var_dir,
                                log_path=self.directory / f"{name}.log")
        self.processes.append(process)
        return process

    def queued(self, queue: str = QUEUE) -> int:
        with app.connection_for_write() as connection:
            try:
                return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # Redis has no key for an empty queue: "no queue", so nothing queued
                return 0

    def kill_all(self) -> None:
        for process in self.processes:
            process.kill()


class Worker:
    """A Celery worker started from `app_module`, restartable, found by its unique node name."""

    def __init__(self, stack: Stack, *, app_module: str = "project", extra_env: dict | None = None):
        self.stack = stack
        self.app_module = app_module
        self.extra_env = extra_env or {}
        self.process: CeleryProcess | None = None
        self.hostname = ""

    def start(self) -> Worker:
        self.hostname = f"it-{uuid.uuid4().hex[:8]}@localhost"
        self.process = self.stack.spawn(
            "worker",
            ["-A", self.app_module, "worker", "--concurrency", "2", "--pool", "prefork", "-l", "INFO",
             "-n", self.hostname],
            extra_env=self.extra_env,
        )
        wait_for(self.responds, what=f"worker {self.hostname} to answer a ping", processes=(self.process,))
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def ensure_running(self) -> Worker:
        return self if self.alive() else self.start()

    def responds(self) -> bool:
        return bool(app.control.ping(destination=[self.hostname], timeout=1.0))

    def inspect(self, timeout: float = 5.0):
        return app.control.inspect(destination=[self.hostname], timeout=timeout)

    def busy(self) -> bool:
        inspect = self.inspect()
        active, reserved = inspect.active(), inspect.reserved()
        if active is None or reserved is None:
            return True  # no answer: cannot tell, so not idle
        return bool(active.get(self.hostname) or reserved.get(self.hostname))

    def wait_idle(self, timeout: float = WAIT_SECONDS) -> None:
        """Until nothing is queued, reserved or running: a late task must not write into the next test."""
        def settled():
            return self.stack.queued() == 0 and not self.busy() and self.stack.queued() == 0

        wait_for(settled, what=f"worker {self.hostname} to go idle", timeout=timeout, interval=0.5,
                 processes=(self.process,))

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()


def _wait_until_only_this_process_uses_the_database(timeout: float = 15) -> None:
    """PostgreSQL ends a killed client's session a moment later; until then DROP DATABASE fails."""
    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid()")
            (others,) = cursor.fetchone()
        if others == 0:
            return
        time.sleep(0.2)


@pytest.fixture(scope="package")
def stack(django_db_setup, django_db_blocker):
    """The session's Celery environment; the test process sends through the same broker."""
    redis_url = _redis_url()
    stack = Stack(session_dir(), database_url=_test_database_url(), redis_url=redis_url)
    broker_url, transport_options = stack.loaded_broker_settings()
    if not redis_url:
        assert broker_url.startswith("filesystem://"), broker_url
        assert Path(transport_options["data_folder_in"]).is_relative_to(stack.var_dir), transport_options
        transport_options.setdefault("control_folder", str(stack.var_dir / "control"))
        # This process waits for replies (ping, inspect) by polling the folder: poll briskly.
        transport_options["polling_interval"] = 0.1
    saved_env = os.environ.get("CELERY_BROKER_URL")
    if redis_url:
        os.environ["CELERY_BROKER_URL"] = redis_url  # Celery reads this variable before its settings
    _override_conf(broker_url=broker_url, broker_transport_options=transport_options)
    assert app.connection_for_write().transport_options == transport_options, "override not in effect"
    try:
        yield stack
    finally:
        stack.kill_all()
        with django_db_blocker.unblock():
            _wait_until_only_this_process_uses_the_database()
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_env
        _override_conf(broker_url=None, broker_transport_options=None)
        if redis_url:
            _flush_redis(redis_url)


@pytest.fixture(scope="package")
def celery_worker(stack):
    """The standard worker, `celery -A project worker --concurrency 2 --pool prefork`: started on first use."""
    worker = Worker(stack)
    yield worker
    worker.kill()  # idle by now: the `worker` fixture drained it after each test


@pytest.fixture()
def worker(celery_worker):
    """The standard worker, restarted if an earlier test stopped it; idle again after the test."""
    celery_worker.ensure_running()
    yield celery_worker
    if celery_worker.alive():
        celery_worker.wait_idle()


@pytest.fixture(autouse=True)
def _empty_append_only_tables(empty_append_only_tables):
    """Real processes commit ledger and snapshot rows: every test here empties them (tests/conftest.py)."""


@pytest.fixture(autouse=True)
def recompute_interval(settings):
    """The test process uses the interval the worker and beat processes were started with."""
    settings.SIZING_RECOMPUTE_SECONDS = RECOMPUTE_SECONDS
    settings.SIZING_MAX_AGE_SECONDS = 3 * RECOMPUTE_SECONDS


@pytest.fixture()
def beats(stack, worker):
    """Start beat processes with the DatabaseScheduler; all are killed, and the worker drained, after the test."""
    started: list[CeleryProcess] = []

    def start() -> CeleryProcess:
        process = stack.spawn(
            "beat", ["-A", "project", "beat", "-S", "django_celery_beat.schedulers:DatabaseScheduler", "-l", "INFO"],
        )
        started.append(process)
        wait_for(lambda: "beat: Starting..." in process.log(), what=f"{process.name} to start",
                 processes=(process,))
        return process

    yield start
    for process in started:
        process.kill()
    if worker.alive():
        worker.wait_idle()


def make_market(names: list[str], *, candles: int = 72) -> list:
    """Active symbols, each with `candles` closed hourly bars before the current bucket."""
    from tests.factories import make_candles, make_symbol

    last_open = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    symbols = []
    for seed, name in enumerate(names, start=1):
        symbol = make_symbol(name)
        make_candles(symbol, last_open=last_open, count=candles, seed=seed, start_price=50.0 * seed)
        symbols.append(symbol)
    return symbols
