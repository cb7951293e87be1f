"""URL routes: admin for compliance and risk, the REST API, the dashboard."""
from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
