"""The cross-row rules of a candle series: strictly rising open times, and the gaps between bars."""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np

from .candle_parsers import CandleBlock
from .rows import format_us


@dataclass
class Gap:
    after_us: int
    next_us: int
    missing_bars: int

    def __str__(self) -> str:
        bars = "bar" if self.missing_bars == 1 else "bars"
        return (f"{self.missing_bars} missing {bars} after {format_us(self.after_us)} "
                f"(next bar {format_us(self.next_us)})")


@dataclass
class BarSeries:
    """Cross-row rules for one file's bars: duplicate open times (errors), gaps and spacing (warnings).

    Open times are kept in a compact array; a lookup dict is built only if the file turns out not
    to be in ascending order, so a sorted million-row file costs 16 MB, not a dict of a million ints.
    """

    interval_us: int | None
    _times: array = field(default_factory=lambda: array("q"))
    _lines: array = field(default_factory=lambda: array("q"))
    _first_line: dict[int, int] | None = None
    _last: int = -(2**63)
    zero_volume: int = 0

    def add_block(self, block: CandleBlock) -> list[tuple[int, int]]:
        """Record a block's bars; return (index in block, line of the earlier bar) for each duplicate."""
        times = block.open_time_us
        if not len(times):
            return []
        if self._first_line is None and int(times[0]) > self._last and bool((times[1:] > times[:-1]).all()):
            self._times.frombytes(times.astype(np.int64).tobytes())
            self._lines.frombytes(block.lines.astype(np.int64).tobytes())
            self._last = int(times[-1])
            self.zero_volume += int(np.count_nonzero(block.volume == 0))
            return []
        duplicates = []
        for index, (moment, line, volume) in enumerate(
            zip(times.tolist(), block.lines.tolist(), block.volume.tolist())
        ):
            earlier = self._add(moment, line, volume)
            if earlier is not None:
                duplicates.append((index, earlier))
        return duplicates

    def _add(self, moment: int, line: int, volume: float) -> int | None:
        if moment > self._last:
            self._last = moment
        else:
            if self._first_line is None:
                self._first_line = dict(zip(self._times, self._lines))
            earlier = self._first_line.get(moment)
            if earlier is not None:
                return earlier
        if self._first_line is not None:
            self._first_line[moment] = line
        self._times.append(moment)
        self._lines.append(line)
        if volume == 0:
            self.zero_volume += 1
        return None

    def __len__(self) -> int:
        return len(self._times)

    @property
    def in_order(self) -> bool:
        return self._first_line is None

    @property
    def first_us(self) -> int | None:
        return int(np.frombuffer(self._times, dtype=np.int64).min()) if self._times else None

    @property
    def last_us(self) -> int | None:
        return int(np.frombuffer(self._times, dtype=np.int64).max()) if self._times else None

    def spacing(self) -> tuple[list[Gap], int, tuple[int, int] | None]:
        """(gaps, number of bars closer to their predecessor than one interval, the first such pair)."""
        if self.interval_us is None or len(self._times) < 2:
            return [], 0, None
        times = np.frombuffer(self._times, dtype=np.int64)
        if not self.in_order:
            times = np.sort(times)
        distances = np.diff(times)
        step = self.interval_us
        gap_at = np.flatnonzero(distances > step)
        gaps = [
            Gap(int(times[index]), int(times[index + 1]), int(-(-int(distances[index]) // step) - 1))
            for index in gap_at
        ]
        close_at = np.flatnonzero(distances < step)
        example = (int(times[close_at[0]]), int(times[close_at[0] + 1])) if close_at.size else None
        return gaps, int(close_at.size), example
