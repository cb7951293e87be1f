"""Routes of the Execution Health Overview dashboard (included at /dashboard/ by project.urls)."""
from django.urls import path, re_path

from . import views

app_name = "dashboard"
urlpatterns = [
    path("", views.overview, name="overview"),
    # Symbol names are upper-case letters and digits (models.SYMBOL_PATTERN); anything else is a 404.
    re_path(r"^(?P<symbol>[A-Z0-9]{2,32})/$", views.symbol_detail, name="symbol_detail"),
]
