"""API views: one per operation (a URL's methods share a class), each with its own small serializers.

Views validate input, check existence, call the services, and shape output; rules live in the services.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from csp.decorators import csp_update
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.http import Http404, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.static import serve
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView, SpectacularSwaggerView
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import signal_generator, tasks
from ..errors import OrderRefConflict, UnknownSymbol
from ..conf import sizing_settings
from ..latest import hot_state
from ..terms import SizingTerms, sizing_terms
from ..models import SYMBOL_PATTERN, GlobalPolicy, Override, RecomputeRun, SizingDecision, SizingSnapshot, Symbol
from ..services import policy as policy_service
from ..utils.execution_health import compute_execution_health
from . import ingest
from . import serializers as s
from .errors import Conflict, ServiceUnavailable, error_body
from .filters import DecisionFilter, RunFilter, SnapshotFilter
from .pagination import (DecisionCursorPagination, RunCursorPagination, SnapshotCursorPagination,
                         StrictLimitOffsetPagination)
from .permissions import RolePermission

logger = logging.getLogger(__name__)

_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
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


def _valid(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _service_call(function, **kwargs):
    """A service's ValueError is the caller's input being refused: a 400 with its message."""
    try:
        return function(**kwargs)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _known_symbol_or_404(symbol: str) -> str:
    if not _SYMBOL_RE.fullmatch(symbol) or not Symbol.objects.filter(name=symbol).exists():
        raise NotFound(f"Unknown symbol {symbol!r}.", code="unknown_symbol")
    return symbol


def _caller(request) -> str:
    return request.user.get_username()[:64]  # the ledger's caller column holds 64 characters


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
    if not _SYMBOL_RE.fullmatch(symbol) or hot_state.latest(symbol) is None or hot_state.symbol_active(symbol) is not True:
        return None
    return sizing_terms(symbol, now)


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
            _known_symbol_or_404(symbol)
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


# Decisions (the ledger) ----------------------------------------------------------------------------
class DecisionListView(ApiGenericView):
    operations = {"GET": "decisions_list"}
    queryset = SizingDecision.objects.all()
    serializer_class = s.DecisionOutputSerializer
    filterset_class = DecisionFilter
    pagination_class = DecisionCursorPagination

    @extend_schema(operation_id="decisions_list", tags=["decisions"], responses=s.DecisionOutputSerializer(many=True),
                   summary="Ledger rows, newest first, cursor-paginated.")
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class DecisionDetailView(ApiView):
    operations = {"GET": "decisions_detail"}

    @extend_schema(operation_id="decisions_detail", tags=["decisions"], parameters=[ID_PARAMETER],
                   responses=s.DecisionOutputSerializer, summary="One ledger row.")
    def get(self, request, pk: int):
        decision = SizingDecision.objects.filter(pk=pk).first()
        if decision is None:
            raise NotFound(f"No decision {pk}.")
        return Response(s.DecisionOutputSerializer(decision).data)


def _sized(function, *, unknown_detail=lambda exc: {"symbol": [str(exc)]}, **kwargs):
    """A sizing service call, its refusals as the API's errors: unknown symbol 400, order_ref reused 409."""
    try:
        return function(**kwargs)
    except UnknownSymbol as exc:
        raise ValidationError(unknown_detail(exc)) from None
    except OrderRefConflict as exc:
        raise Conflict(str(exc), code="order_ref_conflict") from None
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class SizeView(ApiView):
    operations = {"POST": "size_create"}
    error_statuses = {"POST": (409, 503)}

    @extend_schema(operation_id="size_create", tags=["sizing"], request=s.SizeInputSerializer,
                   responses={201: s.DecisionOutputSerializer, 200: s.DecisionOutputSerializer},
                   examples=[SIZE_EXAMPLE],
                   summary="Size one order: the stack times the persisted factor, recorded on the ledger.",
                   description="201: a new decision. 200: this caller sized this order_ref before with the same "
                               "symbol and gross target: the original decision, `replayed: true`, nothing written "
                               "(retrying after a timeout is safe). 409 `order_ref_conflict`: the order_ref was "
                               "sized with other inputs, nothing written. 503: the ledger cannot record now, nothing "
                               "written; retry.")
    def post(self, request):
        data = _valid(s.SizeInputSerializer, request.data)
        decision = _sized(
            signal_generator.size_decide, symbol=data["symbol"], gross_target=data["gross_target"],
            order_ref=data["order_ref"], caller=_caller(request), neutral_if_unknown=data["neutral_if_unknown"],
            journal=False,  # a response promises a ledger row (its id); a database outage is a 503
        )
        return Response(s.DecisionOutputSerializer(decision).data,
                        status=status.HTTP_200_OK if decision.replayed else status.HTTP_201_CREATED)


