"""A tiny TCP forwarding proxy in its own process, so a fault test can cut a service off with SIGKILL.

`python -m tests.faults.tcp_proxy --listen-port P --target 127.0.0.1:5432` forwards every
connection accepted on 127.0.0.1:P to the target (stdlib only, one thread per direction) and
prints "READY <port>" once it listens. SIGKILL to that process drops every forwarded connection
at once and refuses new ones; starting it again on the same port brings the service back.
`ProxyProcess` does this from a test: start(), kill(), restart(), port (and pause()/resume():
SIGSTOP/SIGCONT, a path that hangs instead of failing).
"""
from __future__ import annotations

import argparse
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

LISTEN_HOST = "127.0.0.1"
BUFFER_BYTES = 64 * 1024
CONNECT_TIMEOUT_SECONDS = 5.0
READY_TIMEOUT_SECONDS = 15.0
ROOT = Path(__file__).resolve().parents[2]


# The proxy process ---------------------------------------------------------------------------
class _Pair:
    """Two sockets forwarded both ways; closed once both directions have seen EOF."""

    def __init__(self, client: socket.socket, upstream: socket.socket):
        self.sockets = (client, upstream)
        self._open_directions = 2
        self._lock = threading.Lock()

    def pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy one direction until EOF or an error, then pass the EOF on (half-close) to the sink."""
        try:
            while True:
                data = source.recv(BUFFER_BYTES)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self._lock:
            self._open_directions -= 1
            last = self._open_directions == 0
        if last:
            for sock in self.sockets:
                sock.close()


def _forward(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=CONNECT_TIMEOUT_SECONDS)
    except OSError:
        client.close()  # the target is down: the client sees its connection closed, like the real thing
        return
    upstream.settimeout(None)
    for sock in (client, upstream):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pair = _Pair(client, upstream)
    threading.Thread(target=pair.pump, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pair.pump, args=(upstream, client), daemon=True).start()


def serve(listen_port: int, target: tuple[str, int]) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A restart must get the same port back while the killed process's connections sit in TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LISTEN_HOST, listen_port))
    listener.listen(128)
    print(f"READY {listener.getsockname()[1]}", flush=True)
    while True:
        client, _ = listener.accept()
        _forward(client, target)


def _parse_target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--target must be HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, required=True, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--target", type=_parse_target, required=True, help="HOST:PORT to forward to")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    serve(args.listen_port, args.target)


# Control from a test -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LISTEN_HOST, 0))
        return probe.getsockname()[1]


class ProxyProcess:
    """The proxy as a child process: kill() is SIGKILL (every connection drops, new ones are refused),
    restart() listens again on the same port. Use as a context manager, or call kill() in teardown."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1", listen_port: int | None = None):
        self.target = (target_host, target_port)
        self._port = listen_port or free_port()
        self.popen: subprocess.Popen | None = None

    @property
    def port(self) -> int:
        return self._port

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> ProxyProcess:
        if self.alive():
            raise RuntimeError(f"proxy on port {self.port} is already running")
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        while True:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.tcp_proxy", "--listen-port", str(self.port),
                 "--target", f"{self.target[0]}:{self.target[1]}"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                env={**os.environ, "PYTHONPATH": pythonpath},
            )
            line = self._ready_line(deadline)
            if line == f"READY {self.port}":
                return self
            stderr = self._reap()
            if "Address already in use" not in stderr or time.monotonic() > deadline:
                raise RuntimeError(f"proxy to {self.target} did not start on port {self.port}: {line!r} {stderr}")
            time.sleep(0.2)  # the port is still held (a closing socket): try again, bounded

    def _ready_line(self, deadline: float) -> str:
        with selectors.DefaultSelector() as selector:
            selector.register(self.popen.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                return ""
        return self.popen.stdout.readline().decode(errors="replace").strip()

    def _reap(self) -> str:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            _, stderr = self.popen.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            stderr = b""
        return stderr.decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the kernel closes the listener and every forwarded connection at once."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self._reap()
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def pause(self) -> None:
        """SIGSTOP: connections stay open and the kernel still completes new handshakes, but nothing
        is forwarded any more: a server, or a network path, that hangs instead of failing."""
        os.kill(self.popen.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.popen.pid, signal.SIGCONT)

    def restart(self) -> ProxyProcess:
        self.kill()
        return self.start()

    def __enter__(self) -> ProxyProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.kill()


if __name__ == "__main__":
    main()
