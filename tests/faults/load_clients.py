"""Load clients for tests/faults/test_load.py, and the test side's helpers to run and read them.

Run as `python -m tests.faults.load_clients engine|http NAME --control DIR --out FILE ...`:

- `engine` is a trading-engine process: it calls `sizing_app.signal_generator.size_for` in a
  loop, with its own connection and chain-head cache (DJANGO_SETTINGS_MODULE and DATABASE_URL
  come from the environment; it calls django.setup()).
- `http` POSTs to the REST API's size endpoint with an engine-role token, one connection per call.

Both warm up, write DIR/ready-NAME, wait for DIR/go, then size orders until DIR/stop appears
(or --max-seconds pass, so an orphan cannot run on). Call i has order_ref NAME-i and, once the
call returned, one JSON line in FILE saying what the client saw: a success with what it was
handed, or the error class / HTTP status. Lines are written after the call and flushed one by
one, so a client SIGKILLed mid-call leaves exactly its in-flight call (NAME-<complete lines>)
without an outcome: that call is unknown, its ledger row may or may not exist.

The test-side helpers (ClientProcess, read_outcomes, ...) use only the standard library, so
importing this module starts no Django of its own.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import ManagedProcess

SIZE_PATH = "/api/v1/size/"
HTTP_TIMEOUT = 60.0  # seconds: a busy 2-core machine can stall a request; a timeout is reported, not hidden


# Test side ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ClientProcess(ManagedProcess):
    """A load client or the web server: a ManagedProcess that can also be waited for."""

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


def client_command(kind: str, name: str, *, control: Path, out: Path, symbols: list[str], seed: int,
                   url: str = "", token: str = "", max_seconds: float = 150.0) -> list[str]:
    command = [sys.executable, "-m", "tests.faults.load_clients", kind, name, "--control", str(control),
               "--out", str(out), "--symbols", ",".join(symbols), "--seed", str(seed),
               "--max-seconds", str(max_seconds)]
    if kind == "http":
        command += ["--url", url, "--token", token]
    return command


def http_get_status(port: int, path: str, token: str, timeout: float = 5.0) -> int | None:
    """Status of a GET, None when nothing answers (yet)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Authorization": f"Token {token}", "Accept": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


@dataclass
class Outcomes:
    """What one client saw: its complete outcome lines, and the order_ref of its unfinished call."""

    name: str
    records: list[dict] = field(default_factory=list)
    torn_line: bool = False  # killed while writing a line: that call counts as unknown

    @property
    def next_ref(self) -> str:
        """The call after the last complete line: in flight if the client was killed."""
        return f"{self.name}-{len(self.records)}"


def read_outcomes(name: str, path: Path) -> Outcomes:
    outcomes = Outcomes(name)
    if not path.exists():
        return outcomes
    text = path.read_text()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:  # no newline at the end: torn by a kill
        lines.pop()
        outcomes.torn_line = True
    for index, line in enumerate(lines):
        record = json.loads(line)
        assert record["ref"] == f"{name}-{index}", f"{path}: line {index} is {record['ref']}, not {name}-{index}"
        outcomes.records.append(record)
    return outcomes


# Client side ----------------------------------------------------------------------------------------------
def _wait_for_go(control: Path, name: str, deadline: float) -> None:
    (control / f"ready-{name}").write_text(str(os.getpid()))
    while not (control / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: no go signal before the deadline")
        time.sleep(0.02)


def _run(name: str, control: Path, out: Path, max_seconds: float, call) -> None:
    """Call `call(index, order_ref)` until stopped; write one outcome line per finished call."""
    deadline = time.monotonic() + max_seconds
    _wait_for_go(control, name, deadline)
    stop = control / "stop"
    started = time.monotonic()
    index = 0
    with open(out, "w", buffering=1) as stream:  # line-buffered: one write per finished call
        while not stop.exists() and time.monotonic() < deadline:
            order_ref = f"{name}-{index}"
            record = call(index, order_ref)
            record = {"ref": order_ref, "t": round(time.monotonic() - started, 4), **record}
            stream.write(json.dumps(record) + "\n")
            index += 1
    print(f"{name}: {index} calls in {time.monotonic() - started:.1f} s", flush=True)


def _error(exc: BaseException) -> dict:
    kind = type(exc)
    return {"ok": False, "error": f"{kind.__module__}.{kind.__qualname__}", "message": str(exc)[:500]}


def engine_main(args) -> None:
    import django

    django.setup()
    from sizing_app.models import SizingDecision
    from sizing_app.signal_generator import size_for
    from sizing_app.sizing.hot_state import hot_state

    SizingDecision.objects.exists()  # connect and load the hot state before the load starts
    hot_state.latest(args.symbols[0])
    rng = random.Random(args.seed)

    def call(index: int, order_ref: str) -> dict:
        symbol = rng.choice(args.symbols)
        gross = round(rng.uniform(10.0, 1000.0), 2)
        try:
            size = size_for(symbol, gross, order_ref=order_ref, caller=args.name)
        except Exception as exc:  # recorded: the test fails on any, and says which
            return {"symbol": symbol, **_error(exc)}
        return {"symbol": symbol, "ok": True, "final_size": size}

    _run(args.name, args.control, args.out, args.max_seconds, call)


def http_main(args) -> None:
    host, _, port = args.url.removeprefix("http://").partition(":")
    rng = random.Random(args.seed)
    headers = {"Authorization": f"Token {args.token}", "Content-Type": "application/json",
               "Accept": "application/json"}

    def call(index: int, order_ref: str) -> dict:
        symbol = rng.choice(args.symbols)
        body = json.dumps({"symbol": symbol, "gross_target": round(rng.uniform(10.0, 1000.0), 2),
                           "order_ref": order_ref})
        connection = http.client.HTTPConnection(host, int(port), timeout=HTTP_TIMEOUT)
        try:
            connection.request("POST", SIZE_PATH, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except Exception as exc:  # refused, reset, timed out: the outcome is unknown to this client
            return {"symbol": symbol, **_error(exc)}
        finally:
            connection.close()
        if response.status != 201:
            return {"symbol": symbol, "ok": False, "status": response.status,
                    "message": payload.decode(errors="replace")[:500]}
        decision = json.loads(payload)
        return {"symbol": symbol, "ok": True, "status": 201, "id": decision["id"], "seq": decision["seq"],
                "order_ref": decision["order_ref"], "decision_symbol": decision["symbol"],
                "final_size": decision["final_size"]}

    _run(args.name, args.control, args.out, args.max_seconds, call)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["engine", "http"])
    parser.add_argument("name")
    parser.add_argument("--control", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--symbols", type=lambda text: text.split(","), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=150.0)
    parser.add_argument("--url", default="")
    parser.add_argument("--token", default="")
    args = parser.parse_args(argv)
    (engine_main if args.kind == "engine" else http_main)(args)


if __name__ == "__main__":
    main()
