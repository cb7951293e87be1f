"""A one-line progress display for imports in a terminal (rows done / total, rows/s).

The commands only create one when stdout is a TTY, so logs and pipes get no control characters.
"""
from __future__ import annotations

import time
from typing import TextIO


class TerminalProgress:
    """Callable progress(done, total) that redraws a single line at most every `min_interval` seconds."""

    def __init__(self, stream: TextIO, label: str, min_interval: float = 0.1):
        self.stream = stream
        self.label = label
        self.min_interval = min_interval
        self.started = time.perf_counter()
        self._drawn_at = 0.0
        self._width = 0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.perf_counter()
        if now - self._drawn_at < self.min_interval and (total is None or done < total):
            return
        self._drawn_at = now
        rate = done / (now - self.started) if now > self.started else 0.0
        if total:
            text = f"{self.label}: {done:,}/{total:,} rows ({min(done / total, 1.0):.0%}), {rate:,.0f} rows/s"
        else:
            text = f"{self.label}: {done:,} rows, {rate:,.0f} rows/s"
        padding = " " * max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + padding)
        self.stream.flush()

    def close(self) -> None:
        """Clear the line so the summary starts on a clean one."""
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
