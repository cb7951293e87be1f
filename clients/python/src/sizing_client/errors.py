"""The errors the client raises: one class per thing an engine must handle differently.

They mirror the in-process API (sizing_app.errors) so one `except` clause serves both: a refused
input is a ValueError (InvalidRequest, UnknownSymbol, OrderRefConflict), the service unable to
size now is a RuntimeError (SizingUnavailable). Every one is a SizingClientError carrying the HTTP
status and the service's error body ({"code", "message", "details"}) when there was one.
"""
from __future__ import annotations

from typing import Any


class SizingClientError(Exception):
    """Base class: status is None when no HTTP answer came (connection failures, a refused input)."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "", details: Any = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details


class InvalidRequest(SizingClientError, ValueError):
    """400 (or 413): the service refused the input; `details` names the fields. Nothing was written.

    Retrying the same request gives the same answer: fix the input instead.
    """


class UnknownSymbol(InvalidRequest):
    """The symbol is not registered or is inactive, so the service refuses to size it.

    Pass neutral_if_unknown=True to size it at x1.0 (the service registers an unknown one), or
    onboard it first (import its candles / fills). Nothing was written.
    """

    def __init__(self, message: str, *, symbol: str, status: int | None = None, code: str = "",
                 details: Any = None):
        super().__init__(message, status=status, code=code, details=details)
        self.symbol = symbol


class OrderRefConflict(SizingClientError, ValueError):
    """409: this caller already sized this order_ref with another symbol or gross target. Nothing was written.

    decision_id is the original decision's id when the service says which one (else None). Use a
    new order_ref for a new order, or the original inputs to get the original decision back.
    """

    def __init__(self, message: str, *, order_ref: str = "", decision_id: int | None = None,
                 status: int | None = None, code: str = "", details: Any = None):
        super().__init__(message, status=status, code=code, details=details)
        self.order_ref = order_ref
        self.decision_id = decision_id


class NotFound(SizingClientError):
    """404: `code` says why (unknown_symbol, inactive_symbol, no_snapshot on the latest-factor route)."""


class AuthenticationFailed(SizingClientError):
    """401 (no or bad token) or 403 (the token's role may not do this). Retrying will not help."""


class Throttled(SizingClientError):
    """429: too many requests for this caller; nothing was done. retry_after: seconds to wait, if said."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None,
                 code: str = "", details: Any = None):
        super().__init__(message, status=status, code=code, details=details)
        self.retry_after = retry_after


class SizingUnavailable(SizingClientError, RuntimeError):
    """No size now: the service answered 503, or could not be reached, until the retries were used up.

    outcome_unknown is False when the service certainly recorded nothing (every attempt was a 503
    or failed before the request was sent): retrying later is always safe. It is True when a
    request may have reached the service and its answer was lost (a read timeout, a dropped
    connection): the decision may be on the ledger. With an order_ref, retrying later is still safe
    (the service returns the original decision); without one the client did not retry, because a
    retry could size the order twice, and the message says so.
    """

    def __init__(self, message: str, *, attempts: int, outcome_unknown: bool, status: int | None = None,
                 code: str = "", details: Any = None):
        super().__init__(message, status=status, code=code, details=details)
        self.attempts = attempts
        self.outcome_unknown = outcome_unknown


class ServerError(SizingClientError):
    """A 5xx other than 503/502/504: a bug on the service's side (it has been logged there).

    Whether a POST was recorded is not known; with an order_ref a later retry is safe.
    """


class UnexpectedResponse(SizingClientError):
    """An answer outside the contract (a status or a body the client does not know): not retried."""
