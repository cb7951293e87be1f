#!/usr/bin/env python3
"""Set up and run the service, its tests or its benchmarks with nothing but Python 3.11.

    python3 dev.py run     # venv, migrations, demo data, web + Celery worker + beat
    python3 dev.py test    # venv with test tools, the whole test suite
    python3 dev.py bench   # the benchmarks, one JSON object on stdout
"""
from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
PYTHON = BIN / "python"
VAR = ROOT / "var"
BROWSER_PACKAGES = ("chromium",)


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(*command, env=None, check=True) -> int:
    result = subprocess.run([str(part) for part in command], cwd=ROOT, env=env)
    if check and result.returncode != 0:
        sys.exit(f"Command failed ({result.returncode}): {' '.join(map(str, command))}")
    return result.returncode


def ensure_venv(requirements: str) -> None:
    """Create .venv and install the pinned requirements; skipped when nothing changed."""
    if sys.version_info < (3, 11):  # noqa: UP036  (an older python3 gets this message, not a SyntaxError later)
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        say(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256()
    for name in ("requirements.txt", requirements):
        digest.update((ROOT / name).read_bytes())
    stamp = VENV / f".installed-{requirements}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    say(f"installing {requirements}")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements)
    stamp.write_text(digest.hexdigest())


def manage(*args, env=None) -> None:
    run(PYTHON, "manage.py", *args, env=env)


def cmd_run(args) -> None:
    ensure_venv("requirements.txt")
    env = {**os.environ}
    say("migrating the database (default: SQLite under var/)")
    manage("migrate", "--no-input", "-v", "0", env=env)
    manage("collectstatic", "--no-input", "-v", "0", env=env)
    manage("setup_periodic_tasks", env=env)
    say("seeding deterministic demo data and computing snapshots")
    manage("seed_demo", env=env)
    password_file = VAR / "demo_admin_password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(12))
        password_file.chmod(0o600)
    password = password_file.read_text().strip()
    # "--password=..." in one argument: a generated password may start with "-", which argparse
    # would take for an option.
    manage("create_api_user", "admin", "--role", "risk", "--superuser", f"--password={password}", env=env)
    processes = {
        "web": [BIN / "gunicorn", "project.wsgi", "--bind", f"127.0.0.1:{args.port}", "--workers", "2",
                "--access-logfile", "-"],
        "worker": [BIN / "celery", "-A", "project", "worker", "--loglevel", "INFO", "--concurrency", "2"],
        "beat": [BIN / "celery", "-A", "project", "beat", "--loglevel", "INFO",
                 "--schedule", str(VAR / "celerybeat-schedule")],
    }
    running = {name: subprocess.Popen([str(p) for p in command], cwd=ROOT, env=env)
               for name, command in processes.items()}
    base = f"http://127.0.0.1:{args.port}"
    print(
        "\n"
        f"  Dashboard:  {base}/dashboard/\n"
        f"  Admin:      {base}/admin/   (user admin, password {password})\n"
        f"  API docs:   {base}/api/v1/docs/\n"
        f"  Size an order:  .venv/bin/python manage.py size BTCUSDC 1000\n"
        "  Celery beat recomputes every SIZING_RECOMPUTE_SECONDS (300 s). Ctrl-C stops everything.\n",
        flush=True,
    )

    def stop(*_):
        for process in running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in running.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while True:
        for name, process in running.items():
            if process.poll() is not None:
                print(f"{name} exited with code {process.returncode}; stopping the others.", file=sys.stderr)
                stop()
        time.sleep(1)


def install_browser() -> None:
    """Chromium from Debian's packages for the browser tests (Playwright's download is not used)."""
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        say("chromium is not installed and cannot be installed here: browser tests will skip")
        return
    say("installing chromium from Debian packages")
    run("apt-get", "update", "-qq", check=False)
    run("apt-get", "install", "-y", "-qq", *BROWSER_PACKAGES, check=False)


def cmd_test(args) -> None:
    ensure_venv("requirements-dev.txt")
    install_browser()
    if not args.pytest_args:  # the whole run: lint first, as CI does (ruff.toml)
        say("ruff check")
        if run(BIN / "ruff", "check", ".", check=False) != 0:
            sys.exit("ruff found problems (above): fix them; `.venv/bin/ruff check --fix .` fixes the fixable ones.")
    code = run(PYTHON, "-m", "pytest", *args.pytest_args, check=False)
    sys.exit(code)


def cmd_bench(args) -> None:
    ensure_venv("requirements-dev.txt")
    install_browser()  # the dashboard render figure needs Chromium
    if not shutil.which("wrk") and os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing wrk from Debian packages for the HTTP load figures")
        run("apt-get", "install", "-y", "-qq", "wrk", check=False)
    sys.exit(run(PYTHON, "bench/run.py", *args.bench_args, check=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="set up and run web server, Celery worker and beat on demo data")
    run_parser.add_argument("--port", type=int, default=8000)
    run_parser.set_defaults(handler=cmd_run)
    test_parser = sub.add_parser("test", help="set up and run the test suite (extra args go to pytest)")
    test_parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test_parser.set_defaults(handler=cmd_test)
    bench_parser = sub.add_parser("bench", help="run the benchmarks (extra args go to bench/run.py)")
    bench_parser.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench_parser.set_defaults(handler=cmd_bench)
    args = parser.parse_args()
    args.handler(args)


if __name__ == "__main__":
    main()
