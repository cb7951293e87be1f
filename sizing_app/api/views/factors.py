"""Latest factors (what sizing applies now, from the hot state) and the snapshot history; symbols."""
from __future__ import annotations

import json

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from ...models import SizingSnapshot, Symbol
from ...sizing.hot_state import hot_state
from ...sizing.terms import SizingTerms, sizing_terms
from .. import serializers as s
from ..filters import SnapshotFilter
from ..pagination import SnapshotCursorPagination
from .base import SYMBOL_PARAMETER, SYMBOL_RE, ApiGenericView, ApiView, known_symbol_or_404


# Symbols -------------------------------------------------------------------------------------------
class SymbolListView(ApiView):
    operations = {"GET": "symbols_list"}

    @extend_schema(operation_id="symbols_list", tags=["symbols"], responses=s.SymbolOutputSerializer(many=True),
                   summary="Every symbol with its activity flag and own mode.")
    def get(self, request):
        return Response(s.SymbolOutputSerializer(Symbol.objects.order_by("name"), many=True).data)


# Factors -------------------------------------------------------------------------------------------
def _drf_datetime(moment) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class LatestJSON:
    """Per-process cache of the latest-factor JSON: what LatestFactorOutputSerializer + JSONRenderer give.

    A snapshot's own fields never change (snapshots are append-only), so their JSON is cached per
    snapshot; the policy-applied terms are cached per value; only age_seconds is rendered per request.
    """

    def __init__(self, max_entries: int = 10_000):
        self._prefixes: dict[tuple, str] = {}
        self._terms: dict[tuple, str] = {}
        self._max_entries = max_entries

    def render(self, terms: SizingTerms, now) -> str:
        latest = terms.latest
        # Ids alone would do in production; the extra fields keep a restored or rolled-back database
        # (whose ids can come again) from ever serving another snapshot's JSON.
        key = (latest.snapshot_id, latest.symbol, latest.as_of, latest.size_factor, latest.score)
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = _json({
                "symbol": latest.symbol, "snapshot_id": latest.snapshot_id, "as_of": _drf_datetime(latest.as_of),
                "status": latest.status, "score": latest.score, "size_factor": latest.size_factor,
                "sharpe_7d": latest.sharpe_7d, "atr_regime_ratio": latest.atr_regime_ratio,
                "components": latest.components,
            })[:-1]
            self._prefixes = self._bounded(self._prefixes)
            self._prefixes[key] = prefix
        override = terms.override
        terms_key = (key, terms.mode, None if override is None else (override.pk, override.pinned_factor,
                                                                     override.mode, override.expires_at),
                     terms.stale, terms.fallback_reason, terms.intel_factor, terms.applied_factor,
                     terms.inverse_vol_multiplier, terms.regime_multiplier, terms.sharpe_multiplier)
        middle = self._terms.get(terms_key)
        if middle is None:
            middle = _json({
                "mode": terms.mode,
                "override": None if override is None else {
                    "id": override.pk, "pinned_factor": override.pinned_factor, "mode": override.mode,
                    "expires_at": None if override.expires_at is None else _drf_datetime(override.expires_at),
                },
                "stale": terms.stale, "fallback_reason": terms.fallback_reason,
                "intel_factor": terms.intel_factor, "applied_factor": terms.applied_factor,
                "inverse_vol_multiplier": terms.inverse_vol_multiplier,
                "regime_multiplier": terms.regime_multiplier, "sharpe_multiplier": terms.sharpe_multiplier,
                "total_multiplier": terms.total_multiplier,
            })[1:-1]
            self._terms = self._bounded(self._terms)
            self._terms[terms_key] = middle
        return f'{prefix},{middle},"age_seconds":{json.dumps((now - latest.as_of).total_seconds())}}}'

    def _bounded(self, cache: dict) -> dict:
        return {} if len(cache) >= self._max_entries else cache

    def clear(self) -> None:
        self._prefixes, self._terms = {}, {}


latest_json = LatestJSON()


def _latest_terms(symbol: str, now) -> SizingTerms | None:
    """What size_for would apply to an active symbol with a snapshot, or None."""
    known = SYMBOL_RE.fullmatch(symbol) and hot_state.latest(symbol) is not None
    return sizing_terms(symbol, now) if known and hot_state.symbol_active(symbol) is True else None


class LatestFactorListView(ApiView):
    operations = {"GET": "factors_latest_list"}

    @extend_schema(operation_id="factors_latest_list", tags=["factors"],
                   responses=s.LatestFactorOutputSerializer(many=True),
                   summary="What sizing applies now to every active symbol that has a snapshot (hot state, no query).")
    def get(self, request):
        now = timezone.now()
        bodies = [latest_json.render(terms, now) for name in sorted(hot_state.latest_all())
                  if (terms := _latest_terms(name, now)) is not None]
        return HttpResponse("[" + ",".join(bodies) + "]", content_type="application/json")


class LatestFactorDetailView(ApiView):
    operations = {"GET": "factors_latest_detail"}

    @extend_schema(operation_id="factors_latest_detail", tags=["factors"], parameters=[SYMBOL_PARAMETER],
                   responses=s.LatestFactorOutputSerializer,
                   summary="What sizing applies now to a symbol: the factor after policy, the stack, the total "
                           "(per-process hot state, no query when warm).")
    def get(self, request, symbol: str):
        now = timezone.now()
        terms = _latest_terms(symbol, now)
        if terms is None:
            known_symbol_or_404(symbol)
            if hot_state.symbol_active(symbol) is False:
                raise NotFound(f"{symbol} is inactive: sizing refuses it unless asked to size it neutrally.",
                               code="inactive_symbol")
            raise NotFound(f"{symbol} has no snapshot yet: sizing applies x1.0 (fallback no_snapshot).",
                           code="no_snapshot")
        # The engine's hot read skips the serializer and DRF's renderer (most of its cost); the JSON is
        # what LatestFactorOutputSerializer + JSONRenderer produce, byte for byte (a test pins it).
        return HttpResponse(latest_json.render(terms, now), content_type="application/json")


class FactorHistoryView(ApiGenericView):
    operations = {"GET": "factors_history"}
    queryset = SizingSnapshot.objects.select_related("symbol")
    serializer_class = s.SnapshotOutputSerializer
    filterset_class = SnapshotFilter
    pagination_class = SnapshotCursorPagination

    @extend_schema(operation_id="factors_history", tags=["factors"], responses=s.SnapshotOutputSerializer(many=True),
                   summary="Snapshots, newest first, cursor-paginated.")
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
