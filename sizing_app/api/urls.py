"""Routes of /api/v1/ (included by project.urls)."""
from django.urls import path, re_path, register_converter

from . import views


class Id64Converter:
    """A positive id that fits a 64-bit column: longer numbers 404 instead of overflowing the database."""

    regex = "[0-9]{1,18}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return str(value)


register_converter(Id64Converter, "id64")

urlpatterns = [
    path("symbols/", views.SymbolListView.as_view(), name="api-symbols"),
    path("factors/latest/", views.LatestFactorListView.as_view(), name="api-factors-latest"),
    path("factors/latest/<str:symbol>/", views.LatestFactorDetailView.as_view(), name="api-factor-latest"),
    path("factors/history/", views.FactorHistoryView.as_view(), name="api-factors-history"),
    path("decisions/", views.DecisionListView.as_view(), name="api-decisions"),
    path("decisions/<id64:pk>/", views.DecisionDetailView.as_view(), name="api-decision"),
    path("size/", views.SizeView.as_view(), name="api-size"),
    path("size/batch/", views.SizeBatchView.as_view(), name="api-size-batch"),
    path("execution-health/", views.ExecutionHealthListView.as_view(), name="api-execution-health"),
    path("execution-health/<str:symbol>/", views.ExecutionHealthDetailView.as_view(),
         name="api-execution-health-symbol"),
    path("fills/", views.FillsBulkView.as_view(), name="api-fills"),
    path("orders/", views.OrdersBulkView.as_view(), name="api-orders"),
    path("candles/", views.CandlesBulkView.as_view(), name="api-candles"),
    path("runs/", views.RunsView.as_view(), name="api-runs"),
    path("policy/", views.PolicyView.as_view(), name="api-policy"),
    path("policy/symbols/<str:symbol>/", views.PolicySymbolView.as_view(), name="api-policy-symbol"),
    path("overrides/", views.OverridesView.as_view(), name="api-overrides"),
    path("overrides/<id64:pk>/revoke/", views.OverrideRevokeView.as_view(), name="api-override-revoke"),
    path("schema/", views.SchemaView.as_view(), name="api-schema"),
    path("docs/", views.DocsView.as_view(), name="api-docs"),
    re_path(r"^docs/assets/(?P<path>swagger-ui-dist/[A-Za-z0-9_.-]+)$", views.docs_asset, name="api-docs-asset"),
]
