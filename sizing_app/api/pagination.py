"""Cursor pagination for the history lists: stable under inserts, opaque cursors, 400 for a bad one."""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, LimitOffsetPagination

MAX_OFFSET = 1_000_000


def _bounded_int(request, name: str, low: int, high: int) -> None:
    raw = request.query_params.get(name)
    if raw is not None and (not raw.isdigit() or not low <= int(raw) <= high):
        raise ValidationError({name: [f"An integer from {low} to {high}."]})


def _bound_schema(parameters: list[dict], bounds: dict[str, tuple[int, int]]) -> list[dict]:
    for parameter in parameters:
        if parameter["name"] in bounds:
            low, high = bounds[parameter["name"]]
            parameter["schema"] = {"type": "integer", "minimum": low, "maximum": high}
    return parameters


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
        # DRF falls back to the default page size on a bad value; a client should hear about it.
        _bounded_int(request, self.page_size_query_param, 1, self.max_page_size)

    def get_schema_operation_parameters(self, view):
        return _bound_schema(super().get_schema_operation_parameters(view),
                             {self.page_size_query_param: (1, self.max_page_size)})


class SnapshotCursorPagination(HistoryCursorPagination):
    ordering = ("-as_of", "-id")


class DecisionCursorPagination(HistoryCursorPagination):
    ordering = ("-created_at", "-id")


class RunCursorPagination(HistoryCursorPagination):
    ordering = ("-id",)


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """limit/offset pages for short lists whose order is not a column (overrides: active first)."""

    default_limit = 100
    max_limit = 500

    def paginate_queryset(self, queryset, request, view=None):
        _bounded_int(request, self.limit_query_param, 1, self.max_limit)
        _bounded_int(request, self.offset_query_param, 0, MAX_OFFSET)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        return _bound_schema(super().get_schema_operation_parameters(view), {
            self.limit_query_param: (1, self.max_limit), self.offset_query_param: (0, MAX_OFFSET)})
