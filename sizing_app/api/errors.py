"""Every API error as JSON: {"error": {"code", "message", "details"}}, from DRF views and from Django itself.

`exception_handler` is DRF's EXCEPTION_HANDLER; handler400/403/404/500 answer JSON for /api/ paths
(a URL that matches no view, a failure outside DRF) and leave other paths to Django's pages.
"""
from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status

from ..ledger.writer import ledger_unreachable
from ..sizing.errors import SizingUnavailable

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "payload_too_large"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A backing service is unavailable; try again shortly."
    default_code = "service_unavailable"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"

    def __init__(self, detail=None, code=None, *, details: dict | None = None):
        super().__init__(detail, code)
        self.details = details  # machine-readable facts beside the message (error.details)


class Refused(exceptions.ValidationError):
    """A 400 with its own error code (ValidationError's is "invalid"), e.g. unknown_symbol."""

    def __init__(self, detail, *, code: str):
        super().__init__(detail)
        self.error_code = code


def _translate(exc: Exception) -> Exception:
    """Django exceptions DRF does not know, as the API errors they mean."""
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, SuspiciousOperation):
        return exceptions.ParseError("The request was rejected as malformed.")
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, SizingUnavailable) or ledger_unreachable(exc):
        # The database is down or read-only: the client may retry; it must not read this as its own mistake.
        logger.warning("answering 503: %s", exc)
        if isinstance(exc, SizingUnavailable):
            return ServiceUnavailable("The ledger cannot record a decision now (its database is unreachable or "
                                      "read-only): nothing was sized or written. Retry shortly.")
        return ServiceUnavailable("The database is unreachable or read-only: nothing was written. Retry shortly.")
    return exc


def _code(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return getattr(exc, "error_code", "invalid")
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def _encodable(value):
    """Error details echo what was sent; a lone surrogate in them would make the JSON unencodable (a 500)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encodable(item) for item in value]
    return value


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": _encodable(message), "details": _encodable(details)}}


def exception_handler(exc, context):
    # Imported here: rest_framework.views reads the API settings on import, which name this module's parser.
    from rest_framework.views import exception_handler as drf_exception_handler

    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django logs it and handler500 answers JSON
    detail = exc.detail if isinstance(exc, exceptions.APIException) else None
    if isinstance(detail, list) and len(detail) == 1 and isinstance(detail[0], str):
        detail = detail[0]  # ValidationError("one message"): no field to name
    if isinstance(detail, str):
        message, details = str(detail), None
    else:
        message, details = "The request is invalid; see details.", response.data
    if isinstance(exc, exceptions.Throttled):
        details = {"retry_after": exc.wait}
    if isinstance(exc, Conflict) and exc.details is not None:
        details = exc.details
    if isinstance(exc, ServiceUnavailable):
        response["Retry-After"] = "1"
    response.data = error_body(_code(exc), message, details)
    return response


def _is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def handler400(request, exception=None):
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(error_body("payload_too_large", "Request body is too large."), status=413)
        return JsonResponse(error_body("bad_request", "The request is malformed."), status=400)
    return defaults.bad_request(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body("permission_denied", "You do not have permission to do this."), status=403)
    return defaults.permission_denied(request, exception)


def handler404(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body("not_found", f"No API endpoint or resource at {request.path_info!r}."),
                            status=404)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return JsonResponse(error_body("server_error", "Internal server error; it has been logged."), status=500)
    return defaults.server_error(request)
