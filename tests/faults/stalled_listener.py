"""A TCP listener on 127.0.0.1 that accepts connections and never answers: a server that hangs.

Unlike a closed port (refused at once) or a killed proxy (connections reset), a client's connect
succeeds and every read then waits for bytes that never come: only the client's own timeouts end
the wait. It runs on a thread of the test process. `accepted` counts the connections it took (each
one a client that tried, and waited); close() drops them all and frees the port, so a real service
(a ProxyProcess on the same port) can take its place under the clients' feet.
"""
from __future__ import annotations

import selectors
import socket
import threading

LISTEN_HOST = "127.0.0.1"
POLL_SECONDS = 0.05


class StalledListener:
    def __init__(self, port: int = 0):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # The port is handed on to a proxy after close(): it must bind while ours sit in TIME_WAIT.
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LISTEN_HOST, port))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_forever, name=f"stalled-{self.port}", daemon=True)
        self._thread.start()

    def _accept_forever(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                if selector.select(timeout=POLL_SECONDS):
                    client, _ = self._listener.accept()
                    with self._lock:
                        self._held.append(client)  # held open, never read from, never written to

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._held)

    def url(self, scheme: str = "redis", path: str = "/0") -> str:
        return f"{scheme}://{LISTEN_HOST}:{self.port}{path}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for client in self._held:
                client.close()
        self._listener.close()

    def __enter__(self) -> StalledListener:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
