"""SizingClient: the engine's HTTP client for the sizing service.

One instance holds one keep-alive connection (httpx.Client with a pool of one) and everything it
needs: no module-level state, so two clients (two services, two tokens) never share anything.
"""
from __future__ import annotations

import decimal
import json
import logging
import numbers
import random
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from ._version import __version__
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
from .models import Decision, LatestFactor, Order, from_json
from .retry import (
    GATEWAY_STATUSES,
    MAYBE_SENT,
    NOT_SENT,
    UNAVAILABLE_STATUS,
    RetryEvent,
    RetryPolicy,
    retry_after_seconds,
)

logger = logging.getLogger("sizing_client")

SIZE_PATH = "/api/v1/size/"
BATCH_PATH = "/api/v1/size/batch/"
LATEST_PATH = "/api/v1/factors/latest/"
# The service's symbol format. A 400 about a symbol of this form can only mean the service does not
# size that symbol (unknown or inactive); about any other string it means the string is malformed.

OrderLike = Order | tuple[str, float] | tuple[str, float, str | None]


class SizingClient:
    """Sizes orders through the service's REST API; every size returned is on the ledger.

    base_url is the service's root (http://host:port); token an API token of the engine role.
    timeout bounds each read, write and wait for the connection, connect_timeout each connect;
    retry bounds the whole call (attempts and a deadline, see RetryPolicy). sleep, clock and rng
    are the waits, the time and the jitter source: tests pass their own so that nothing sleeps.
    on_retry is called before each wait with what failed (for logs and metrics).

    Thread safety: calls from several threads are safe but share the one connection, so they run
    one at a time (a waiting call counts against its own deadline). Give each thread a client of
    its own for parallel calls.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not token:
            raise ValueError("token is empty: pass the engine's API token "
                             "(manage.py create_api_user NAME --role engine)")
        if not (timeout > 0 and connect_timeout > 0):
            raise ValueError("timeout and connect_timeout must be positive")
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # this client's own: no shared global random state
        self._on_retry = on_retry
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Token {token}", "Accept": "application/json",
                     "User-Agent": f"sizing-client/{__version__}"},
            transport=transport,
            # One keep-alive connection: a sizing call pays no new TCP (or TLS) handshake.
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            follow_redirects=False,  # a redirect would be a misconfigured base_url: say so, do not follow it
        )

    def __repr__(self) -> str:
        return f"SizingClient({self.base_url!r})"  # never the token

    # Lifecycle ------------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SizingClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # Sizing ---------------------------------------------------------------------------------------
    def size(self, symbol: str, gross_target: float, *, order_ref: str | None = None,
             neutral_if_unknown: bool = False) -> Decision:
        """Size one order: the recorded decision (final_size is the size to use).

        With an order_ref, a repeat of the same (this token's user, order_ref) with the same symbol
        and gross target returns the original decision (replayed=True) and writes nothing, so every
        failure is retried safely; other inputs raise OrderRefConflict. Without one, a lost answer is
        not retried (SizingUnavailable with outcome_unknown=True): always pass an order_ref.
        """
        body: dict[str, Any] = {"symbol": symbol, "gross_target": _json_number(gross_target),
                                "neutral_if_unknown": neutral_if_unknown}
        if order_ref:
            body["order_ref"] = order_ref
        what = f"POST {SIZE_PATH} ({symbol}" + (f", order_ref {order_ref!r})" if order_ref else ", no order_ref)")
        response = self._send("POST", SIZE_PATH, what=what, body=body, idempotent=_keys_an_order(order_ref))
        if response.status_code in (200, 201):
            return from_json(Decision, _json(response, what))
        raise _error(response, what, symbols=[symbol], order_ref=order_ref or "")

    def size_batch(self, orders: Iterable[OrderLike], *, neutral_if_unknown: bool = False) -> list[Decision]:
        """Size 1..1000 orders in one transaction: every decision recorded, or none (then an error).

        orders are Order(symbol, gross_target, order_ref) or (symbol, gross_target[, order_ref])
        tuples. The batch is retried after a lost answer only when every order has an order_ref.
        """
        parsed = [_order(item) for item in orders]
        body = {"orders": [{"symbol": order.symbol, "gross_target": _json_number(order.gross_target),
                            **({"order_ref": order.order_ref} if order.order_ref else {})} for order in parsed],
                "neutral_if_unknown": neutral_if_unknown}
        idempotent = bool(parsed) and all(_keys_an_order(order.order_ref) for order in parsed)
        what = f"POST {BATCH_PATH} ({len(parsed)} orders" + (")" if idempotent else ", not all with an order_ref)")
        response = self._send("POST", BATCH_PATH, what=what, body=body, idempotent=idempotent)
        if response.status_code in (200, 201):
            payload = _json(response, what)
            if not isinstance(payload, list) or len(payload) != len(parsed):
                raise UnexpectedResponse(f"{what}: expected a list of {len(parsed)} decisions, "
                                         f"got {str(payload)[:200]}",
                                         status=response.status_code)
            return [from_json(Decision, item, where=f"decision {index}") for index, item in enumerate(payload)]
        raise _error(response, what, symbols=[order.symbol for order in parsed])

    # Reading what sizing applies ------------------------------------------------------------------
    def latest_factor(self, symbol: str) -> LatestFactor:
        """What size_for applies to the symbol now. NotFound (code unknown_symbol, inactive_symbol, no_snapshot)."""
        path = f"{LATEST_PATH}{quote(symbol, safe='')}/"  # quoted: a symbol can never leave its path segment
        what = f"GET {path}"
        response = self._send("GET", path, what=what, idempotent=True)
        if response.status_code == 200:
            return from_json(LatestFactor, _json(response, what))
        raise _error(response, what)

    def latest_factors(self) -> list[LatestFactor]:
        """The same for every active symbol that has a snapshot."""
        what = f"GET {LATEST_PATH}"
        response = self._send("GET", LATEST_PATH, what=what, idempotent=True)
        if response.status_code == 200:
            payload = _json(response, what)
            if not isinstance(payload, list):
                raise UnexpectedResponse(f"{what}: expected a list, got {type(payload).__name__}", status=200)
            return [from_json(LatestFactor, item, where=f"latest factor {index}") for index, item in enumerate(payload)]
        raise _error(response, what)

    # The retry loop -------------------------------------------------------------------------------
    def _timeouts(self, remaining: float) -> httpx.Timeout:
        # No single attempt may outlast the call's deadline.
        read = min(self._timeout, remaining)
        return httpx.Timeout(read, connect=min(self._connect_timeout, remaining), pool=read)

    def _send(self, method: str, path: str, *, what: str, idempotent: bool,
              body: dict[str, Any] | None = None) -> httpx.Response:
        """The first answer that is not worth retrying, or SizingUnavailable once the policy gives up."""
        content = None if body is None else _encode(body)
        headers = {"Content-Type": "application/json"} if content is not None else None
        deadline_at = self._clock() + self._retry.deadline
        attempt = 0
        outcome_unknown = False  # whether some attempt may have reached the service unanswered
        while True:
            attempt += 1
            cause: BaseException | None = None
            retry_after: float | None = None
            status: int | None = None
            code = ""
            try:
                response = self._http.request(method, path, content=content, headers=headers,
                                              timeout=self._timeouts(max(deadline_at - self._clock(), 0.001)))
            except NOT_SENT as exc:  # before MAYBE_SENT: ConnectTimeout is a TimeoutException too
                cause, reason = exc, f"{type(exc).__name__} before the request was sent ({exc})"
            except MAYBE_SENT as exc:
                outcome_unknown = True
                cause, reason = exc, f"{type(exc).__name__} after the request may have been sent ({exc})"
                if not idempotent:
                    raise _unsafe_to_retry(what, reason, attempt) from exc
            else:
                status = response.status_code
                if status == UNAVAILABLE_STATUS:
                    code, message, _ = _error_parts(response)
                    reason = f"503 {code}: {message}"
                    retry_after = retry_after_seconds(response)
                elif status in GATEWAY_STATUSES:
                    outcome_unknown = True
                    reason = f"{status} from a gateway in front of the service (it may have acted on the request)"
                    if not idempotent:
                        raise _unsafe_to_retry(what, reason, attempt, status=status)
                else:
                    return response
            if attempt >= self._retry.max_attempts:
                raise SizingUnavailable(f"{what}: the sizing service is unavailable, gave up after {attempt} "
                                        f"attempt(s); last: {reason}", attempts=attempt,
                                        outcome_unknown=outcome_unknown, status=status, code=code) from cause
            delay = self._retry.delay(attempt, self._rng, retry_after)
            if self._clock() + delay >= deadline_at:
                raise SizingUnavailable(f"{what}: the sizing service is unavailable, gave up after {attempt} "
                                        f"attempt(s): the next one ({delay:.2f} s away) would start past the "
                                        f"{self._retry.deadline} s deadline; last: {reason}", attempts=attempt,
                                        outcome_unknown=outcome_unknown, status=status, code=code) from cause
            logger.warning("%s: attempt %d failed (%s); retrying in %.2f s", what, attempt, reason, delay)
            if self._on_retry is not None:
                self._on_retry(RetryEvent(request=what, attempt=attempt, delay=delay, reason=reason, status=status))
            self._sleep(delay)


# Requests -----------------------------------------------------------------------------------------
def _json_number(value: Any) -> Any:
    """Numbers JSON cannot take as they are (Decimal, numpy scalars) as plain ones; anything else as given,
    so the service refuses a non-number with its own message."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, (numbers.Real, decimal.Decimal)):
        return float(value)
    return value


def _keys_an_order(order_ref: str | None) -> bool:
    """Whether the service deduplicates on this order_ref: any non-empty one, kept as given."""
    return bool(order_ref)


def _order(item: OrderLike) -> Order:
    if isinstance(item, Order):
        return item
    if isinstance(item, tuple) and len(item) in (2, 3):
        return Order(*item)
    raise TypeError(f"an order is an Order or a (symbol, gross_target[, order_ref]) tuple, got {item!r}")


def _encode(body: dict[str, Any]) -> bytes:
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
    except ValueError:  # NaN or an infinity: JSON has neither, and the service would refuse the body
        raise InvalidRequest("gross_target must be a finite number: JSON has no NaN or infinity; nothing was sent",
                             code="invalid") from None
    except TypeError as exc:
        raise InvalidRequest(f"the request cannot be sent as JSON ({exc}); nothing was sent", code="invalid") from None


def _unsafe_to_retry(what: str, reason: str, attempt: int, *, status: int | None = None) -> SizingUnavailable:
    return SizingUnavailable(
        f"{what}: {reason}. The service may have recorded a decision whose answer was lost, so it may or may not "
        "be on the ledger. Not retried: the request has no order_ref (for a batch: not every order has one), so "
        "a retry could size the order twice. Pass an order_ref to make retries safe.",
        attempts=attempt, outcome_unknown=True, status=status,
    )


# Answers ------------------------------------------------------------------------------------------
def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UnexpectedResponse(f"{what}: {response.status_code} with a body that is not JSON: "
                                 f"{response.text[:200]!r}", status=response.status_code) from None


def _error_parts(response: httpx.Response) -> tuple[str, str, Any]:
    """(code, message, details) of the service's error body; of a body that is not one, what can be said."""
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"]), error.get("details")
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}", response.text[:200] or response.reason_phrase, None


