"""Production readiness: `check --deploy` is clean with production settings; migrations are complete."""
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[1]


def _manage(*args, env_overrides: dict, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SIZING_VAR_DIR": str(tmp_path), **env_overrides}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    production = {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "HTTPS": "true",
        "ALLOWED_HOSTS": "sizing.example.com",
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=production, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_flags_an_unsafe_configuration(tmp_path):
    """The check above can fail: DEBUG on and plain HTTP are reported."""
    unsafe = {"DEBUG": "true", "SECRET_KEY": secrets.token_urlsafe(64), "HTTPS": "false"}
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=unsafe, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "security.W018" in result.stdout + result.stderr  # DEBUG in deployment


def test_bad_sizing_setting_stops_start_up(tmp_path):
    result = _manage("check", env_overrides={"SIZING_FACTOR_MAX": "3.0"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "SIZING_FACTOR_MAX=3.0 must be within [1.0, 2.0]" in result.stderr


def test_models_and_migrations_agree():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


SHOW_CACHE_TIMEOUTS = (
    "import json; from django.core.cache import caches; "
    "pools = {alias: caches[alias]._cache._get_connection_pool(True) for alias in ('default', 'throttle')}; "
    "print(json.dumps({alias: [pool.connection_kwargs.get(name) for name in ('socket_connect_timeout', "
    "'socket_timeout')] for alias, pool in pools.items()}))"
)


def test_redis_caches_time_out_and_a_url_may_say_how_long(tmp_path):
    # No connection is made: the pools only say what their connections will use.
    urls = {"CACHE_URL": "redis://127.0.0.1:6379/3", "THROTTLE_CACHE_URL": "redis://127.0.0.1:6379/4?socket_timeout=2"}
    result = _manage("shell", "-c", SHOW_CACHE_TIMEOUTS, env_overrides=urls, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"default": [0.5, 0.5], "throttle": [0.5, 2.0]}
