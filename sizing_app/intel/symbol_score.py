"""The plan's symbol-intelligence module: a thin compatibility layer over recompute/live.py.

compute_symbol_score and score_to_size_factor are the live computation's functions under the plan's
names; symbol_size_factor is the plan's wrapper, which looks up compute_symbol_score in this module
at each call (the plan's tests replace it). Sizing reads persisted factors instead (sizing.steps).
"""
from ..recompute.live import factor_for_score as score_to_size_factor
from ..recompute.live import symbol_score_now as compute_symbol_score

__all__ = ["compute_symbol_score", "score_to_size_factor", "symbol_size_factor"]


def symbol_size_factor(symbol: str) -> dict:
    """
    Convenience wrapper that computes:
      - symbol score via compute_symbol_score
      - size factor via score_to_size_factor

    Returns {"symbol", "score", "size_factor", "components"}.
    """
    payload = compute_symbol_score(symbol)
    score = payload.get("score") or 0.0
    factor = score_to_size_factor(score)
    return {
        "symbol": symbol,
        "score": score,
        "size_factor": factor,
        "components": payload.get("components") or {},
    }
