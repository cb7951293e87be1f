"""Request rate limits per user (or client address), counted in the "throttle" cache shared by all processes.

A fixed-window counter: one atomic increment per request, whatever the rate (DRF's SimpleRateThrottle
stores a timestamp per request, so its cost grows with the limit; the engine's limit is high).
"""
from __future__ import annotations

import logging
import time

from django.core.cache import caches
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from ..roles import ENGINE
from .permissions import user_roles

logger = logging.getLogger(__name__)

CACHE_ALIAS = "throttle"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """"6000/min" -> (6000, 60); None means unlimited."""
    if not rate:
        return None
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0]]


class RoleRateThrottle(BaseThrottle):
    """Scope "engine" for engine accounts, "user" for other accounts, "anon" for the rest.

    Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], read per request so settings
    overrides apply. If the cache is unreachable the request is let through (and logged).
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
            count = self._increment(caches[CACHE_ALIAS], key, period)
        except Exception:  # a throttle outage must not take the API down
            logger.warning("throttle cache unavailable; request not counted", exc_info=True)
            return True
        if count > limit:
            self._wait = (window + 1) * period - now
            return False
        return True

    @staticmethod
    def _increment(cache, key: str, period: int) -> int:
        try:
            return cache.incr(key)
        except ValueError:  # first request of the window
            if cache.add(key, 1, timeout=period + 1):
                return 1
            return cache.incr(key)

    def wait(self):
        return self._wait