class SizeBatchView(ApiView):
    operations = {"POST": "size_batch_create"}
    error_statuses = {"POST": (409, 503)}

    @extend_schema(operation_id="size_batch_create", tags=["sizing"], request=s.SizeBatchInputSerializer,
                   responses={201: s.DecisionOutputSerializer(many=True), 200: s.DecisionOutputSerializer(many=True)},
                   summary="Size up to 1000 orders in one transaction: every decision recorded, or none.",
                   description="Orders already sized by this caller (same order_ref, symbol and gross target) come "
                               "back as their original decisions, `replayed: true`; 200 when every order was one, "
                               "else 201. Any order_ref sized with other inputs: 409, nothing written.")
    def post(self, request):
        data = _valid(s.SizeBatchInputSerializer, request.data)
        orders = data["orders"]
        decisions = _sized(
            signal_generator.size_decide_batch,
            orders=[(order["symbol"], order["gross_target"], order["order_ref"]) for order in orders],
            caller=_caller(request), neutral_if_unknown=data["neutral_if_unknown"], journal=False,
            unknown_detail=lambda exc: {"orders": [{"symbol": [str(exc)]} if order["symbol"] == exc.symbol else {}
                                                   for order in orders]},
        )
        every_one_replayed = all(decision.replayed for decision in decisions)
        return Response(s.DecisionOutputSerializer(decisions, many=True).data,
                        status=status.HTTP_200_OK if every_one_replayed else status.HTTP_201_CREATED)


# Execution health ----------------------------------------------------------------------------------
class ExecutionHealthListView(ApiView):
    operations = {"GET": "execution_health_list"}

    @extend_schema(operation_id="execution_health_list", tags=["execution-health"],
                   responses=s.HealthOverviewOutputSerializer,
                   summary="Execution quality, regime and sizing in force for every active symbol.")
    def get(self, request):
        return Response(s.HealthOverviewOutputSerializer(compute_execution_health()).data)


class ExecutionHealthDetailView(ApiView):
    operations = {"GET": "execution_health_detail"}

    @extend_schema(operation_id="execution_health_detail", tags=["execution-health"], parameters=[SYMBOL_PARAMETER],
                   responses=s.SymbolHealthOutputSerializer, summary="One symbol's execution health.")
    def get(self, request, symbol: str):
        _known_symbol_or_404(symbol)
        health = _service_call(compute_execution_health, symbol=symbol)
        return Response(s.SymbolHealthOutputSerializer(health).data)


# Telemetry intake ----------------------------------------------------------------------------------
def _rows_rejected(errors: list[dict]) -> Response:
    message = f"{len({error['row'] for error in errors})} row(s) rejected; nothing was saved."
    return Response(error_body("invalid_rows", message, {"errors": errors}), status=status.HTTP_400_BAD_REQUEST)


def _serializer_row_errors(errors: list) -> list[dict]:
    found = []
    for index, row_errors in enumerate(errors):
        if isinstance(row_errors, list):  # the row itself is wrong (null, a number, ...)
            row_errors = {"non_field_errors": row_errors}
        for field, messages in row_errors.items():
            for message in messages if isinstance(messages, list) else [messages]:
                found.append({"row": index, "field": None if field == "non_field_errors" else field,
                              "message": str(message)})
    return found


class BulkIngestView(ApiView):
    row_serializer: type
    ingest_function = None

    def post(self, request):
        rows = request.data
        if not isinstance(rows, list):
            raise ValidationError("The body must be a JSON array of rows.")
        if not 1 <= len(rows) <= s.MAX_BULK_ROWS:
            raise ValidationError(f"Send 1 to {s.MAX_BULK_ROWS} rows per request; got {len(rows)}.")
        serializer = self.row_serializer(data=rows, many=True)
        if not serializer.is_valid():
            return _rows_rejected(_serializer_row_errors(serializer.errors))
        try:
            result = type(self).ingest_function(rows=serializer.validated_data)
        except ingest.RowsRejected as exc:
            return _rows_rejected([error.as_dict() for error in exc.errors])
        return Response(s.BulkResultSerializer(result).data)


def _bulk_schema(operation_id: str, row_serializer, what: str):
    return extend_schema(
        operation_id=operation_id, tags=["telemetry"], request=row_serializer(many=True),
        responses={200: s.BulkResultSerializer},
        summary=f"Record up to {s.MAX_BULK_ROWS} {what}: all rows or none, re-posts change nothing.",
        description="A 400 `invalid_rows` error lists every bad row in `details.errors` as {row, field, message}; "
                    "row is the 0-based index in the posted array.",
    )


class FillsBulkView(BulkIngestView):
    operations = {"POST": "fills_bulk_create"}
    row_serializer = s.FillRowSerializer
    ingest_function = staticmethod(ingest.fills_ingest)

    @_bulk_schema("fills_bulk_create", s.FillRowSerializer, "fills (key: symbol, trade_id)")
    def post(self, request):
        return super().post(request)


