"""Execution health: per-symbol execution quality, market regime and the sizing in force.

Reads persisted snapshots only (through the stack's steps, as size_for does), never recomputes.
"""
from __future__ import annotations

from django.utils import timezone

from ..models import RecomputeRun, SizingSnapshot, Symbol
from ..policy.resolution import policy_apply
from ..sizing.hot_state import hot_state
from ..sizing.service import PERSISTED_STEPS, StackSteps
from ..sizing.validation import validate_symbol

# Health's position block: its keys and the snapshot fields they show.
POSITION_FIELDS = {
    "qty": "position_qty", "avg_cost": "avg_cost", "realized_pnl": "realized_pnl", "unrealized_pnl": "unrealized_pnl",
    "fees": "fees_quote", "equity": "equity", "capital": "capital", "source_realized_pnl": "source_realized_pnl",
}


def _symbol_health(symbol: str, snapshot: SizingSnapshot | None, steps: StackSteps) -> dict:
    policy = hot_state.policy(symbol)
    intel = steps.symbol_size_factor(symbol)
    size_factor = intel["size_factor"]
    size_multiplier_value = steps.size_multiplier(symbol)
    intel_factor, applied_factor, fallback_reason = policy_apply(intel=intel, policy=policy)
    now = timezone.now()
    return {
        "symbol": symbol,
        "as_of": snapshot.as_of if snapshot else None,
        "age_seconds": (now - snapshot.as_of).total_seconds() if snapshot else None,
        "stale": bool(intel.get("stale", False)),
        "status": snapshot.status if snapshot else "no_snapshot",
        "execution": {
            "slippage_bps": snapshot.slippage_bps if snapshot else None,
            "fill_rate": snapshot.fill_rate if snapshot else None,
            "maker_ratio": snapshot.maker_ratio if snapshot else None,
            "fill_count": snapshot.fill_count if snapshot else 0,
            "order_count": snapshot.order_count if snapshot else 0,
        },
        "market": {
            "atr_pct": snapshot.atr_pct if snapshot else None,
            "atr_regime_ratio": snapshot.atr_regime_ratio if snapshot else None,
            "realized_volatility": snapshot.realized_volatility if snapshot else None,
            "market_sharpe_7d": snapshot.market_sharpe_7d if snapshot else None,
        },
        "position": {
            "quote_asset": snapshot.symbol.quote_asset if snapshot else "",
            **{key: getattr(snapshot, field) if snapshot else None for key, field in POSITION_FIELDS.items()},
            "unconverted_fee_count": snapshot.unconverted_fee_count if snapshot else 0,
        },
        "inputs": {
            "last_candle_at": snapshot.last_candle_at if snapshot else None,
            "last_fill_at": snapshot.last_fill_at if snapshot else None,
            "computed_live": snapshot.computed_live if snapshot else None,
        },
        "sizing": {
            "sharpe_7d": snapshot.sharpe_7d if snapshot else None,
            "max_drawdown": snapshot.max_drawdown if snapshot else None,
            "size_multiplier": size_multiplier_value,
            "regime_multiplier": steps.volatility_regime_scale(symbol),
            "inverse_vol_multiplier": steps.inverse_vol_size(symbol, 1.0),
            "score": intel.get("score"),
            "raw_intel_size_factor": size_factor,
            "intel_size_factor": intel_factor,
            "applied_intel_size_factor": applied_factor,
            # As in the plan: the Sharpe multiplier times the intel factor actually applied.
            "final_size_factor": size_multiplier_value * applied_factor,
            "mode": policy.mode,
            "override_id": policy.override.pk if policy.override is not None else None,
            "fallback_reason": fallback_reason,
        },
    }


def compute_execution_health(symbol: str | None = None, *, steps: StackSteps = PERSISTED_STEPS) -> dict:
    """One symbol's health, or every active symbol's plus the latest recompute run."""
    if symbol is not None:
        latest = hot_state.latest(validate_symbol(symbol))
        snapshot = (SizingSnapshot.objects.select_related("symbol").filter(pk=latest.snapshot_id).first()
                    if latest else None)
        return _symbol_health(symbol, snapshot, steps)
    run = RecomputeRun.objects.order_by("-started_at").first()
    names = list(Symbol.objects.filter(is_active=True).order_by("name").values_list("name", flat=True))
    latest = hot_state.latest_all()
    # One query for every symbol's snapshot: the dashboard asks for hundreds at once.
    snapshots = SizingSnapshot.objects.select_related("symbol").in_bulk(
        [latest[name].snapshot_id for name in names if name in latest]
    )
    return {
        "generated_at": timezone.now(),
        "latest_run": None if run is None else {
            "id": run.pk, "as_of": run.as_of, "status": run.status, "started_at": run.started_at,
            "duration_seconds": run.duration_seconds, "symbols_ok": run.symbols_ok,
            "symbols_failed": run.symbols_failed, "symbols_existing": run.symbols_existing,
        },
        "symbols": {
            name: _symbol_health(name, snapshots.get(latest[name].snapshot_id) if name in latest else None, steps)
            for name in names
        },
    }
