"""The typed errors sizing raises, one class per thing the caller must handle differently.

ValueError subclasses are the caller's input being refused (a 400 or 409 on the API, a CommandError
in a command); RuntimeError subclasses are the service unable to size now (503) or misused.
"""
from __future__ import annotations

from ..domain.stack import SizingError

__all__ = ["OrderRefConflict", "SizingError", "SizingInsideTransaction", "SizingUnavailable", "UnknownSymbol"]


class SizingUnavailable(RuntimeError):
    """The ledger could not record the decision, so no size is given: sizing fails closed.

    The engine catches this and decides what to do (retry, skip the order, use its own fallback).
    Retrying is safe: nothing was recorded (and with an order_ref, a retry can never size twice).
    """


class SizingInsideTransaction(RuntimeError):
    """size_for was called inside the caller's transaction.atomic() block.

    A size is handed out only once its ledger row is committed; inside the caller's transaction
    the row would commit (or roll back) with that transaction, after the size was already used.
    """


class UnknownSymbol(ValueError):
    """The symbol is not registered, or is inactive: refused unless neutral_if_unknown=True."""

    def __init__(self, message: str, *, symbol: str):
        super().__init__(message)
        self.symbol = symbol


class OrderRefConflict(ValueError):
    """The order_ref was already sized by this caller with other inputs: nothing is written.

    A repeat with the same symbol and gross target is not an error: it returns the original decision.
    """

    def __init__(self, message: str, *, order_ref: str, decision_id: int | None = None, journal_ref: str = ""):
        super().__init__(message)
        self.order_ref = order_ref
        self.decision_id = decision_id
        self.journal_ref = journal_ref