class OrdersBulkView(BulkIngestView):
    operations = {"POST": "orders_bulk_create"}
    row_serializer = s.OrderRowSerializer
    ingest_function = staticmethod(ingest.orders_ingest)

    @_bulk_schema("orders_bulk_create", s.OrderRowSerializer,
                  "orders (key: symbol, client_order_id; status may only move forward, filled_qty only grow)")
    def post(self, request):
        return super().post(request)


class CandlesBulkView(BulkIngestView):
    operations = {"POST": "candles_bulk_create"}
    row_serializer = s.CandleRowSerializer
    ingest_function = staticmethod(ingest.candles_ingest)

    @_bulk_schema("candles_bulk_create", s.CandleRowSerializer, "candles (key: symbol, interval, open_time)")
    def post(self, request):
        return super().post(request)


# Runs ----------------------------------------------------------------------------------------------
# A broker that refuses, or accepts and never answers, is a 503 within about 1.3 s (0.5 + 0.25 + 0.5)
# instead of a request hung until gunicorn kills it. The send has its own connection with tighter
# timeouts than the workers' (settings: CELERY_BROKER_TRANSPORT_OPTIONS), and one retry, for a
# broker that dropped the connection or is restarting; a second would not fit in 2 s once stalled.
BROKER_PUBLISH_TRANSPORT_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
BROKER_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.25, "interval_step": 0, "interval_max": 0.25}


class RunsView(ApiGenericView):
    operations = {"GET": "runs_list", "POST": "runs_trigger"}
    error_statuses = {"POST": (503,)}
    queryset = RecomputeRun.objects.all()
    serializer_class = s.RunOutputSerializer
    filterset_class = RunFilter
    pagination_class = RunCursorPagination

    @extend_schema(operation_id="runs_list", tags=["runs"], responses=s.RunOutputSerializer(many=True),
                   summary="Recompute runs, newest first, cursor-paginated.")
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(operation_id="runs_trigger", tags=["runs"], request=None, filters=False,
                   responses={202: s.RunTriggerOutputSerializer},
                   summary="Queue a recompute of every active symbol now (503 when the broker is down).")
    def post(self, request):
        try:
            with tasks.recompute.app.connection_for_write(transport_options=BROKER_PUBLISH_TRANSPORT_OPTIONS) as broker:
                result = tasks.recompute.apply_async(kwargs={"trigger": "api"}, connection=broker, retry=True,
                                                     retry_policy=BROKER_RETRY_POLICY)
        except Exception:  # any broker failure: the run was not queued, the caller may retry
            logger.warning("could not queue a recompute", exc_info=True)
            raise ServiceUnavailable("The task broker is unreachable: the recompute was not queued.") from None
        return Response({"message": "Recompute queued.", "task_id": result.id or ""}, status=status.HTTP_202_ACCEPTED)


# Policy and overrides ------------------------------------------------------------------------------
def _policy_payload() -> dict:
    global_mode = GlobalPolicy.objects.filter(pk=1).values_list("mode", flat=True).first()
    return {
        "global_mode": global_mode or sizing_settings().default_mode,
        "symbols": [{"symbol": name, "mode": mode}
                    for name, mode in Symbol.objects.order_by("name").values_list("name", "mode")],
    }


class PolicyView(ApiView):
    operations = {"GET": "policy_read", "PUT": "policy_global_update", "PATCH": "policy_global_update"}

    @extend_schema(operation_id="policy_read", tags=["policy"], responses=s.PolicyOutputSerializer,
                   summary="The global mode and every symbol's own mode.")
    def get(self, request):
        return Response(s.PolicyOutputSerializer(_policy_payload()).data)

    @extend_schema(operation_id="policy_global_replace", tags=["policy"], request=s.GlobalModeInputSerializer,
                   responses=s.PolicyOutputSerializer, summary="Set the global mode (instant, kept in history).")
    def put(self, request):
        data = _valid(s.GlobalModeInputSerializer, request.data)
        _service_call(policy_service.global_mode_set, mode=data["mode"], user=request.user)
        return Response(s.PolicyOutputSerializer(_policy_payload()).data)

    @extend_schema(operation_id="policy_global_update", tags=["policy"], request=s.GlobalModeInputSerializer,
                   responses=s.PolicyOutputSerializer, summary="Set the global mode (same as PUT).")
    def patch(self, request):
        return self.put(request)


