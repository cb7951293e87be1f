"""A stand-in for the trading engine: one long-lived process that sizes orders with `size_for`.

`python -m tests.faults.engine` sets Django up from its environment (DATABASE_URL, SIZING_*), warms
the hot state with its background refresh thread running, as a real engine would (unless
SIZING_FAULT_ENGINE_WARM=0: then it touches no database before its first request), and answers one
JSON request per stdin line with one JSON reply per stdout line. `EngineProcess` drives it from a
test, every answer waited for with a bound.
"""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

from tests.processes import kill_group

ROOT = Path(__file__).resolve().parents[2]
ANSWER_TIMEOUT_SECONDS = 30.0


# The engine process --------------------------------------------------------------------------
def _handle(request: dict) -> dict:
    from sizing_app.signal_generator import size_for
    from sizing_app.sizing.errors import SizingUnavailable
    from sizing_app.sizing.steps import persisted_factor as symbol_size_factor

    if request["op"] == "size":
        try:
            size = size_for(request["symbol"], request["gross"], order_ref=request["order_ref"], caller="fault-engine")
        except SizingUnavailable as exc:
            return {"ok": False, "error": "SizingUnavailable", "message": str(exc)}
        return {"ok": True, "size": size}
    if request["op"] == "intel":
        intel = symbol_size_factor(request["symbol"])
        return {"ok": True, **{key: intel[key] for key in ("size_factor", "snapshot_id", "stale", "fallback_reason")},
                "as_of": intel["as_of"].isoformat() if intel["as_of"] else None}
    raise ValueError(f"unknown op {request['op']!r}")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.conf import settings

    from sizing_app.sizing.hot_state import REFRESH_SECONDS, hot_state

    warm = os.environ.get("SIZING_FAULT_ENGINE_WARM", "1") == "1"
    if warm:
        # A real engine's second read, a refresh period after its first, starts the refresh thread;
        # do that up front so the test starts from the steady state.
        hot_state.latest_all()
        time.sleep(REFRESH_SECONDS * 1.2)
        hot_state.latest_all()
    print(json.dumps({"ready": True, "warm": warm, "refresh_thread": settings.SIZING_BACKGROUND_REFRESH
                      and hot_state._thread is not None and hot_state._thread.is_alive()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            return
        try:
            reply = _handle(request)
        except Exception as exc:  # anything else is a test failure: report it, keep serving
            reply = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
        print(json.dumps(reply), flush=True)


# Control from a test -------------------------------------------------------------------------
class EngineProcess:
    """The engine in its own process group; request() sends one request and waits (bounded) for its reply."""

    def __init__(self, env: dict, *, log_path: Path):
        self.env = env
        self.log_path = log_path
        self.popen: subprocess.Popen | None = None
        self._log = None

    def start(self) -> EngineProcess:
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.engine"], cwd=ROOT, env=self.env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, start_new_session=True,
        )
        hello = self._reply(timeout=60)
        assert hello.get("ready"), hello
        assert hello["refresh_thread"] or not hello["warm"], "a warm engine refreshes from its background thread"
        return self

    def _reply(self, *, timeout: float = ANSWER_TIMEOUT_SECONDS) -> dict:
        with selectors.DefaultSelector() as selector:
            selector.register(self.popen.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=timeout):
                raise AssertionError(f"the engine did not answer within {timeout:.0f} s\n{self.log_tail()}")
        line = self.popen.stdout.readline()
        if not line:
            raise AssertionError(f"the engine exited ({self.popen.poll()})\n{self.log_tail()}")
        return json.loads(line)

    def request(self, op: str, **fields) -> dict:
        self.popen.stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())
        self.popen.stdin.flush()
        return self._reply()

    def size(self, symbol: str, gross: float, order_ref: str) -> dict:
        return self.request("size", symbol=symbol, gross=gross, order_ref=order_ref)

    def intel(self, symbol: str) -> dict:
        return self.request("intel", symbol=symbol)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "--- engine log tail ---\n" + "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            kill_group(self.popen)
        if self.popen is not None:
            for stream in (self.popen.stdin, self.popen.stdout):
                if stream is not None and not stream.closed:
                    stream.close()
        if self._log is not None and not self._log.closed:
            self._log.close()


if __name__ == "__main__":
    main()
