"""Per-process cache of each symbol's latest snapshot and effective policy: the hot-path reads.

Entries live REFRESH_SECONDS, so a snapshot or policy change committed by another process is
seen within a second; changes made in this process invalidate the cache at once.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from . import selectors

REFRESH_SECONDS = 0.5


@dataclass(frozen=True)
class LatestFactor:
    """The fields of a symbol's latest snapshot that sizing reads, detached from the ORM."""

    snapshot_id: int
    symbol: str
    as_of: datetime
    score: float
    size_factor: float
    components: dict[str, Any]
    inverse_vol_multiplier: float
    regime_multiplier: float
    sharpe_multiplier: float
    sharpe_7d: float | None
    atr_regime_ratio: float | None
    status: str


def _load_latest(symbol: str) -> LatestFactor | None:
    snapshot = selectors.snapshot_latest(symbol=symbol)
    if snapshot is None:
        return None
    return LatestFactor(
        snapshot_id=snapshot.pk, symbol=symbol, as_of=snapshot.as_of, score=snapshot.score,
        size_factor=snapshot.size_factor, components=snapshot.components,
        inverse_vol_multiplier=snapshot.inverse_vol_multiplier, regime_multiplier=snapshot.regime_multiplier,
        sharpe_multiplier=snapshot.sharpe_multiplier, sharpe_7d=snapshot.sharpe_7d,
        atr_regime_ratio=snapshot.atr_regime_ratio, status=snapshot.status,
    )


class RefreshingCache:
    """symbol -> value, each entry reloaded when older than `refresh_seconds`."""

    def __init__(self, loader: Callable[[str], Any], refresh_seconds: float = REFRESH_SECONDS):
        self._loader = loader
        self._refresh_seconds = refresh_seconds
        self._entries: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, symbol: str) -> Any:
        entry = self._entries.get(symbol)
        now = time.monotonic()
        if entry is not None and now - entry[0] < self._refresh_seconds:
            return entry[1]
        value = self._loader(symbol)
        with self._lock:
            self._entries[symbol] = (now, value)
        return value

    def invalidate(self, symbol: str | None = None) -> None:
        with self._lock:
            if symbol is None:
                self._entries = {}
            else:
                self._entries.pop(symbol, None)


latest_cache = RefreshingCache(_load_latest)
policy_cache = RefreshingCache(lambda symbol: selectors.policy_effective(symbol=symbol))
