"""Recording decisions: the policy applied to a sized order, its ledger row, or the outage journal.

sizing/service.py builds the requests (input checks, the stack's steps); this applies the policy in
force at the decision's time, multiplies the stack, and appends the rows (ledger/writer.py).
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from ..conf import sizing_settings
from ..domain.stack import SizingError, bound_total, checked_multiplier
from ..ledger.journal import journal_append, journal_path, journal_pending
from ..ledger.replay import journal_replay_pending
from ..ledger.writer import (
    MODEL_NAMES,
    append_decisions,
    ledger_unreachable,
    loaded_decisions,
    order_conflict,
    order_key,
    remember_heads,
    same_order,
)
from ..models import SizingDecision
from ..policy.resolution import policy_apply
from .errors import SizingInsideTransaction
from .hot_state import hot_state


def refuse_caller_transaction(db) -> None:
    """SizingInsideTransaction when the caller holds an open transaction.atomic() on the ledger's database.

    Inside it the ledger row would commit, or roll back, with the caller's transaction, after the
    size was handed out: a rollback would leave a size with no row. Django's own test-case
    transactions (which wrap a whole test and are never committed) are not the caller's.
    """
    if db.in_atomic_block and any(not getattr(block, "_from_testcase", False) for block in db.atomic_blocks):
        raise SizingInsideTransaction(
            "size_for cannot run inside transaction.atomic(): its size is handed out only once the ledger row "
            "is committed, and the caller's transaction could still roll that row back. Size outside the "
            "atomic block (before it, or in transaction.on_commit)."
        )


class SizingRequest(NamedTuple):
    """One order to size, with the stack's outputs already computed by the caller (a tuple: cheap to build)."""

    symbol: str
    gross_target: float
    inverse_vol_size: float
    regime_multiplier: float
    sharpe_multiplier: float
    intel: dict[str, Any]
    order_ref: str = ""
    caller: str = ""


def _decision_fields(request: SizingRequest, created_at) -> dict[str, Any]:
    """Everything but the chain position: policy applied, multipliers multiplied in plan order."""
    intel = request.intel
    policy = hot_state.policy(request.symbol, created_at)  # overrides in force at the decision's own time
    intel_factor, applied_factor, fallback_reason = policy_apply(intel=intel, policy=policy)
    inverse_vol_size = checked_multiplier("inverse_vol_size", request.inverse_vol_size)
    regime = checked_multiplier("regime_multiplier", request.regime_multiplier)
    sharpe = checked_multiplier("sharpe_multiplier", request.sharpe_multiplier)
    # Same order as the engine's stack: inverse vol, then regime, then Sharpe, then intel.
    base_size = inverse_vol_size
    base_size *= regime
    base_size *= sharpe
    unbounded_size = base_size * applied_factor
    if not math.isfinite(unbounded_size):
        raise SizingError(f"final size overflowed for {request.symbol}: {unbounded_size!r}")
    config = sizing_settings()
    final_size, bounded = bound_total(request.gross_target, unbounded_size, config.total_min, config.total_max)
    return {
        "created_at": created_at, "symbol": request.symbol, "gross_target": float(request.gross_target),
        "inverse_vol_size": inverse_vol_size, "regime_multiplier": regime, "sharpe_multiplier": sharpe,
        "intel_factor": intel_factor, "applied_factor": applied_factor, "final_size": final_size,
        "snapshot_id": intel.get("snapshot_id"), "score": intel.get("score"), "mode": policy.mode,
        "override_id": policy.override.pk if policy.override is not None else None,
        "stale": bool(intel.get("stale", False)), "fallback_reason": fallback_reason,
        "order_ref": request.order_ref, "caller": request.caller, "journal_ref": "",
        "unbounded_size": unbounded_size, "total_bounded": bounded,
    }


def _journal_repeat(original: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    if not same_order(original, row):
        raise order_conflict(original, row, f"journaled as {original['journal_ref']} during the outage")
    return {**original, "replayed": True}


def _record(requests: list[SizingRequest], journal: bool) -> list[dict[str, Any]]:
    """Apply policy to each request and append the rows to their chains: all rows or none.

    Returns the rows as recorded, each with its ledger "id" and "replayed" (True for an order
    already sized: its original row). If the database cannot record now (ledger_unreachable) and
    the outage journal is enabled (and `journal` allows it), the rows go to the journal instead,
    durably, before this returns: then "id" and "seq" are None and "journal_ref" is set.
    Otherwise the database error propagates.
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each read through the `connection` proxy costs a lookup
    refuse_caller_transaction(db)
    created_at = timezone.now()
    rows = [_decision_fields(request, created_at) for request in requests]
    try:
        if journal_pending() and not db.in_atomic_block:
            # Older decisions first, so every chain stays in time order. Never inside a test's
            # transaction: the journal is emptied once the replay returns, and a rollback of that
            # transaction would take the replayed rows with it.
            journal_replay_pending()
        recorded = append_decisions(db, rows)
    except Exception as exc:
        if not ledger_unreachable(exc) or not journal or journal_path() is None or db.in_atomic_block:
            raise
        db.close_if_unusable_or_obsolete()  # the next call reconnects
        entries = journal_append(rows, key=order_key, repeat=_journal_repeat)
        return [{**entry, "id": None, "seq": None, "prev_hash": "", "row_hash": ""} for entry in entries]
    remember_heads(db, recorded)
    return recorded


def decision_batch_record(*, requests: list[SizingRequest], journal: bool = True) -> list[SizingDecision]:
    """The recorded decisions (see _record); journaled ones come back unsaved, without id or seq.

    Each has `replayed`: True when its order had been sized before (the original decision).
    """
    if not requests:
        return []
    rows = _record(requests, journal)
    if rows[0]["id"] is None:
        decisions = []
        for row in rows:
            decision = SizingDecision(**{name: row[name] for name in MODEL_NAMES})
            decision.replayed = row["replayed"]
            decisions.append(decision)
        return decisions
    return loaded_decisions(rows)


def decision_record(*, request: SizingRequest, journal: bool = True) -> SizingDecision:
    return decision_batch_record(requests=[request], journal=journal)[0]


def decision_final_size(*, request: SizingRequest, journal: bool = True) -> float:
    """One order's final size, recorded like decision_record's: the engine's hot path builds no model."""
    return _record([request], journal)[0]["final_size"]
