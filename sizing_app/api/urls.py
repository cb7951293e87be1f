"""Routes of /api/v1/ (included by project.urls)."""
from django.urls import path, re_path, register_converter

from .views import decisions, docs, factors, health, policy, runs, telemetry


class Id64Converter:
    """A positive id that fits a 64-bit column: longer numbers 404 instead of overflowing the database."""

    regex = "[0-9]{1,18}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return str(value)


register_converter(Id64Converter, "id64")

urlpatterns = [
    path("symbols/", factors.SymbolListView.as_view(), name="api-symbols"),
    path("factors/latest/", factors.LatestFactorListView.as_view(), name="api-factors-latest"),
    path("factors/latest/<str:symbol>/", factors.LatestFactorDetailView.as_view(), name="api-factor-latest"),
    path("factors/history/", factors.FactorHistoryView.as_view(), name="api-factors-history"),
    path("decisions/", decisions.DecisionListView.as_view(), name="api-decisions"),
    path("decisions/<id64:pk>/", decisions.DecisionDetailView.as_view(), name="api-decision"),
    path("size/", decisions.SizeView.as_view(), name="api-size"),
    path("size/batch/", decisions.SizeBatchView.as_view(), name="api-size-batch"),
    path("execution-health/", health.ExecutionHealthListView.as_view(), name="api-execution-health"),
    path("execution-health/<str:symbol>/", health.ExecutionHealthDetailView.as_view(),
         name="api-execution-health-symbol"),
    path("fills/", telemetry.FillsBulkView.as_view(), name="api-fills"),
    path("orders/", telemetry.OrdersBulkView.as_view(), name="api-orders"),
    path("candles/", telemetry.CandlesBulkView.as_view(), name="api-candles"),
    path("runs/", runs.RunsView.as_view(), name="api-runs"),
    path("policy/", policy.PolicyView.as_view(), name="api-policy"),
    path("policy/symbols/<str:symbol>/", policy.PolicySymbolView.as_view(), name="api-policy-symbol"),
    path("overrides/", policy.OverridesView.as_view(), name="api-overrides"),
    path("overrides/<id64:pk>/revoke/", policy.OverrideRevokeView.as_view(), name="api-override-revoke"),
    path("schema/", docs.SchemaView.as_view(), name="api-schema"),
    path("docs/", docs.DocsView.as_view(), name="api-docs"),
    re_path(r"^docs/assets/(?P<path>swagger-ui-dist/[A-Za-z0-9_.-]+)$", docs.docs_asset, name="api-docs-asset"),
]
