"""URL routes: admin for compliance and risk, the REST API, the dashboard."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("sizing_app.api.urls")),
    path("dashboard/", include("sizing_app.dashboard.urls")),
]

# /api/ paths answer JSON even when no view matched or something failed outside DRF.
handler400 = "sizing_app.api.errors.handler400"
handler403 = "sizing_app.api.errors.handler403"
handler404 = "sizing_app.api.errors.handler404"
handler500 = "sizing_app.api.errors.handler500"
