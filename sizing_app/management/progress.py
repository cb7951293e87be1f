"""One line of progress, redrawn in place, for commands that run long; silent off a terminal.

Shared by every long command (recompute, verify_ledger, the importers): logs and pipes get no
control characters, a terminal gets done/total, the rate, and a bar when the total is known.
"""
from __future__ import annotations

import time

BAR_WIDTH = 30


class Progress:
    """progress(done, total) draws at most every `min_interval` seconds, and always the last step.

    `stream` is a command's stdout or stderr (Django's OutputWrapper). total None: not known yet.
    A known total reached ends the line; close() ends one left open (an error, an unknown total).
    """

    def __init__(self, stream, label: str, unit: str = "items", min_interval: float = 0.1):
        self._stream = stream
        self._label = label
        self._unit = unit
        self._min_interval = min_interval
        self._enabled = hasattr(stream, "isatty") and stream.isatty()
        self._started = time.monotonic()
        self._drawn_at = float("-inf")
        self._width = 0  # of the line on screen, 0 when none is open
        self._ended: tuple[int, int | None] | None = None  # the finished step already drawn, if any

    def __call__(self, done: int, total: int | None) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        finished = total is not None and done >= total
        if finished and self._ended == (done, total):
            return  # told twice that it is done (a last flush, then the summary's count): one line
        if not finished and now - self._drawn_at < self._min_interval:
            return
        self._drawn_at = now
        rate = done / max(now - self._started, 1e-9)
        if total:
            filled = min(BAR_WIDTH, BAR_WIDTH * done // total)
            text = (f"{self._label} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done:,}/{total:,} {self._unit} "
                    f"({min(done / total, 1.0):.0%}, {rate:,.0f}/s)")
        else:
            text = f"{self._label}: {done:,} {self._unit} ({rate:,.0f}/s)"
        padding = " " * max(0, self._width - len(text))  # clears a longer previous text
        self._stream.write("\r" + text + padding, ending="")
        self._width = len(text)
        if finished:
            self._ended = (done, total)
            self.close()
        else:
            self._stream.flush()

    def close(self) -> None:
        """End the open line, if any, so what follows starts on a line of its own."""
        if self._width:
            self._stream.write("", ending="\n")
            self._stream.flush()
            self._width = 0
