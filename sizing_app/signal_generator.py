"""The engine's sizing entry point: the existing stack times the persisted intel factor.

The stack steps and `symbol_size_factor` are module globals looked up at call time, so tests
and operators can swap one step without touching the rest. Every size is on the ledger.
"""
from collections.abc import Iterable

from django.db import InterfaceError, OperationalError, connection

from .intel.persisted import symbol_size_factor
from .journal import JournalCorrupt
from .models import SizingDecision
from .position_sizing import inverse_vol_size, volatility_regime_scale
from .risk_autotune import size_multiplier
from .services.decisions import (
    SizingRequest, SizingUnavailable, decision_record, decision_size, decisions_record,
)
from .validation import validate_gross_target, validate_symbol, validate_text

__all__ = [
    "SizingUnavailable", "inverse_vol_size", "size_decide", "size_decide_batch", "size_for", "size_multiplier",
    "symbol_size_factor", "volatility_regime_scale",
]


# Errors that mean "no ledger row can be written now". Caught with a plain try in each entry
# point (a generator context manager costs more than the rest of a size's Python).
_UNRECORDABLE = (OperationalError, InterfaceError, OSError, JournalCorrupt)


def _unavailable(exc: Exception) -> SizingUnavailable:
    """No ledger row, no size: a database outage surfaces as one typed error the engine catches."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()  # so the next call reconnects
        return SizingUnavailable(f"sizing is unavailable: the ledger database cannot be reached ({exc})")
    # The database was down and the outage journal could not take the decision either.
    return SizingUnavailable(f"sizing is unavailable: the outage journal failed ({exc})")


def _request(symbol, gross_target, order_ref, caller) -> SizingRequest:
    symbol = validate_symbol(symbol)
    gross_target = validate_gross_target(gross_target)
    return SizingRequest(
        symbol=symbol,
        gross_target=gross_target,
        inverse_vol_size=inverse_vol_size(symbol, gross_target),
        regime_multiplier=volatility_regime_scale(symbol),
        sharpe_multiplier=size_multiplier(symbol),
        intel=symbol_size_factor(symbol),
        order_ref=validate_text("order_ref", order_ref),
        caller=validate_text("caller", caller),
    )


def size_decide(symbol: str, gross_target: float, *, order_ref: str = "", caller: str = "",
                journal: bool = True) -> SizingDecision:
    """Size one order and return its committed ledger row (with the whole breakdown).

    During a database outage with the outage journal enabled, the row is journaled instead and
    comes back unsaved (id and seq None, journal_ref set); journal=False fails closed regardless.
    """
    try:
        return decision_record(request=_request(symbol, gross_target, order_ref, caller), journal=journal)
    except _UNRECORDABLE as exc:
        raise _unavailable(exc) from exc


def size_for(symbol: str, gross_target: float, *, order_ref: str = "", caller: str = "") -> float:
    """
    Final position size for a symbol:
      gross_target -> inverse-volatility sizing -> ATR regime scale -> Sharpe multiplier
      -> symbol intelligence factor (latest persisted snapshot, clamped to [0.25, 2.0]).

    Raises ValueError for a malformed symbol or a negative / non-finite / non-number
    gross_target, before anything is written, and SizingUnavailable when the decision
    cannot be recorded (the database is down): no size is ever handed out unrecorded.
    """
    try:
        return decision_size(request=_request(symbol, gross_target, order_ref, caller))
    except _UNRECORDABLE as exc:
        raise _unavailable(exc) from exc


def size_decide_batch(orders: Iterable[tuple[str, float, str]], *, caller: str = "",
                      journal: bool = True) -> list[SizingDecision]:
    """Size many (symbol, gross_target, order_ref) orders in one transaction: all rows or none."""
    try:
        requests = [_request(symbol, gross, order_ref, caller) for symbol, gross, order_ref in orders]
        return decisions_record(requests=requests, journal=journal)
    except _UNRECORDABLE as exc:
        raise _unavailable(exc) from exc