def _refused_symbol(details: Any, symbols: list[str]) -> str:
    """The symbol an unknown_symbol 400 is about. Size: {"symbol": [msg]}; batch: {"orders": [{} or {...}]}."""
    orders = details.get("orders") if isinstance(details, dict) else None
    if isinstance(orders, list) and len(orders) == len(symbols):
        return next((symbol for symbol, entry in zip(symbols, orders) if entry), symbols[0] if symbols else "")
    return symbols[0] if symbols else ""


def _symbol_message(details: dict[str, Any]) -> str | None:
    messages = details.get("symbol") if "symbol" in details else next(
        (entry["symbol"] for entry in details.get("orders", []) if entry), None)
    return str(messages[0]) if isinstance(messages, list) and messages else None


def _error(response: httpx.Response, what: str, *, symbols: list[str] | None = None,
           order_ref: str = "") -> SizingClientError:
    """The typed error for an answer that is not a success (503/502/504 never get here: they are retried)."""
    status = response.status_code
    code, message, details = _error_parts(response)
    parts: dict[str, Any] = {"status": status, "code": code, "details": details}
    if status in (400, 413):
        if status == 400 and code == "unknown_symbol":
            symbol = _refused_symbol(details, symbols or [])
            return UnknownSymbol(f"{what}: {_symbol_message(details) or message}", symbol=symbol, **parts)
        shown = f"{message} {json.dumps(details, ensure_ascii=False)[:500]}" if details else message
        return InvalidRequest(f"{what}: {status} {code}: {shown}", **parts)
    if status in (401, 403):
        return AuthenticationFailed(f"{what}: {status} {code}: {message}", **parts)
    if status == 404:
        return NotFound(f"{what}: 404 {code}: {message}", **parts)
    if status == 409 and code == "order_ref_conflict":
        decision_id = details.get("decision_id") if isinstance(details, dict) else None
        order_ref = str(details.get("order_ref", order_ref)) if isinstance(details, dict) else order_ref
        return OrderRefConflict(f"{what}: {message}", order_ref=order_ref,
                                decision_id=decision_id if isinstance(decision_id, int) else None, **parts)
    if status == 429:
        wait = details.get("retry_after") if isinstance(details, dict) else None
        retry_after = float(wait) if isinstance(wait, (int, float)) and not isinstance(wait, bool) else None
        if retry_after is None:
            retry_after = retry_after_seconds(response)
        return Throttled(f"{what}: 429 {code}: {message}", retry_after=retry_after, **parts)
    if status >= 500:
        return ServerError(f"{what}: {status} {code}: {message}", **parts)
    return UnexpectedResponse(f"{what}: unexpected {status} {code}: {message}", **parts)
