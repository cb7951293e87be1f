"""Execution health: execution quality, market regime and the sizing in force, per symbol."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from ...selectors.health import compute_execution_health
from .. import serializers as s
from .base import SYMBOL_PARAMETER, ApiView, known_symbol_or_404, service_call


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
        known_symbol_or_404(symbol)
        health = service_call(compute_execution_health, symbol=symbol)
        return Response(s.SymbolHealthOutputSerializer(health).data)
