"""Telemetry intake: bulk posts of fills, orders and candles, all rows or none."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from ...telemetry import ingest
from .. import serializers as s
from ..errors import error_body
from .base import ApiView


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
