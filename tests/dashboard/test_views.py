"""The dashboard pages as the server sends them: who may open them, and that they load only our own files.

The data itself arrives in the browser from the REST API; tests/browser/test_dashboard_browser.py drives that.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import resolve, reverse

from sizing_app.dashboard import views as dashboard_views
from tests.factories import make_snapshot, make_symbol

STATIC_DASHBOARD = Path(__file__).resolve().parents[1] / "static" / "dashboard"
OVERVIEW = "/dashboard/"
DETAIL = "/dashboard/BTCUSDC/"


@pytest.fixture
def btc():
    symbol = make_symbol("BTCUSDC")
    make_snapshot(symbol, size_factor=1.25)
    return symbol


def person(username: str, *, role: str | None = None, superuser: bool = False):
    user = get_user_model().objects.create_user(username=username, is_superuser=superuser)
    if role:
        user.groups.set([Group.objects.get(name=role)])
    return user


class AssetCollector(HTMLParser):
    """Every src/href in the page, and the script and stylesheet URLs."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for name in ("src", "href", "action"):
            if values.get(name):
                self.urls.append(values[name])
        if tag == "script":
            self._in_script = True
            if values.get("src"):
                self.scripts.append(values["src"])
        if tag == "link" and values.get("rel") == "stylesheet":
            self.stylesheets.append(values["href"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1


def assets(response) -> AssetCollector:
    collector = AssetCollector()
    collector.feed(response.content.decode())
    return collector


# Access ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["dashboard", "risk", "compliance"])
@pytest.mark.parametrize("url", [OVERVIEW, DETAIL])
def test_people_in_a_dashboard_role_open_both_pages(client, btc, role, url):
    client.force_login(person("someone", role=role))
    response = client.get(url)
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]  # per-user page: never from a shared cache


@pytest.mark.parametrize("url", [OVERVIEW, DETAIL])
def test_superusers_open_both_pages(client, btc, url):
    client.force_login(person("root", superuser=True))
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", [OVERVIEW, DETAIL])
def test_engine_accounts_and_role_less_users_are_refused(client, btc, url):
    client.force_login(person("engine-1", role="engine"))
    assert client.get(url).status_code == 403
    client.force_login(person("nobody"))
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", [OVERVIEW, DETAIL])
def test_anonymous_people_are_sent_to_the_admin_login(client, btc, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={url}"


@pytest.mark.parametrize("url", ["/dashboard/NOPEUSDT/", "/dashboard/btcusdc/", "/dashboard/B/"])
def test_unknown_or_malformed_symbols_are_not_found(client, btc, url):
    client.force_login(person("dash", role="dashboard"))
    assert client.get(url).status_code == 404


def test_an_engine_account_gets_no_detail_page_even_for_an_unknown_symbol(client):
    # The role check comes first: a 404 would tell an engine token which symbols exist.
    client.force_login(person("engine-1", role="engine"))
    assert client.get("/dashboard/NOPEUSDT/").status_code == 403


# Assets: our own static files only ---------------------------------------------------------------
@pytest.mark.parametrize("url", [OVERVIEW, DETAIL])
def test_pages_load_only_same_origin_static_files(client, btc, url):
    client.force_login(person("dash", role="dashboard"))
    page = assets(client.get(url))
    external = [u for u in page.urls if re.match(r"^(https?:)?//", u, re.IGNORECASE)]
    assert external == []
    assert page.inline_scripts == 0  # configuration travels in data attributes
    assert page.stylesheets == ["/static/dashboard/dashboard.css"]
    assert "/static/dashboard/common.js" in page.scripts
    for asset in page.scripts + page.stylesheets:
        relative = asset.removeprefix("/static/")
        assert finders.find(relative), f"{asset} is not a static file"


def test_overview_loads_its_script_and_detail_loads_the_vendored_chart_library(client, btc):
    client.force_login(person("dash", role="dashboard"))
    overview = assets(client.get(OVERVIEW))
    assert overview.scripts == ["/static/dashboard/common.js", "/static/dashboard/overview.js"]
    detail = assets(client.get(DETAIL))
    assert detail.scripts == [
        "/static/vendor/chartjs/chart.umd.min.js", "/static/dashboard/common.js", "/static/dashboard/detail.js",
    ]
    chart_js = Path(finders.find("vendor/chartjs/chart.umd.min.js")).read_text(encoding="utf-8")
    assert chart_js.startswith("/*!\n * Chart.js v4.5.1")


def test_scripts_never_write_html_from_strings():
    # Symbols, order refs and failure reasons are user input: the pages set text, never markup.
    for script in STATIC_DASHBOARD.glob("*.js"):
        source = script.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{script.name} uses {sink}"


# Configuration handed to the scripts --------------------------------------------------------------
def data_attributes(response) -> dict[str, str]:
    main = re.search(r"<main\b([^>]*)>", response.content.decode(), re.DOTALL).group(1)
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', main))


def test_overview_hands_the_api_urls_and_knobs_to_its_script(client, btc, settings):
    settings.SIZING_MAX_AGE_SECONDS = 1200
    client.force_login(person("dash", role="dashboard"))
    data = data_attributes(client.get(OVERVIEW))
    assert data["page"] == "overview"
    assert data["refresh-seconds"] == str(dashboard_views.DEFAULT_REFRESH_SECONDS)
    assert data["max-age-seconds"] == "1200"
    assert resolve(data["api-health"]).url_name == "api-execution-health"
    assert resolve(data["api-runs"]).url_name == "api-runs"
    assert resolve(data["api-policy"]).url_name == "api-policy"
    assert resolve(data["api-overrides"]).url_name == "api-overrides"
    assert data["detail-url-template"].replace("SYMBOL", "BTCUSDC") == DETAIL


def test_detail_hands_the_symbol_api_urls_to_its_script(client, btc):
    client.force_login(person("dash", role="dashboard"))
    data = data_attributes(client.get(DETAIL + "?window=30d"))
    assert data["symbol"] == "BTCUSDC"
    assert data["window"] == "30d"
    assert resolve(data["api-health"]).kwargs == {"symbol": "BTCUSDC"}
    assert resolve(data["api-latest"]).url_name == "api-factor-latest"
    assert resolve(data["api-history"]).url_name == "api-factors-history"
    assert resolve(data["api-decisions"]).url_name == "api-decisions"
    assert data_attributes(client.get(DETAIL + "?window=1y"))["window"] == "7d"


@pytest.mark.parametrize(("query", "seconds"), [("", "10"), ("?refresh=1", "1"), ("?refresh=0", "1"),
                                                 ("?refresh=99999", "3600"), ("?refresh=abc", "10"),
                                                 ("?refresh=-5", "10")])
def test_refresh_interval_is_bounded(client, btc, query, seconds):
    client.force_login(person("dash", role="dashboard"))
    assert data_attributes(client.get(OVERVIEW + query))["refresh-seconds"] == seconds


def test_refresh_interval_default_comes_from_settings(client, btc, settings):
    settings.DASHBOARD_REFRESH_SECONDS = 30
    client.force_login(person("dash", role="dashboard"))
    assert data_attributes(client.get(OVERVIEW))["refresh-seconds"] == "30"


def test_page_is_semantic_and_labelled(client, btc):
    client.force_login(person("dash", role="dashboard"))
    html = client.get(OVERVIEW).content.decode()
    assert '<html lang="en">' in html
    assert 'name="viewport"' in html
    for landmark in ("<header", "<main", "<nav", "<footer"):
        assert landmark in html
    assert 'aria-live="polite"' in html
    assert 'role="alert"' in html
    assert "<h1>Execution Health Overview</h1>" in html
    assert html.count("<legend>") == 1 and html.count('<span class="field__label">') == 3


# Deployment --------------------------------------------------------------------------------------
def test_collectstatic_with_the_production_manifest_storage_accepts_the_dashboard_assets(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}
    call_command("collectstatic", interactive=False, verbosity=0)
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    for name in ("dashboard/dashboard.css", "dashboard/common.js", "dashboard/overview.js", "dashboard/detail.js",
                 "vendor/chartjs/chart.umd.min.js"):
        assert name in manifest
