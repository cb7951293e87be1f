"""Dashboard benchmark: how long the overview takes to render N symbols once their data arrived,
and how many API calls one refresh makes. Called by bench/run.py inside a set-up Django process.

    figures.update(bench_dashboard_render(symbols=500))

Needs Chromium at /usr/bin/chromium (Playwright drives it; Playwright's own browsers are never used).
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update"]
SYMBOL_PREFIX = "DASHB"
USERNAME = "bench-dashboard"
PAGE_LOADS = 3


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def dashboard_symbols_create(*, count: int, prefix: str = SYMBOL_PREFIX) -> list[str]:
    """`count` symbols with one snapshot each (varied factors, a few stale), created only if missing."""
    from django.utils import timezone

    from sizing_app.models import SizingSnapshot, Symbol
    from sizing_app.sizing.hot_state import hot_state

    names = [f"{prefix}{index:04d}USDT" for index in range(count)]
    existing = set(Symbol.objects.filter(name__in=names).values_list("name", flat=True))
    missing = [name for name in names if name not in existing]
    if missing:
        now = timezone.now()
        created = Symbol.objects.bulk_create([Symbol(name=name) for name in missing])
        snapshots = []
        for symbol in created:
            index = int(symbol.name[len(prefix):len(prefix) + 4])
            factor = 0.25 + (index * 37 % 176) / 100  # spread over the clamp [0.25, 2.0]
            snapshots.append(SizingSnapshot(
                symbol=symbol, as_of=now - timedelta(hours=6 if index % 17 == 0 else 0), computed_at=now,
                size_factor=factor, raw_size_factor=factor, score=round((index * 53 % 200) / 100 - 1.0, 3),
                sharpe_7d=None if index % 11 == 0 else (index * 29 % 80) / 10 - 4.0,
                sharpe_multiplier=1.0 + (index % 9 - 4) / 10, atr_regime_ratio=0.5 + (index * 7 % 20) / 10,
                regime_multiplier=1.0, status=SizingSnapshot.Status.OK,
            ))
        SizingSnapshot.objects.bulk_create(snapshots, batch_size=500)
        hot_state.invalidate()
    return names


def dashboard_user_create(*, username: str = USERNAME, password: str) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = True  # people log in through the admin login page
    user.save()
    user.groups.set([Group.objects.get(name="dashboard")])


@contextmanager
def live_server():
    """Django's LiveServerThread on 127.0.0.1 (a free port), serving static files from the finders."""
    from django.conf import settings
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test import override_settings
    from django.test.testcases import LiveServerThread

    # No collectstatic in a bench: plain static names, served from the finders (as pytest-django does).
    storages = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    with override_settings(STORAGES={**settings.STORAGES, **storages}):
        thread = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        try:
            yield f"http://127.0.0.1:{thread.port}"
        finally:
            thread.terminate()


def _measure(base_url: str, password: str, symbols: int) -> dict:
    from playwright.sync_api import sync_playwright

    renders, builds, rerenders, calls = [], [], [], []
    health_fetch = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(30_000)
            page = context.new_page()
            page.goto(f"{base_url}/admin/login/?next=/dashboard/")
            page.fill("#id_username", USERNAME)
            page.fill("#id_password", password)
            page.click("input[type=submit]")
            page.wait_for_url("**/dashboard/")
            api_requests: list[str] = []
            page.on("request", lambda request: api_requests.append(request.url) if "/api/v1/" in request.url else None)
            for _ in range(PAGE_LOADS):
                page.goto(f"{base_url}/dashboard/?refresh=1")
                page.wait_for_function(
                    "() => window.__dashboardRefreshes >= 1 && window.__dashboardRenderMs !== undefined")
                renders.append(page.evaluate("window.__dashboardRenderMs"))
                builds.append(page.evaluate("window.__dashboardBuildMs"))
                shown = page.evaluate("window.__dashboardRenderedSymbols")
                if shown != symbols:
                    raise RuntimeError(f"the dashboard rendered {shown} tiles, expected {symbols}")
                health_fetch.append(page.evaluate(
                    "performance.getEntriesByType('resource').filter(e => e.name.includes('/execution-health/'))"
                    ".map(e => e.duration).pop()"))
                # The next refreshes update the tiles in place.
                before = len(api_requests)
                page.wait_for_function("() => window.__dashboardRefreshes >= 3")
                rerenders.append(page.evaluate("window.__dashboardRenderMs"))
                calls.append(page.evaluate("window.__dashboardApiCalls"))
                assert len(api_requests) > before
            context.close()
        finally:
            browser.close()
    return {
        "dashboard_symbols": symbols,
        "dashboard_render_ms": round(statistics.median(renders), 1),
        "dashboard_render_ms_max": round(max(renders), 1),
        "dashboard_build_ms": round(statistics.median(builds), 1),
        "dashboard_rerender_ms": round(statistics.median(rerenders), 1),
        "dashboard_api_calls_per_refresh": max(calls),
        "dashboard_health_fetch_ms": round(statistics.median(health_fetch), 1),
    }


def bench_dashboard_render(symbols: int = 500) -> dict:
    """{"dashboard_symbols", "dashboard_render_ms", "dashboard_api_calls_per_refresh", ...}, or {} without Chromium.

    Render time runs from the moment the refresh's API answers are parsed to the end of the DOM
    build plus one forced layout (window.__dashboardRenderMs), median of a few page loads.
    """
    if not CHROMIUM.exists():
        log(f"dashboard bench skipped: {CHROMIUM} is not installed")
        return {"dashboard_note": f"skipped: {CHROMIUM} not installed"}
    import secrets

    started = time.perf_counter()
    dashboard_symbols_create(count=symbols)
    password = secrets.token_urlsafe(16)
    dashboard_user_create(password=password)
    from sizing_app.models import Symbol

    active = Symbol.objects.filter(is_active=True).count()
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop runs in this thread
    try:
        with live_server() as base_url:
            figures = _measure(base_url, password, active)
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
    log(f"dashboard: {active} symbols rendered in {figures['dashboard_render_ms']} ms "
        f"({figures['dashboard_api_calls_per_refresh']} API calls per refresh), "
        f"bench took {time.perf_counter() - started:.1f} s")
    return figures
