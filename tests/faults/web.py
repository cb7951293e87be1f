"""gunicorn on the session's test database, and a timed HTTP call to it.

`start_gunicorn` runs `gunicorn project.wsgi` (GUNICORN_WORKERS sync workers, the production entry
point) with the stack's environment plus the test's own, and waits until it answers.
`timed_request` makes one call on a fresh connection and says how long the answer took.
"""
from __future__ import annotations

import http.client
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.conftest import wait_for

from .load_clients import ClientProcess, free_port, http_get_status

GUNICORN_WORKERS = 2
CALL_TIMEOUT_SECONDS = 40.0  # past gunicorn's own 30 s worker timeout: a hung call is seen, not cut short


def start_gunicorn(stack, directory: Path, processes: list, *, env: dict, token: str = "", ready_status: int = 200,
                   worker_timeout: int | None = None) -> tuple[ClientProcess, int]:
    """Start the server; ready once a GET /api/v1/symbols/ with `token` answers `ready_status`."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "project.wsgi:application", "--workers", str(GUNICORN_WORKERS),
               "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    if worker_timeout is not None:
        command += ["--timeout", str(worker_timeout)]
    server = ClientProcess("gunicorn", command, env={**stack.env, **env}, cwd=stack.var_dir,
                           log_path=directory / "gunicorn.log")
    processes.append(server)
    wait_for(lambda: http_get_status(port, "/api/v1/symbols/", token) == ready_status,
             what=f"gunicorn to answer a GET with {ready_status}", processes=(server,), interval=0.5)
    return server, port


@dataclass
class Answer:
    status: int | None  # None: no answer (reset, refused, or nothing within CALL_TIMEOUT_SECONDS)
    seconds: float
    content_type: str = ""
    body: bytes = b""

    def json(self):
        return json.loads(self.body)


def timed_request(port: int, method: str, path: str, token: str, body: dict | None = None) -> Answer:
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    payload = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        payload = json.dumps(body)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CALL_TIMEOUT_SECONDS)
    started = time.monotonic()
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        content = response.read()
    except OSError:
        return Answer(None, time.monotonic() - started)
    finally:
        connection.close()
    return Answer(response.status, time.monotonic() - started, response.getheader("Content-Type", ""), content)
