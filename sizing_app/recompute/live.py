"""A symbol's score computed now from its data (not persisted): the same computation the recompute runs.

The engine's sizing never calls this (it reads persisted snapshots); it answers "what would the
score be right now" for operators and the plan's symbol_score API.
"""
from __future__ import annotations

from django.utils import timezone

from ..conf import sizing_settings
from ..domain import scoring
from ..models import Symbol
from ..selectors.inputs import symbol_inputs_bulk
from ..sizing.validation import validate_symbol
from .service import bucket_for


def symbol_score_now(symbol: str) -> dict:
    """Score a symbol from its data up to the current bucket: {"symbol", "score", "components"}."""
    validate_symbol(symbol)
    record = Symbol.objects.filter(name=symbol).first()
    if record is None:
        return {"symbol": symbol, "score": 0.0, "components": {}}
    as_of = bucket_for(timezone.now())
    inputs = symbol_inputs_bulk(symbols=[record], as_of=as_of)[record.pk]
    score, components = scoring.score_components(scoring.compute_metrics(inputs))
    return {"symbol": symbol, "score": score, "components": components}


def factor_for_score(score: float) -> float:
    """Continuous, non-decreasing, 1.0 at 0, within the configured clamp (at most [0.25, 2.0])."""
    config = sizing_settings()
    return scoring.score_to_size_factor(score, config.factor_min, config.factor_max)
