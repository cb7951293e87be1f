"""HTTP load: wrk against gunicorn (2 workers) for GET latest factor, POST size and a plain view.

Runs inside the benchmark worker after the ledger part, on the same database.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DURATION_S = 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(url: str, token: str | None, script: str | None, duration_s: int) -> dict:
    command = ["wrk", "-t2", "-c8", f"-d{duration_s}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Token {token}"]
    if script:
        command[1:1] = ["-s", script]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", output).group(1))
    p50 = _to_ms(re.search(r"\s50%\s+([0-9.]+\w+)", output).group(1))
    p99 = _to_ms(re.search(r"\s99%\s+([0-9.]+\w+)", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {"rps": round(rps), "p50_ms": p50, "p99_ms": p99, "non_2xx": int(non_2xx.group(1)) if non_2xx else 0}


def bench_api(*, symbol: str, token: str, quick: bool) -> dict:
    if not shutil.which("wrk"):
        return {"api_note": "wrk not installed (apt-get install wrk): API load figures skipped"}
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "API_THROTTLE_ENGINE": "100000000/min",
           "SIZING_BACKGROUND_REFRESH": "true", "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bench.settings_wsgi:application", "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    duration = 3 if quick else DURATION_S
    try:
        _wait_for(port)
        base = f"http://127.0.0.1:{port}"
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(
                'wrk.method = "POST"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.body = \'{{"symbol": "{symbol}", "gross_target": 100.0, "order_ref": "wrk"}}\'\n'
            )
        for url in (f"{base}/bench/plain/", f"{base}/api/v1/factors/latest/{symbol}/"):  # warm both workers
            _wrk(url, token, None, 1)
        plain = _wrk(f"{base}/bench/plain/", None, None, duration)
        latest = _wrk(f"{base}/api/v1/factors/latest/{symbol}/", token, None, duration)
        size = _wrk(f"{base}/api/v1/size/", token, script.name, duration)
        os.unlink(script.name)
    finally:
        server.terminate()
        server.wait(timeout=20)
    return {
        "api_plain_rps": plain["rps"], "api_plain_p50_ms": plain["p50_ms"], "api_plain_p99_ms": plain["p99_ms"],
        "api_latest_rps": latest["rps"], "api_latest_p50_ms": latest["p50_ms"], "api_latest_p99_ms": latest["p99_ms"],
        "api_latest_vs_plain": round(latest["rps"] / plain["rps"], 2),
        "api_size_rps": size["rps"], "api_size_p50_ms": size["p50_ms"], "api_size_p99_ms": size["p99_ms"],
        "api_non_2xx": plain["non_2xx"] + latest["non_2xx"] + size["non_2xx"],
    }
