"""The ledger over the API: decisions, newest first, and one decision; sizing orders (POST size, batch)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from ...models import SizingDecision
from ...sizing import service as sizing_service
from ...sizing.errors import OrderRefConflict, UnknownSymbol
from .. import serializers as s
from ..errors import Conflict, Refused
from ..filters import DecisionFilter
from ..pagination import DecisionCursorPagination
from .base import ID_PARAMETER, SIZE_EXAMPLE, ApiGenericView, ApiView, caller_of, valid


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
        raise Refused(unknown_detail(exc), code="unknown_symbol") from None
    except OrderRefConflict as exc:
        raise Conflict(str(exc), code="order_ref_conflict", details={
            "order_ref": exc.order_ref, "decision_id": exc.decision_id, "journal_ref": exc.journal_ref,
        }) from None
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
        data = valid(s.SizeInputSerializer, request.data)
        decision = _sized(
            sizing_service.size_decide, symbol=data["symbol"], gross_target=data["gross_target"],
            order_ref=data["order_ref"], caller=caller_of(request), neutral_if_unknown=data["neutral_if_unknown"],
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
        data = valid(s.SizeBatchInputSerializer, request.data)
        orders = data["orders"]
        decisions = _sized(
            sizing_service.size_decide_batch,
            orders=[(order["symbol"], order["gross_target"], order["order_ref"]) for order in orders],
            caller=caller_of(request), neutral_if_unknown=data["neutral_if_unknown"], journal=False,
            unknown_detail=lambda exc: {"orders": [{"symbol": [str(exc)]} if order["symbol"] == exc.symbol else {}
                                                   for order in orders]},
        )
        every_one_replayed = all(decision.replayed for decision in decisions)
        return Response(s.DecisionOutputSerializer(decisions, many=True).data,
                        status=status.HTTP_200_OK if every_one_replayed else status.HTTP_201_CREATED)