class PolicySymbolView(ApiView):
    operations = {"PATCH": "policy_symbol_update"}

    @extend_schema(operation_id="policy_symbol_update", tags=["policy"], parameters=[SYMBOL_PARAMETER],
                   request=s.SymbolModeInputSerializer, responses=s.SymbolModeSerializer,
                   summary='Set a symbol\'s own mode ("" follows the global mode again).')
    def patch(self, request, symbol: str):
        _known_symbol_or_404(symbol)
        data = _valid(s.SymbolModeInputSerializer, request.data)
        record = _service_call(policy_service.symbol_mode_set, symbol=symbol, mode=data["mode"], user=request.user)
        return Response(s.SymbolModeSerializer({"symbol": record.name, "mode": record.mode}).data)


def _active_expression(now):
    return ExpressionWrapper(
        Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now)),
        output_field=BooleanField(),
    )


class OverridesView(ApiGenericView):
    operations = {"GET": "overrides_list", "POST": "overrides_create"}
    serializer_class = s.OverrideOutputSerializer
    pagination_class = StrictLimitOffsetPagination

    def get_queryset(self):
        return (Override.objects.select_related("symbol", "author")
                .annotate(active=_active_expression(timezone.now()))
                .order_by("-active", "-created_at", "-id"))

    @extend_schema(operation_id="overrides_list", tags=["policy"], responses=s.OverrideOutputSerializer(many=True),
                   summary="Overrides, active ones first, then newest first.")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(operation_id="overrides_create", tags=["policy"], request=s.OverrideCreateInputSerializer,
                   responses={201: s.OverrideOutputSerializer},
                   examples=[OpenApiExample("Pin BTCUSDC", request_only=True, value={
                       "symbol": "BTCUSDC", "pinned_factor": 0.5, "reason": "exchange incident"})],
                   summary="Pin a symbol's factor and/or mode, with a reason and an optional expiry.")
    def post(self, request):
        data = _valid(s.OverrideCreateInputSerializer, request.data)
        override = _service_call(policy_service.override_create, author=request.user, **data)
        return Response(s.OverrideOutputSerializer(self.get_queryset().get(pk=override.pk)).data,
                        status=status.HTTP_201_CREATED)


class OverrideRevokeView(ApiView):
    operations = {"POST": "overrides_revoke"}

    @extend_schema(operation_id="overrides_revoke", tags=["policy"], parameters=[ID_PARAMETER], request=None,
                   responses=s.OverrideOutputSerializer, summary="Revoke an override (revoking twice is harmless).")
    def post(self, request, pk: int):
        if not Override.objects.filter(pk=pk).exists():
            raise NotFound(f"No override {pk}.")
        _service_call(policy_service.override_revoke, override_id=pk, user=request.user)
        override = (Override.objects.select_related("symbol", "author")
                    .annotate(active=_active_expression(timezone.now())).get(pk=pk))
        return Response(s.OverrideOutputSerializer(override).data)


# Schema and docs -----------------------------------------------------------------------------------
class JSONErrorsMixin:
    """These views render YAML or HTML; their errors are JSON like every other API error."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SchemaView(JSONErrorsMixin, SpectacularAPIView):
    operations = {"GET": "schema"}
    permission_classes = [RolePermission]  # spectacular's own default is AllowAny
    content_negotiation_class = DefaultContentNegotiation  # YAML, or JSON for Accept: application/json


try:
    import drf_spectacular_sidecar

    SWAGGER_ASSETS = Path(drf_spectacular_sidecar.__file__).parent / "static" / "drf_spectacular_sidecar"
except ImportError:  # not installed: Swagger UI would load from a CDN, which the Content-Security-Policy refuses
    SWAGGER_ASSETS = None


@method_decorator(csp_update({"style-src": ["'unsafe-inline'"]}), name="dispatch")  # the template's <style>
class DocsView(JSONErrorsMixin, SpectacularSwaggerSplitView):
    """Swagger UI; its start-up script is served by this view too (?script=), not inline, for the CSP."""

    operations = {"GET": "docs"}
    permission_classes = [RolePermission]
    url_name = "api-schema"

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # The start-up script (?script=) holds the session's CSRF token: no other site may load it.
        response["Cross-Origin-Resource-Policy"] = "same-origin"
        return response

    @staticmethod
    def _swagger_ui_resource(filename):
        if SWAGGER_ASSETS is None:
            return SpectacularSwaggerView._swagger_ui_resource(filename)
        return reverse("api-docs-asset", args=[f"swagger-ui-dist/{filename}"])

    @staticmethod
    def _swagger_ui_favicon():
        if SWAGGER_ASSETS is None:
            return SpectacularSwaggerView._swagger_ui_favicon()
        return reverse("api-docs-asset", args=["swagger-ui-dist/favicon-32x32.png"])


def docs_asset(request, path: str):
    """Swagger UI's own JS/CSS from the sidecar package: static, public, no data."""
    if SWAGGER_ASSETS is None:
        raise Http404("Swagger UI assets are not installed.")
    response = serve(request, path, document_root=str(SWAGGER_ASSETS))
    response["Cache-Control"] = "public, max-age=86400"
    return response
