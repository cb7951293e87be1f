"""A real service for the client's live tests: gunicorn on the test database, and an HTTP proxy that fails on cue.

LiveServer runs `gunicorn project.wsgi` (2 sync workers) in its own process group on a free port
of 127.0.0.1, with the session's environment (tests.integration.conftest.Stack); it can be killed
and started again on the same port, as a deploy or a crash does. FaultProxy sits between the
client and that server (a thread of the test process, stdlib only) and, for the requests it is
told to, answers 503 itself, or forwards the request and then loses the answer (drops the
connection, or holds it past the client's read timeout): the server really acted on it, the client
never heard. Every request it saw is in `seen`, so a test can count what reached the server.
"""
from __future__ import annotations

import http.client
import json
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.faults.load_clients import ClientProcess, free_port, http_get_status
from tests.integration.conftest import wait_for

# Sizing days (not the stack's 10 s beat interval): a snapshot made by a test stays fresh on the server.
SERVER_SETTINGS = {"SIZING_RECOMPUTE_SECONDS": "300", "SIZING_MAX_AGE_SECONDS": "900"}
UPSTREAM_TIMEOUT = 60.0  # seconds: a busy 2-core machine can be slow; a stuck server still fails the test


class LiveServer:
    """gunicorn on the test database; start() waits until an authenticated GET answers 200."""

    def __init__(self, env: dict[str, str], *, cwd: Path, log_dir: Path, token: str):
        self.env = {**env, **SERVER_SETTINGS}
        self.cwd = cwd
        self.log_dir = log_dir
        self.token = token
        self.port = free_port()
        self.process: ClientProcess | None = None
        self._starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> ClientProcess:
        """Start gunicorn without waiting for it (a test may want to race its start-up)."""
        self._starts += 1
        self.process = ClientProcess(
            f"gunicorn-{self._starts}",
            [sys.executable, "-m", "gunicorn", "project.wsgi:application", "--workers", "2",
             "--bind", f"127.0.0.1:{self.port}", "--timeout", "120", "--log-level", "warning"],
            env=self.env, cwd=self.cwd, log_path=self.log_dir / f"gunicorn-{self._starts}.log",
        )
        return self.process

    def wait_ready(self) -> None:
        wait_for(lambda: http_get_status(self.port, "/api/v1/symbols/", self.token) == 200,
                 what="gunicorn to answer an authenticated GET", processes=(self.process,), interval=0.2)

    def start(self) -> LiveServer:
        self.spawn()
        self.wait_ready()
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def log_tail(self) -> str:
        return self.process.log_tail() if self.process is not None else ""


@dataclass
class Seen:
    method: str
    path: str
    fault: str  # "" when forwarded and answered


class FaultProxy:
    """HTTP/1.1 proxy from a free port of 127.0.0.1 to the live server, failing the requests it is told to.

    fail(method, path, fault) arms one fault for the next matching request:
    - "answer_503": answer what the server answers when its ledger cannot record (nothing forwarded);
    - "forward_then_drop": forward, read the server's whole answer, then close the connection unanswered;
    - "forward_then_stall": forward, read the whole answer, then hold the connection silent for
      `stall_seconds` (longer than the client's read timeout) and close it unanswered.
    """

    FAULTS = ("answer_503", "forward_then_drop", "forward_then_stall")

    def __init__(self, upstream_port: int, *, stall_seconds: float = 3.0):
        self.upstream_port = upstream_port
        self.stall_seconds = stall_seconds
        self.seen: list[Seen] = []
        self._armed: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes a stalled handler
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def fail(self, method: str, path: str, fault: str) -> None:
        assert fault in self.FAULTS, fault
        with self._lock:
            self._armed.append((method, path, fault))

    def requests_to(self, method: str, path: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.seen if (seen.method, seen.path) == (method, path)]

    def _take_fault(self, method: str, path: str) -> str:
        with self._lock:
            for index, (armed_method, armed_path, fault) in enumerate(self._armed):
                if (armed_method, armed_path) == (method, path):
                    del self._armed[index]
                    return fault
            return ""

    def _record(self, method: str, path: str, fault: str) -> None:
        with self._lock:
            self.seen.append(Seen(method, path, fault))

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes):
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=UPSTREAM_TIMEOUT)
        try:
            upstream.request(method, path, body=body or None, headers=headers)
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self
        # Hop-by-hop headers are the proxy's own; Server and Date the handler writes itself.
        not_relayed = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "server", "date"}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the client expects

            def log_message(self, format: str, *args) -> None:  # noqa: A002  (the base class's name)
                pass  # the test's output is the place for failures, not for every request

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = proxy._take_fault(self.command, self.path)
                proxy._record(self.command, self.path, fault)
                if fault == "answer_503":
                    self._answer(503, [("Content-Type", "application/json"), ("Retry-After", "1")], json.dumps(
                        {"error": {"code": "service_unavailable", "message": "The ledger cannot record a decision "
                                   "now (fault proxy): nothing was sized or written. Retry shortly.",
                                   "details": None}}).encode())
                    return
                headers = {key: value for key, value in self.headers.items() if key.lower() not in not_relayed}
                status, response_headers, response_body = proxy._forward(self.command, self.path, headers, body)
                if fault == "forward_then_stall":
                    proxy._stop.wait(proxy.stall_seconds)
                if fault:  # the server acted and answered; the client is never told
                    self.close_connection = True
                    return
                self._answer(status, [(key, value) for key, value in response_headers
                                      if key.lower() not in not_relayed], response_body)

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _relay

        return Handler
