"""Token authentication with a short per-process cache of valid tokens.

DRF's TokenAuthentication costs a query per request; the engine calls many times a second, so a
valid token is remembered for TOKEN_CACHE_SECONDS (a revoked token or deactivated user stops
working within that time). Invalid tokens are never cached and never reach the database when malformed.
"""
from __future__ import annotations

import re
import threading
import time

from django.conf import settings
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from ..ledger.writer import ledger_unreachable

TOKEN_CACHE_SECONDS = float(getattr(settings, "API_TOKEN_CACHE_SECONDS", 5.0))
# While the database cannot be reached, a token this process checked within this many seconds keeps
# working, so hot reads (served from memory) go on through an outage; a revoked token is refused
# again as soon as the database answers.
TOKEN_OUTAGE_GRACE_SECONDS = float(getattr(settings, "API_TOKEN_OUTAGE_GRACE_SECONDS", 600.0))
MAX_CACHED_TOKENS = 10_000
_TOKEN_RE = re.compile(r"[0-9A-Za-z]{1,40}")  # authtoken keys are 40 hex characters


class TokenCache:
    def __init__(self):
        self._entries: dict[str, tuple[float, object, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, *, max_age: float = TOKEN_CACHE_SECONDS):
        """(user, token) if the database confirmed this token within max_age seconds, else None."""
        entry = self._entries.get(key)  # (checked at, user, token)
        if entry is None or time.monotonic() - entry[0] >= max_age:
            return None
        return entry[1], entry[2]

    def put(self, key: str, user, token) -> None:
        with self._lock:
            if len(self._entries) >= MAX_CACHED_TOKENS:
                self._entries.clear()
            self._entries[key] = (time.monotonic(), user, token)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


token_cache = TokenCache()


class CachedTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, served from token_cache when seen within the last few seconds."""

    def authenticate(self, request):
        # Fast path for the engine's hot loop: a well-formed header whose key is cached.
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header.startswith("Token ") and header.count(" ") == 1:
            cached = token_cache.get(header[6:])
            if cached is not None:
                return cached
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        if not _TOKEN_RE.fullmatch(key):
            raise AuthenticationFailed("Invalid token.")
        cached = token_cache.get(key)
        if cached is not None:
            return cached
        try:
            user, token = super().authenticate_credentials(key)
        except Exception as exc:
            remembered = token_cache.get(key, max_age=TOKEN_OUTAGE_GRACE_SECONDS) if ledger_unreachable(exc) else None
            if remembered is None:
                raise
            return remembered  # the database is down: reads served from memory need not stop
        token_cache.put(key, user, token)
        return user, token
