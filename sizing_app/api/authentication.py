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

TOKEN_CACHE_SECONDS = float(getattr(settings, "API_TOKEN_CACHE_SECONDS", 5.0))
MAX_CACHED_TOKENS = 10_000
_TOKEN_RE = re.compile(r"[0-9A-Za-z]{1,40}")  # authtoken keys are 40 hex characters


class TokenCache:
    def __init__(self):
        self._entries: dict[str, tuple[float, object, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: str):
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1], entry[2]

    def put(self, key: str, user, token) -> None:
        with self._lock:
            if len(self._entries) >= MAX_CACHED_TOKENS:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + TOKEN_CACHE_SECONDS, user, token)

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
        user, token = super().authenticate_credentials(key)
        token_cache.put(key, user, token)
        return user, token
