"""A one-line terminal progress display for long commands; silent when not on a terminal.

Shared by every command that runs long (recompute, imports, seeding).
"""
import time


class Progress:
    def __init__(self, stream, label: str, unit: str = "items"):
        self._stream = stream
        self._label = label
        self._unit = unit
        self._started = time.monotonic()
        self._enabled = hasattr(stream, "isatty") and stream.isatty()
        self._last_draw = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        elapsed = max(now - self._started, 1e-9)
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        self._stream.write(
            f"\r{self._label} [{bar}] {done}/{total} {self._unit} ({done / elapsed:,.0f}/s)", ending=""
        )
        if done >= total:
            self._stream.write("", ending="\n")
        self._stream.flush()
