"""Sharpe-aware size multiplier from the symbol's 7-day Sharpe in its latest snapshot.

Bounded to (0.5, 1.5) and neutral (1.0) when the Sharpe is undefined.
"""
from .latest import hot_state


def size_multiplier(symbol: str) -> float:
    latest = hot_state.latest(symbol)
    return latest.sharpe_multiplier if latest is not None else 1.0
