"""The OpenAPI schema and Swagger UI, served with JSON errors and the sidecar's own assets."""
from __future__ import annotations

from pathlib import Path

from csp.decorators import csp_update
from django.http import Http404
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView, SpectacularSwaggerView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer

from ..permissions import RolePermission


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
