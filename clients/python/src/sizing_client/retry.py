"""When a failed attempt may be retried, and how long to wait before the next one.

The rule is about the ledger: a retry must never size an order twice.

- A 503 is always safe: the service promises it recorded nothing.
- A connection that failed before the request was sent (refused, connect timeout, no free
  connection in the pool) is always safe: the service never saw it.
- Anything that failed after the request may have been sent (a read or write timeout, a
  connection dropped mid-exchange, a 502/504 from a proxy in front of the service) leaves the
  outcome unknown: the decision may be on the ledger. Retrying is safe only for an idempotent
  request: a GET, or a sizing request whose every order carries an order_ref (the service then
  returns the original decision instead of sizing again).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import httpx

# Failures before the request left this process: the service cannot have acted on it.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport failures that may come after (part of) the request was sent.
MAYBE_SENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.DecodingError)
# Statuses a proxy in front of the service answers when the service did not (fully) answer: outcome unknown.
GATEWAY_STATUSES = frozenset({502, 504})
UNAVAILABLE_STATUS = 503


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries: at most max_attempts attempts, all within deadline seconds.

    The wait before retry n (n = 1, 2, ...) is uniform in [0, min(backoff_max, backoff_initial * 2**(n-1))]
    ("full jitter", so that many engines retrying the same outage do not arrive together), plus the
    service's Retry-After when it sends one. A call never sleeps past its deadline: when the next
    wait would end after it, the call gives up at once.
    """

    max_attempts: int = 4
    deadline: float = 10.0
    backoff_initial: float = 0.2
    backoff_max: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not self.deadline > 0:
            raise ValueError(f"deadline must be positive, got {self.deadline}")
        if self.backoff_initial < 0 or self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_initial must be >= 0 and backoff_max >= backoff_initial")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        cap = min(self.backoff_max, self.backoff_initial * 2 ** (retry - 1))
        return (retry_after or 0.0) + rng.uniform(0.0, cap)


NO_RETRIES = RetryPolicy(max_attempts=1)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The Retry-After header's delta-seconds; None when absent or an HTTP date (the service sends seconds,
    and a date would be measured against a local clock that may be skewed)."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), 3600.0)  # a negative wait is none; an absurd one is capped, the deadline still rules


@dataclass(frozen=True)
class RetryEvent:
    """Told to SizingClient(on_retry=...) before each wait: for logs and metrics (an outage shows here first)."""

    request: str  # e.g. "POST /api/v1/size/"
    attempt: int  # the attempt that failed, from 1
    delay: float  # seconds the client now waits before the next attempt
    reason: str  # what failed: "503 service_unavailable: ...", "ConnectError before the request was sent: ..."
    status: int | None  # the HTTP status of the failed attempt, None for a transport failure
