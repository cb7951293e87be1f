"""Policy over the API: the global and per-symbol modes, overrides and their revocation."""
from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from ...models import Override, Symbol
from ...policy import services as policy_service
from ...policy.resolution import global_mode
from .. import serializers as s
from ..pagination import StrictLimitOffsetPagination
from .base import ID_PARAMETER, SYMBOL_PARAMETER, ApiGenericView, ApiView, known_symbol_or_404, service_call, valid


# Policy and overrides ------------------------------------------------------------------------------
def _policy_payload() -> dict:
    return {
        "global_mode": global_mode(),
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
        data = valid(s.GlobalModeInputSerializer, request.data)
        service_call(policy_service.global_mode_set, mode=data["mode"], user=request.user)
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
        known_symbol_or_404(symbol)
        data = valid(s.SymbolModeInputSerializer, request.data)
        record = service_call(policy_service.symbol_mode_set, symbol=symbol, mode=data["mode"], user=request.user)
        return Response(s.SymbolModeSerializer({"symbol": record.name, "mode": record.mode}).data)


class OverridesView(ApiGenericView):
    operations = {"GET": "overrides_list", "POST": "overrides_create"}
    serializer_class = s.OverrideOutputSerializer
    pagination_class = StrictLimitOffsetPagination

    def get_queryset(self):
        return (Override.objects.select_related("symbol", "author")
                .with_active(timezone.now())
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
        data = valid(s.OverrideCreateInputSerializer, request.data)
        override = service_call(policy_service.override_create, author=request.user, **data)
        return Response(s.OverrideOutputSerializer(self.get_queryset().get(pk=override.pk)).data,
                        status=status.HTTP_201_CREATED)


class OverrideRevokeView(ApiView):
    operations = {"POST": "overrides_revoke"}

    @extend_schema(operation_id="overrides_revoke", tags=["policy"], parameters=[ID_PARAMETER], request=None,
                   responses=s.OverrideOutputSerializer, summary="Revoke an override (revoking twice is harmless).")
    def post(self, request, pk: int):
        if not Override.objects.filter(pk=pk).exists():
            raise NotFound(f"No override {pk}.")
        service_call(policy_service.override_revoke, override_id=pk, user=request.user)
        override = (Override.objects.select_related("symbol", "author")
                    .with_active(timezone.now()).get(pk=pk))
        return Response(s.OverrideOutputSerializer(override).data)
