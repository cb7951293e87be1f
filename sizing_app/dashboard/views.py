"""Dashboard pages: HTML shells; the data comes from the REST API in the browser.

Open to people in the dashboard, risk or compliance role (and superusers); engine accounts get 403.
"""
from __future__ import annotations

import re
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from ..api.permissions import user_roles
from ..conf import sizing_settings
from ..models import SYMBOL_PATTERN, Symbol
from ..roles import COMPLIANCE, DASHBOARD, RISK

DASHBOARD_ROLES = frozenset({DASHBOARD, RISK, COMPLIANCE})
DEFAULT_REFRESH_SECONDS = 10
MIN_REFRESH_SECONDS, MAX_REFRESH_SECONDS = 1, 3600
HISTORY_WINDOWS = ("24h", "7d", "30d")
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)


def may_view_dashboard(user) -> bool:
    return user.is_authenticated and (user.is_superuser or not DASHBOARD_ROLES.isdisjoint(user_roles(user)))


def dashboard_view(view):
    """Login required (anonymous people go to the admin login), then a dashboard role (else 403)."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not may_view_dashboard(request.user):
            raise PermissionDenied("The dashboard is for the dashboard, risk and compliance roles.")
        return view(request, *args, **kwargs)

    return login_required(never_cache(guarded))


def refresh_seconds(request) -> int:
    """?refresh=N (seconds, 1..3600) lets a wall screen or a test pick its pace; else the setting."""
    default = int(getattr(settings, "DASHBOARD_REFRESH_SECONDS", DEFAULT_REFRESH_SECONDS))
    raw = request.GET.get("refresh", "")
    if raw.isdigit():
        return min(max(int(raw), MIN_REFRESH_SECONDS), MAX_REFRESH_SECONDS)
    return default


def _common_context(request) -> dict:
    config = sizing_settings()
    return {
        "refresh_seconds": refresh_seconds(request),
        "max_age_seconds": config.max_age_seconds,
        "recompute_seconds": config.recompute_seconds,
        "api": {
            "health": reverse("api-execution-health"),
            "latest": reverse("api-factors-latest"),
            "runs": reverse("api-runs"),
            "policy": reverse("api-policy"),
            "overrides": reverse("api-overrides"),
        },
    }


@dashboard_view
def overview(request):
    context = _common_context(request)
    context["detail_url_template"] = reverse("dashboard:symbol_detail", args=["SYMBOL"])
    return render(request, "dashboard/overview.html", context)


@dashboard_view
def symbol_detail(request, symbol: str):
    if not _SYMBOL_RE.fullmatch(symbol) or not Symbol.objects.filter(name=symbol).exists():
        raise Http404(f"Unknown symbol {symbol!r}.")
    context = _common_context(request)
    window = request.GET.get("window", "")
    context.update({
        "symbol": symbol,
        "window": window if window in HISTORY_WINDOWS else "7d",
        "windows": HISTORY_WINDOWS,
    })
    context["api"].update({
        "symbol_health": reverse("api-execution-health-symbol", args=[symbol]),
        "symbol_latest": reverse("api-factor-latest", args=[symbol]),
        "history": reverse("api-factors-history"),
        "decisions": reverse("api-decisions"),
    })
    return render(request, "dashboard/symbol_detail.html", context)
