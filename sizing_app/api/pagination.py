"""Cursor pagination for the history lists: stable under inserts, opaque cursors, 400 for a bad one."""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class HistoryCursorPagination(CursorPagination):
    """Newest first. `ordering` ends with the primary key, so rows sharing a time keep one order."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = ("-id",)
    page_size_query_description = "Rows per page (1-1000, default 100)."

    def paginate_queryset(self, queryset, request, view=None):
        self._check_page_size(request)
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:
            raise ValidationError({"cursor": ["Invalid cursor."]}) from None
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            # A cursor decodes to a position the database cannot compare: it was not made by us.
            raise ValidationError({"cursor": ["Invalid cursor."]}) from None

    def _check_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"An integer from 1 to {self.max_page_size}."]})

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters


class SnapshotCursorPagination(HistoryCursorPagination):
    ordering = ("-as_of", "-id")


class DecisionCursorPagination(HistoryCursorPagination):
    ordering = ("-created_at", "-id")


class RunCursorPagination(HistoryCursorPagination):
    ordering = ("-id",)
