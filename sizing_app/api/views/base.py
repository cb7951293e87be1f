"""What every API view shares: strict query parameters, a cached Allow header, input and refusal helpers."""
from __future__ import annotations

import logging
import re

from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.views import APIView

from ...models import SYMBOL_PATTERN, Symbol
from .. import serializers as s

logger = logging.getLogger(__name__)

SYMBOL_RE = re.compile(SYMBOL_PATTERN)
SYMBOL_PARAMETER = OpenApiParameter(
    "symbol", str, OpenApiParameter.PATH, pattern=SYMBOL_PATTERN, description="Symbol name, e.g. BTCUSDC.",
    examples=[OpenApiExample("BTCUSDC", value="BTCUSDC")],
)
ID_PARAMETER = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Row id.")
BULK_OPERATIONS = {
    "fills_bulk_create": s.MAX_BULK_ROWS, "orders_bulk_create": s.MAX_BULK_ROWS,
    "candles_bulk_create": s.MAX_BULK_ROWS,
}
SIZE_EXAMPLE = OpenApiExample(
    "Size an order", value={"symbol": "BTCUSDC", "gross_target": 1000.0, "order_ref": "ord-1"}, request_only=True
)


class StrictQueryMixin:
    """Unknown query parameters are a 400: a misspelt filter must not silently return everything."""

    def allowed_query_params(self) -> set[str]:
        if self.request.method not in ("GET", "HEAD"):
            return set()
        allowed = set()
        filterset_class = getattr(self, "filterset_class", None)
        if filterset_class is not None:
            allowed |= set(filterset_class.base_filters)
        paginator = getattr(self, "paginator", None)
        if paginator is not None:
            allowed |= {getattr(paginator, name) for name in (
                "cursor_query_param", "page_size_query_param", "limit_query_param", "offset_query_param",
            ) if getattr(paginator, name, None)}
        return allowed

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permission and throttling first
        if not request._request.META.get("QUERY_STRING"):
            return  # the common case, kept cheap: the engine's hot reads carry no query string
        if request.method == "OPTIONS" or not hasattr(self, request.method.lower()):
            return  # the handler answers 405
        unknown = set(request.query_params) - self.allowed_query_params()
        if unknown:
            allowed = ", ".join(sorted(self.allowed_query_params())) or "none"
            raise ValidationError({name[:100]: [f"Unknown query parameter (allowed: {allowed})."]
                                   for name in sorted(unknown)[:20]})


class CachedAllowMixin:
    """The Allow header's method list, computed once per view class instead of on every request."""

    _allowed_methods_cache: dict[type, list[str]] = {}

    @property
    def allowed_methods(self):
        methods = self._allowed_methods_cache.get(type(self))
        if methods is None:
            methods = self._allowed_methods_cache[type(self)] = super().allowed_methods
        return methods


class ApiView(CachedAllowMixin, StrictQueryMixin, APIView):
    pass


class ApiGenericView(CachedAllowMixin, StrictQueryMixin, GenericAPIView):
    pass


def valid(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def service_call(function, **kwargs):
    """A service's ValueError is the caller's input being refused: a 400 with its message."""
    try:
        return function(**kwargs)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def known_symbol_or_404(symbol: str) -> str:
    if not SYMBOL_RE.fullmatch(symbol) or not Symbol.objects.filter(name=symbol).exists():
        raise NotFound(f"Unknown symbol {symbol!r}.", code="unknown_symbol")
    return symbol


def caller_of(request) -> str:
    return request.user.get_username()[:64]  # the ledger's caller column holds 64 characters
