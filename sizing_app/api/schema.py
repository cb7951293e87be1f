"""OpenAPI generation: every operation documents its error responses with the one error shape.

Views list their own success responses with @extend_schema; ApiAutoSchema adds 400/401/403/429 to
all, 404 where the path names a resource, 413/415 where a body is sent, and any extra statuses a
view declares in `error_statuses`.
"""
from __future__ import annotations

import inspect
from http import HTTPStatus

from drf_spectacular.openapi import AutoSchema

BODY_METHODS = ("POST", "PUT", "PATCH")


class ApiAutoSchema(AutoSchema):
    def get_description(self) -> str:
        """The handler's or the view class's own docstring, never one inherited from our base classes.

        spectacular falls back along the view's MRO, and our mixins' docstrings (the Allow-header
        cache, the strict query check) are notes for maintainers, not documentation for callers.
        """
        handler = getattr(self.view, self.method.lower(), None)
        for doc in (getattr(handler, "__doc__", None), type(self.view).__dict__.get("__doc__")):
            if doc:
                return inspect.cleandoc(doc)
        return ""

    def _error_statuses(self) -> set[int]:
        # 400 everywhere: an unknown query parameter is refused on every operation.
        statuses = {400, 401, 403, 429}
        view = self.view
        if self.method in BODY_METHODS:
            statuses |= {413, 415}
        if "{" in self.path:
            statuses.add(404)
        statuses |= set(getattr(view, "error_statuses", {}).get(self.method, ()))
        return statuses

    def _get_response_bodies(self, direction="response"):
        from .serializers import ErrorSerializer

        responses = super()._get_response_bodies(direction)
        for status in sorted(self._error_statuses()):
            code = str(status)
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = HTTPStatus(status).phrase
                responses[code] = response
        return responses


def bulk_limits_hook(result, generator, request, public):
    """Document the bulk bodies' row limits (spectacular does not map a list serializer's length)."""
    from .views.base import BULK_OPERATIONS

    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or operation.get("operationId") not in BULK_OPERATIONS:
                continue
            limit = BULK_OPERATIONS[operation["operationId"]]
            for media in operation.get("requestBody", {}).get("content", {}).values():
                media["schema"].update({"minItems": 1, "maxItems": limit})
    return result
