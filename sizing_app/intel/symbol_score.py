"""Symbol intelligence, computed live: a symbol's score, its size factor, and both together.

The recompute persists the same numbers; the engine's hot path reads those (intel.persisted).
"""
from django.utils import timezone

from .. import scoring, selectors
from ..conf import sizing_settings
from ..models import Symbol
from ..services.recompute import bucket_for
from ..validation import validate_symbol


def compute_symbol_score(symbol: str) -> dict:
    """Score a symbol from its data up to the current bucket: {"symbol", "score", "components"}."""
    validate_symbol(symbol)
    record = Symbol.objects.filter(name=symbol).first()
    if record is None:
        return {"symbol": symbol, "score": 0.0, "components": {}}
    as_of = bucket_for(timezone.now())
    inputs = selectors.symbol_inputs_bulk(symbols=[record], as_of=as_of)[record.pk]
    score, components = scoring.score_components(scoring.compute_metrics(inputs))
    return {"symbol": symbol, "score": score, "components": components}


def score_to_size_factor(score: float) -> float:
    """Continuous, non-decreasing, 1.0 at 0, within the configured clamp (at most [0.25, 2.0])."""
    config = sizing_settings()
    return scoring.score_to_size_factor(score, config.factor_min, config.factor_max)


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
