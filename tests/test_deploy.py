"""Production readiness: `check --deploy` is clean with production settings; migrations are complete."""
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
