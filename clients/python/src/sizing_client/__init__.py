"""Python client for the adaptive position sizing service (see docs/engine.md in the service's repository).

    from sizing_client import SizingClient, SizingUnavailable

    with SizingClient("http://127.0.0.1:8000", token) as sizing:
        decision = sizing.size("BTCUSDC", 1000.0, order_ref="ord-42")
        use(decision.final_size)
"""
from ._version import __version__
from .client import SizingClient
from .errors import (
                     AuthenticationFailed,
                     InvalidRequest,
                     NotFound,
                     OrderRefConflict,
                     ServerError,
                     SizingClientError,
                     SizingUnavailable,
                     Throttled,
                     UnexpectedResponse,
                     UnknownSymbol,
)
from .models import Decision, LatestFactor, LatestOverride, Order
from .retry import NO_RETRIES, RetryEvent, RetryPolicy

__all__ = [
    "AuthenticationFailed", "Decision", "InvalidRequest", "LatestFactor", "LatestOverride", "NO_RETRIES", "NotFound",
    "Order", "OrderRefConflict", "RetryEvent", "RetryPolicy", "ServerError", "SizingClient", "SizingClientError",
    "SizingUnavailable", "Throttled", "UnexpectedResponse", "UnknownSymbol", "__version__",
]
