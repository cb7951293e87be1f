"""The Python API the engine sizes through: size_for, size_decide and size_decide_batch.

Each checks its input (one rule for every entry point: sizing/validation.py), refuses unknown symbols
unless asked to size them neutrally, reads the stack's steps and the persisted factor, and records the
decision (sizing/decisions.py) before returning its size. An outage is SizingUnavailable.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any, Protocol

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

from ..ledger.journal import JournalCorrupt
from ..ledger.writer import ledger_unreachable
from ..models import SizingDecision, Symbol
from . import steps as persisted
from .decisions import (
    SizingRequest,
    decision_batch_record,
    decision_final_size,
    decision_record,
    refuse_caller_transaction,
)
from .errors import SizingUnavailable, UnknownSymbol
from .hot_state import hot_state
from .validation import validate_gross_target, validate_symbol, validate_text


class StackSteps(Protocol):
    """Where size_for finds the stack's steps, under the plan's names (signal_generator passes itself)."""

    inverse_vol_size: Callable[[str, float], float]
    volatility_regime_scale: Callable[[str], float]
    size_multiplier: Callable[[str], float]
    symbol_size_factor: Callable[[str], dict[str, Any]]


PERSISTED_STEPS: StackSteps = SimpleNamespace(
    inverse_vol_size=persisted.inverse_vol_size, volatility_regime_scale=persisted.regime_multiplier,
    size_multiplier=persisted.sharpe_multiplier, symbol_size_factor=persisted.persisted_factor,
)


def _unavailable(exc: Exception) -> SizingUnavailable:
    """No ledger row, no size: a database outage surfaces as one typed error the engine catches."""
    if ledger_unreachable(exc):
        db = connections[DEFAULT_DB_ALIAS]
        if not db.in_atomic_block and isinstance(exc, (OperationalError, InterfaceError)):
            db.close_if_unusable_or_obsolete()  # so the next call reconnects
        return SizingUnavailable(
            f"sizing is unavailable: the ledger database cannot be reached or is read-only ({exc})")
    # The database was down and the outage journal could not take the decision either.
    return SizingUnavailable(f"sizing is unavailable: the outage journal failed ({exc})")


def _unrecordable(exc: BaseException) -> bool:
    return isinstance(exc, (OSError, JournalCorrupt)) or ledger_unreachable(exc)


def _neutral_intel(fallback_reason: str) -> dict:
    return {"size_factor": 1.0, "score": None, "snapshot_id": None, "stale": False, "fallback_reason": fallback_reason}


def _request(steps: StackSteps, symbol, gross_target, order_ref, caller, neutral_if_unknown: bool) -> SizingRequest:
    symbol = validate_symbol(symbol)
    gross_target = validate_gross_target(gross_target)
    order_ref, caller = validate_text("order_ref", order_ref), validate_text("caller", caller)
    active = hot_state.symbol_active(symbol)
    if active is not True:
        if not neutral_if_unknown:
            if active is None:
                raise UnknownSymbol(
                    f"Unknown symbol {symbol!r}: it is not registered, so it has no data to size from. Import its "
                    "candles or fills first (manage.py import_candles / import_fills, POST /api/v1/candles/), or "
                    "pass neutral_if_unknown=True to size it neutrally (x1.0) and register it.", symbol=symbol,
                )
            raise UnknownSymbol(
                f"Symbol {symbol!r} is inactive (not recomputed): activate it in admin, or pass "
                "neutral_if_unknown=True to size it neutrally (x1.0).", symbol=symbol,
            )
        if active is None:
            Symbol.objects.get_or_create(name=symbol)  # registered: recomputed from now on
            hot_state.invalidate()
        # Opted in: neutral throughout, the stack steps too (they would read an inactive symbol's old data).
        return SizingRequest(
            symbol=symbol, gross_target=gross_target, inverse_vol_size=gross_target, regime_multiplier=1.0,
            sharpe_multiplier=1.0, intel=_neutral_intel("unknown_symbol" if active is None else "inactive_symbol"),
            order_ref=order_ref, caller=caller,
        )
    return SizingRequest(
        symbol=symbol,
        gross_target=gross_target,
        inverse_vol_size=steps.inverse_vol_size(symbol, gross_target),
        regime_multiplier=steps.volatility_regime_scale(symbol),
        sharpe_multiplier=steps.size_multiplier(symbol),
        intel=steps.symbol_size_factor(symbol),
        order_ref=order_ref,
        caller=caller,
    )


def size_decide(symbol: str, gross_target: float, *, order_ref: str = "", caller: str = "",
                journal: bool = True, neutral_if_unknown: bool = False, steps: StackSteps = PERSISTED_STEPS,
                ) -> SizingDecision:
    """Size one order and return its committed ledger row (with the whole breakdown).

    With an order_ref, a repeat of the same (caller, order_ref) with the same symbol and gross
    target returns the original row (its `replayed` is True) and writes nothing; with other inputs
    it raises OrderRefConflict and writes nothing. During a database outage with the outage journal
    enabled, the row is journaled instead and comes back unsaved (id and seq None, journal_ref set);
    journal=False fails closed regardless.
    """
    refuse_caller_transaction(connections[DEFAULT_DB_ALIAS])
    try:
        request = _request(steps, symbol, gross_target, order_ref, caller, neutral_if_unknown)
        return decision_record(request=request, journal=journal)
    except Exception as exc:
        if _unrecordable(exc):
            raise _unavailable(exc) from exc
        raise


def size_for(symbol: str, gross_target: float, *, order_ref: str = "", caller: str = "",
             neutral_if_unknown: bool = False, steps: StackSteps = PERSISTED_STEPS) -> float:
    """
    Final position size for a symbol:
      gross_target -> inverse-volatility sizing -> ATR regime scale -> Sharpe multiplier
      -> symbol intelligence factor (latest persisted snapshot, clamped to [0.25, 2.0]).

    Raises ValueError for bad input before anything is written: a malformed symbol, a gross_target
    that is not 0 or a positive normal number up to SIZING_MAX_GROSS, an unknown or inactive symbol
    (UnknownSymbol, unless neutral_if_unknown=True sizes it at x1.0), an order_ref already sized with
    other inputs (OrderRefConflict). Raises SizingUnavailable when the decision cannot be recorded
    now (the database is down or read-only) and SizingInsideTransaction inside the caller's
    transaction.atomic(): no size is ever handed out unrecorded. A repeated (caller, order_ref)
    with the same inputs returns the original size.
    """
    refuse_caller_transaction(connections[DEFAULT_DB_ALIAS])
    try:
        return decision_final_size(request=_request(steps, symbol, gross_target, order_ref, caller, neutral_if_unknown))
    except Exception as exc:
        if _unrecordable(exc):
            raise _unavailable(exc) from exc
        raise


def size_decide_batch(orders: Iterable[tuple[str, float, str]], *, caller: str = "", journal: bool = True,
                      neutral_if_unknown: bool = False, steps: StackSteps = PERSISTED_STEPS) -> list[SizingDecision]:
    """Size many (symbol, gross_target, order_ref) orders in one transaction: all rows or none.

    Orders already sized (same caller and order_ref, same inputs) come back as their original rows.
    """
    refuse_caller_transaction(connections[DEFAULT_DB_ALIAS])
    try:
        requests = [_request(steps, symbol, gross, order_ref, caller, neutral_if_unknown)
                    for symbol, gross, order_ref in orders]
        refs = [request.order_ref for request in requests if request.order_ref]
        if len(refs) != len(set(refs)):
            repeated = sorted({ref for ref in refs if refs.count(ref) > 1})
            raise ValueError(f"order_ref {', '.join(map(repr, repeated[:5]))} appears more than once in this batch: "
                             "each order of a batch needs its own order_ref.")
        return decision_batch_record(requests=requests, journal=journal)
    except Exception as exc:
        if _unrecordable(exc):
            raise _unavailable(exc) from exc
        raise
