"""Request rate limits per user (or client address), counted in the "throttle" cache shared by all processes.

A fixed-window counter. Each process counts locally and adds its count to the shared cache at most
every SYNC_SECONDS, and on every request once the window is past half its limit: the cache costs one
write per process per quarter second on the hot path, and the limit still holds within a few
requests (each process's unsent count while under half the limit is all another can miss).

When the cache fails (an error, or its timeout: settings.REDIS_CACHE_TIMEOUT_SECONDS), the request is let
through and each process counts on its own for CACHE_RETRY_SECONDS before it tries the cache again, so an
outage costs one timeout per process every few seconds, not one per request. Meanwhile a process refuses
only what its own count already puts over the limit (never more than the shared count would) and keeps
that count to send once the cache answers.
"""
from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache

from django.core.cache import caches
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from ..roles import ENGINE
from .permissions import user_roles

logger = logging.getLogger(__name__)

CACHE_ALIAS = "throttle"
SYNC_SECONDS = 0.25
CACHE_RETRY_SECONDS = 5.0
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@lru_cache(maxsize=64)
def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """"6000/min" -> (6000, 60); None means unlimited."""
    if not rate:
        return None
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0]]


class _Window:
    __slots__ = ("shared", "pending", "synced_at")

    def __init__(self):
        self.shared, self.pending, self.synced_at = 0, 0, float("-inf")


class WindowCounter:
    """This process's view of each (key, window): the shared count last seen plus what it has not sent."""

    def __init__(self):
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._cache_retry_at = float("-inf")  # monotonic; the shared cache failed and is skipped until then

    def count(self, key: str, *, limit: int, period: int) -> int:
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                if len(self._windows) > 10_000:
                    self._windows.clear()  # old windows; their keys expire in the shared cache anyway
                window = self._windows[key] = _Window()
            window.pending += 1
            estimate = window.shared + window.pending
            now = time.monotonic()
            if now - window.synced_at < SYNC_SECONDS and estimate * 2 <= limit:
                return estimate
            if now < self._cache_retry_at:
                return estimate
            pending, window.pending, window.synced_at = window.pending, 0, now
        try:
            shared = _add(caches[CACHE_ALIAS], key, pending, period)
        except Exception:
            with self._lock:
                window.pending += pending  # keep it for the next attempt
                self._cache_retry_at = time.monotonic() + CACHE_RETRY_SECONDS
            raise
        with self._lock:
            if self._cache_retry_at != float("-inf"):
                self._cache_retry_at = float("-inf")
                logger.info("throttle cache answers again; counting in it")
            window.shared = shared
            return shared + window.pending

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
            self._cache_retry_at = float("-inf")


def _add(cache, key: str, amount: int, period: int) -> int:
    try:
        return cache.incr(key, amount)
    except ValueError:  # first count of the window anywhere
        if cache.add(key, amount, timeout=period + 1):
            return amount
        return cache.incr(key, amount)


window_counter = WindowCounter()


class RoleRateThrottle(BaseThrottle):
    """Scope "engine" for engine accounts, "user" for other accounts, "anon" for the rest.

    Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], read per request so settings
    overrides apply. If the cache fails the request is let through, logged, and counted in this
    process only until the cache is tried again (see the module's docstring).
    """

    def __init__(self):
        self._wait = None

    def scope_for(self, request) -> str:
        user = request.user
        if user is not None and user.is_authenticated:
            return ENGINE if ENGINE in user_roles(user) and not user.is_superuser else "user"
        return "anon"

    def allow_request(self, request, view) -> bool:
        scope = self.scope_for(request)
        rate = parse_rate(api_settings.DEFAULT_THROTTLE_RATES.get(scope))
        if rate is None:
            return True
        limit, period = rate
        now = time.time()
        window = int(now // period)
        user = request.user
        ident = user.pk if user is not None and user.is_authenticated else self.get_ident(request)
        key = f"rate:{scope}:{ident}:{period}:{window}"
        try:
            count = window_counter.count(key, limit=limit, period=period)
        except Exception:  # a throttle outage must not take the API down
            logger.warning("throttle cache unavailable; request let through, counting in this process for %.0f s",
                           CACHE_RETRY_SECONDS, exc_info=True)
            return True
        if count > limit:
            self._wait = (window + 1) * period - now
            return False
        return True

    def wait(self):
        return self._wait
