"""Admin for compliance and risk: the read-only ledger and its breakdown page, the filtered CSV export,
policy edits through the services, and what each role may do.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from sizing_app.admin import exports
from sizing_app.models import GlobalPolicy, Override, RecomputeRun, SizingDecision, SizingSnapshot, Symbol
from sizing_app.signal_generator import size_decide
from sizing_app.sizing.hot_state import hot_state
from tests.factories import make_snapshot, make_symbol

PASSWORD = "admin-test-password-1"
XSS_ORDER_REF = "<script>alert(1)</script>"
XSS_CALLER = '"><img src=x onerror=alert(2)>'
COMPONENTS = {
    # Stored out of the scoring order: the page lists them in COMPONENTS order.
    "fill_rate": {"value": None, "sample": 0, "confidence": 0.0, "weight": 0.5, "contribution": 0.0},
    "sharpe_7d": {"value": 2.5, "sample": 7, "confidence": 1.0, "weight": 1.0, "contribution": 0.8482836399575129},
    "slippage_bps": {"value": -5.0, "sample": 12, "confidence": 0.4, "weight": 1.0, "contribution": 0.2427},
}

DECISION_HEADER = [
    "id", "created_at", "symbol", "order_ref", "caller", "gross_target", "inverse_vol_size", "regime_multiplier",
    "sharpe_multiplier", "intel_factor", "applied_factor", "final_size", "mode", "stale", "fallback_reason",
    "score", "snapshot_id", "override_id", "seq", "prev_hash", "row_hash",
]


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:sizing_app_{model._meta.model_name}_{view}", args=args)


def role_user(username: str, role: str, *, superuser: bool = False):
    """A person in a role, made the way operators make them: manage.py create_api_user."""
    arguments = [username, "--role", role, "--password", PASSWORD] + (["--superuser"] if superuser else [])
    call_command("create_api_user", *arguments, stdout=io.StringIO(), stderr=io.StringIO())
    return get_user_model().objects.get(username=username)


def test_a_generated_password_starting_with_a_dash_is_set_as_dev_run_passes_it():
    """dev.py run generates the demo admin's password (token_urlsafe: 1 in 64 start with "-")."""
    import ast
    from pathlib import Path

    password = "-BakzZzQ7H2AtEJn"
    call_command("create_api_user", "admin", "--role", "risk", "--superuser", f"--password={password}",
                 stdout=io.StringIO(), stderr=io.StringIO())
    assert get_user_model().objects.get(username="admin").check_password(password)
    dev_run = ast.parse((Path(__file__).resolve().parents[2] / "dev.py").read_text())
    calls = [node for node in ast.walk(dev_run)
             if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "manage"
             and node.args and getattr(node.args[0], "value", None) == "create_api_user"]
    assert calls and all(not (isinstance(arg, ast.Constant) and arg.value == "--password")
                         for call in calls for arg in call.args)  # as one "--password=..." argument


@dataclass
class Ledger:
    btc: Symbol
    btc_snapshot: SizingSnapshot
    eth_snapshot: SizingSnapshot
    ord_1: SizingDecision
    ord_2: SizingDecision
    ord_3: SizingDecision
    xss: SizingDecision
    ord_10: SizingDecision
    no_snapshot: SizingDecision


def build_ledger() -> Ledger:
    """Three symbols with fresh snapshots and six decisions made through the real sizing path.

    BTCUSDC's multipliers are binary fractions so every step of its breakdown is exact:
    1000 -> 750 (x0.75) -> 937.5 (x1.25) -> 1406.25 (x1.5) -> 2460.9375 (x1.75).
    """
    now = timezone.now()
    btc = make_symbol("BTCUSDC")
    btc_snapshot = make_snapshot(btc, as_of=now, size_factor=1.75, inverse_vol_multiplier=0.75,
                                 regime_multiplier=1.25, sharpe_multiplier=1.5, score=0.7, components=COMPONENTS)
    eth_snapshot = make_snapshot(make_symbol("ETHUSDC", mode="shadow"), as_of=now, size_factor=0.5, score=-0.9)
    make_snapshot(make_symbol("SOLUSDC"), as_of=now, size_factor=0.5, score=-0.9)
    make_symbol("XRPUSDC")  # registered, never recomputed
    return Ledger(
        btc=btc, btc_snapshot=btc_snapshot, eth_snapshot=eth_snapshot,
        ord_1=size_decide("BTCUSDC", 1000.0, order_ref="ord-1", caller="engine-a"),
        ord_2=size_decide("BTCUSDC", 200.0, order_ref="ord-2", caller="engine-b"),
        ord_3=size_decide("ETHUSDC", 1000.0, order_ref="ord-3", caller="engine-a"),
        xss=size_decide("SOLUSDC", 10.0, order_ref=XSS_ORDER_REF, caller=XSS_CALLER),
        ord_10=size_decide("BTCUSDC", 3.0, order_ref="ord-10", caller="engine-a"),
        no_snapshot=size_decide("XRPUSDC", 50.0, order_ref="ord-4", caller="engine-b"),
    )


@pytest.fixture(autouse=True)
def admin_test_settings(settings):
    # Tests run without collectstatic's manifest; admin pages link assets by their plain names.
    settings.STORAGES = {
        **settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # create_api_user hashes a password per user; the production hasher would dominate the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def ledger() -> Ledger:
    return build_ledger()


@pytest.fixture
def compliance(client):
    client.force_login(role_user("carol", "compliance"))
    return client


@pytest.fixture
def superuser(client):
    client.force_login(role_user("root", "risk", superuser=True))
    return client


@pytest.fixture
def risk_user():
    return role_user("rita", "risk")


@pytest.fixture
def risk(client, risk_user):
    client.force_login(risk_user)
    return client


@pytest.fixture
def dashboard(client):
    client.force_login(role_user("dana", "dashboard"))
    return client


def listed(response) -> list:
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def order_refs(response) -> set[str]:
    return {decision.order_ref for decision in listed(response)}


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def assert_no_write_controls(html: str, *, content_only: bool = False) -> None:
    if content_only:  # leave out the navigation sidebar, which lists other models' "Add" links
        html = html[html.index('<div id="content"'):]
    for marker in ('class="addlink"', 'name="_save"', 'name="_continue"', 'name="_addanother"',
                   'class="deletelink"', "delete_selected", 'name="action"'):
        assert marker not in html, marker


# --- the ledger changelist: columns, filters, search --------------------------------------------

def test_changelist_lists_what_a_reviewer_scans(compliance, ledger):
    response = compliance.get(admin_url(SizingDecision, "changelist"))
    html = response.content.decode()
    assert len(listed(response)) == 6
    for text in ("2460.9375", "1.75x", "0.50x", "engine-b", "no_snapshot", "shadow", "ord-10"):
        assert text in html
    # The ledger is never counted in full on each page.
    assert response.context["cl"].full_result_count is None


def test_symbol_filter_lists_the_distinct_symbols(compliance, ledger):
    response = compliance.get(admin_url(SizingDecision, "changelist"))
    symbol_filter = next(spec for spec in response.context["cl"].filter_specs if spec.title == "symbol")
    assert list(symbol_filter.lookup_choices) == ["BTCUSDC", "ETHUSDC", "SOLUSDC", "XRPUSDC"]
    response = compliance.get(admin_url(SizingDecision, "changelist"), {"symbol": "ETHUSDC"})
    assert order_refs(response) == {"ord-3"}


@pytest.mark.parametrize(("params", "expected"), [
    ({"mode": "shadow"}, {"ord-3"}),
    ({"mode": "live"}, {"ord-1", "ord-2", "ord-10", XSS_ORDER_REF, "ord-4"}),
    ({"fallback_reason": "no_snapshot"}, {"ord-4"}),
    ({"caller": "engine-b"}, {"ord-2", "ord-4"}),
    ({"stale__exact": "0"}, {"ord-1", "ord-2", "ord-3", XSS_ORDER_REF, "ord-10", "ord-4"}),
    ({"stale__exact": "1"}, set()),
    ({"applied_factor_band": "lt0.75"}, {XSS_ORDER_REF}),
    ({"applied_factor_band": "1"}, {"ord-3", "ord-4"}),
    ({"applied_factor_band": "gt1.5"}, {"ord-1", "ord-2", "ord-10"}),
    ({"applied_factor_band": "1-1.5"}, set()),
    ({"intel_factor_band": "lt0.75"}, {"ord-3", XSS_ORDER_REF}),  # shadow: proposed 0.5, applied 1.0
])
def test_filters(compliance, ledger, params, expected):
    assert order_refs(compliance.get(admin_url(SizingDecision, "changelist"), params)) == expected


def test_which_btc_orders_were_sized_above_1_5x_last_week(compliance, ledger):
    url = admin_url(SizingDecision, "changelist")
    filtered = compliance.get(url, {"symbol": "BTCUSDC", "applied_factor_band": "gt1.5"})
    created_filter = next(spec for spec in filtered.context["cl"].filter_specs if spec.title == "created at")
    past_7_days = next(choice for choice in created_filter.choices(filtered.context["cl"])
                       if choice["display"] == "Past 7 days")["query_string"]
    assert order_refs(compliance.get(url + past_7_days)) == {"ord-1", "ord-2", "ord-10"}
    today = timezone.localdate()
    a_year_ago = today - timedelta(days=366)
    drill_down = {"symbol": "BTCUSDC", "applied_factor_band": "gt1.5",
                  "created_at__year": a_year_ago.year, "created_at__month": a_year_ago.month}
    assert order_refs(compliance.get(admin_url(SizingDecision, "changelist"), drill_down)) == set()
    drill_down.update(created_at__year=today.year, created_at__month=today.month, created_at__day=today.day)
    assert order_refs(compliance.get(admin_url(SizingDecision, "changelist"), drill_down)) == {
        "ord-1", "ord-2", "ord-10"}


@pytest.mark.parametrize(("query", "expected"), [
    ("ord-10", {"ord-10"}),                    # exact
    ("ord-1", {"ord-1", "ord-10"}),            # prefix
    ("ord", {"ord-1", "ord-2", "ord-3", "ord-10", "ord-4"}),
    ("rd-1", set()),                           # not a substring search
    ("ETHUSDC", {"ord-3"}),                    # symbol
    ("<script>", {XSS_ORDER_REF}),
])
def test_search_by_order_ref_and_symbol(compliance, ledger, query, expected):
    assert order_refs(compliance.get(admin_url(SizingDecision, "changelist"), {"q": query})) == expected


# --- the decision page --------------------------------------------------------------------------

def table_rows(html: str, table_class: str) -> list[list[str]]:
    table = re.search(rf'<table[^>]*class="{table_class}".*?</table>', html, re.S).group(0)
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in rows]


def test_decision_page_shows_the_breakdown_step_by_step(compliance, ledger):
    decision = ledger.ord_1
    response = compliance.get(admin_url(SizingDecision, "change", decision.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert table_rows(html, "sizing-breakdown") == [
        ["step", "multiplier", "size"],
        ["gross target", "", "1000.0"],
        ["after inverse volatility", "× 0.75", "750.0"],
        ["× volatility regime", "× 1.25", "937.5"],
        ["× Sharpe", "× 1.5", "1406.25"],
        ["× intel factor applied", "× 1.75 (proposed 1.75, mode live)", "2460.9375"],
        ["final size", "", "2460.9375"],
    ]
    assert "errornote" not in html
    assert decision.final_size == 2460.9375


def test_decision_page_shows_proposed_factor_and_mode_when_not_applied(compliance, ledger):
    html = compliance.get(admin_url(SizingDecision, "change", ledger.ord_3.pk)).content.decode()
    assert ["× intel factor applied", "× 1.0 (proposed 0.5, mode shadow)", "1000.0"] in table_rows(
        html, "sizing-breakdown")
    html = compliance.get(admin_url(SizingDecision, "change", ledger.no_snapshot.pk)).content.decode()
    assert ["× intel factor applied", "× 1.0 (proposed 1.0, mode live, fallback no_snapshot)", "50.0"] in table_rows(
        html, "sizing-breakdown")
    assert "none: neutral factors were used" in html


def test_decision_page_shows_hash_chain_and_links_the_snapshot_and_its_components(compliance, ledger):
    decision = ledger.ord_2
    html = compliance.get(admin_url(SizingDecision, "change", decision.pk)).content.decode()
    assert decision.seq == 2 and decision.prev_hash == ledger.ord_1.row_hash
    for value in (decision.prev_hash, decision.row_hash):
        assert value in html
    assert re.search(r'field-seq.*?<div class="readonly">2</div>', html, re.S)
    snapshot_url = admin_url(SizingSnapshot, "change", ledger.btc_snapshot.pk)
    assert f'href="{snapshot_url}"' in html and f'href="{snapshot_url}#components"' in html
    bucket = ledger.btc_snapshot.as_of.strftime("%Y-%m-%d %H:%M")
    assert f"BTCUSDC @ {bucket} UTC, size factor 1.75</a>" in html
    assert table_rows(html, "sizing-components") == [
        ["component", "value", "sample", "confidence", "weight", "contribution"],
        ["sharpe_7d", "2.5", "7", "1.0", "1.0", "0.8482836399575129"],
        ["slippage_bps", "-5.0", "12", "0.4", "1.0", "0.2427"],
        ["fill_rate", "—", "0", "0.0", "0.5", "0.0"],
        ["score", "", "0.7"],
    ]


def test_user_input_is_escaped_everywhere(compliance, ledger):
    pages = [
        admin_url(SizingDecision, "changelist"),
        admin_url(SizingDecision, "change", ledger.xss.pk),
        admin_url(SizingDecision, "changelist") + "?q=%3Cscript%3E",
    ]
    for url in pages:
        html = compliance.get(url).content.decode()
        assert XSS_ORDER_REF not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in html


def test_snapshot_page_shows_components_and_links_its_decisions(compliance, ledger):
    response = compliance.get(admin_url(SizingSnapshot, "change", ledger.btc_snapshot.pk))
    html = response.content.decode()
    assert ["sharpe_7d", "2.5", "7", "1.0", "1.0", "0.8482836399575129"] in table_rows(html, "sizing-components")
    link = re.search(r'href="([^"]*snapshot__id__exact=\d+)"', html).group(1)
    assert order_refs(compliance.get(link.replace("&amp;", "&"))) == {"ord-1", "ord-2", "ord-10"}
    response = compliance.get(admin_url(SizingSnapshot, "changelist"), {"size_factor_band": "gt1.5"})
    assert [snapshot.pk for snapshot in listed(response)] == [ledger.btc_snapshot.pk]


# --- CSV export ---------------------------------------------------------------------------------

def expected_row(decision: SizingDecision, *, snapshot_id: str) -> list[str]:
    return [
        str(decision.pk), decision.created_at.isoformat(), decision.symbol, decision.order_ref, decision.caller,
        repr(decision.gross_target), repr(decision.inverse_vol_size), repr(decision.regime_multiplier),
        repr(decision.sharpe_multiplier), repr(decision.intel_factor), repr(decision.applied_factor),
        repr(decision.final_size), decision.mode, "false", decision.fallback_reason, repr(decision.score),
        snapshot_id, "", str(decision.seq), decision.prev_hash, decision.row_hash,
    ]


def test_changelist_links_to_the_export_with_its_filters(compliance, ledger):
    html = compliance.get(admin_url(SizingDecision, "changelist"),
                          {"symbol": "BTCUSDC", "applied_factor_band": "gt1.5"}).content.decode()
    export_url = admin_url(SizingDecision, "export_csv")
    assert f'href="{export_url}?symbol=BTCUSDC&amp;applied_factor_band=gt1.5"' in html
    assert ">Export CSV</a>" in html


def test_export_streams_exactly_the_filtered_rows(compliance, ledger):
    response = compliance.get(admin_url(SizingDecision, "export_csv"),
                              {"symbol": "BTCUSDC", "applied_factor_band": "gt1.5", "q": "ord-1"})
    assert response["Content-Disposition"].startswith('attachment; filename="sizing-decisions-')
    snapshot_id = str(ledger.btc_snapshot.pk)
    # Newest first, as on the page.
    assert csv_rows(response) == [
        DECISION_HEADER,
        expected_row(ledger.ord_10, snapshot_id=snapshot_id),
        expected_row(ledger.ord_1, snapshot_id=snapshot_id),
    ]
    assert expected_row(ledger.ord_1, snapshot_id=snapshot_id)[5:12] == [
        "1000.0", "750.0", "1.25", "1.5", "1.75", "1.75", "2460.9375"]


def test_export_follows_ordering_and_date_drill_down_and_spans_all_pages(compliance, ledger):
    today = timezone.localdate()
    response = compliance.get(admin_url(SizingDecision, "export_csv"), {
        "o": "3", "created_at__year": today.year, "created_at__month": today.month, "p": "2",
    })
    rows = csv_rows(response)
    gross_targets = [row[DECISION_HEADER.index("gross_target")] for row in rows[1:]]
    # o=3: ascending by the fourth list column, gross_target; the page number does not limit it.
    assert gross_targets == ["3.0", "10.0", "50.0", "200.0", "1000.0", "1000.0"]


def test_export_floats_round_trip(compliance):
    make_snapshot(make_symbol("ADAUSDC"), as_of=timezone.now(), size_factor=1.3, inverse_vol_multiplier=0.8,
                  regime_multiplier=0.9, sharpe_multiplier=1.1, score=0.123456789)
    decision = size_decide("ADAUSDC", 1234.567, order_ref="=HYPERLINK(\"http://x\")", caller="+engine")
    rows = csv_rows(compliance.get(admin_url(SizingDecision, "export_csv")))
    row = dict(zip(rows[0], rows[1]))
    for name in ("gross_target", "inverse_vol_size", "final_size", "score"):
        assert float(row[name]) == getattr(decision, name)
        assert row[name] == repr(getattr(decision, name))
    assert row["final_size"] != f"{decision.final_size:.6f}"
    # Cells Excel would run as formulas are neutralized with a leading apostrophe.
    assert row["order_ref"] == "'=HYPERLINK(\"http://x\")" and row["caller"] == "'+engine"


def test_snapshot_and_run_exports(compliance, ledger):
    rows = csv_rows(compliance.get(admin_url(SizingSnapshot, "export_csv"), {"q": "BTCUSDC"}))
    assert rows[0] == exports.SNAPSHOTS.header
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1]))
    assert (row["symbol"], row["size_factor"], row["inverse_vol_multiplier"]) == ("BTCUSDC", "1.75", "0.75")
    assert row["components"].startswith('{"fill_rate":{"confidence":0.0,')
    now = timezone.now()
    run = RecomputeRun.objects.create(as_of=now, started_at=now, status="ok", symbols_total=3, symbols_ok=3)
    rows = csv_rows(compliance.get(admin_url(RecomputeRun, "export_csv"), {"status__exact": "ok"}))
    assert rows[0] == exports.RUNS.header and rows[1][:2] == [str(run.pk), "manual"]


def test_export_needs_view_permission_and_a_login(client, ledger):
    url = admin_url(SizingDecision, "export_csv")
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    staff_without_roles = get_user_model().objects.create_user("stan", password=PASSWORD, is_staff=True)
    client.force_login(staff_without_roles)
    assert client.get(url).status_code == 403


def test_export_with_a_bad_filter_goes_back_to_the_changelist(compliance, ledger):
    response = compliance.get(admin_url(SizingDecision, "export_csv"), {"created_at__year": "not-a-year"})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_csv_chunks_stream_in_pieces_and_read_back_whole():
    rows = [[str(i), repr(i / 7), "x" * 50] for i in range(500)]
    chunks = list(exports.csv_chunks(["i", "ratio", "text"], iter(rows), flush_bytes=4096))
    assert len(chunks) > 5 and chunks[0] == "i,ratio,text\r\n"
    parsed = list(csv.reader(io.StringIO("".join(chunks))))
    assert parsed[1:] == rows and float(parsed[8][1]) == 7 / 7


# --- who may do what ----------------------------------------------------------------------------

def test_compliance_sees_everything_and_no_write_control(compliance, ledger):
    override = Override.objects.create(symbol=ledger.btc, pinned_factor=1.5, reason="pin",
                                       author=role_user("rita", "risk"))
    GlobalPolicy.objects.create(pk=1, mode="live")
    pages = [reverse("admin:index"), reverse("admin:app_list", args=["sizing_app"])]
    for model in (SizingDecision, SizingSnapshot, RecomputeRun, Symbol, Override):
        pages.append(admin_url(model, "changelist"))
    for model in ("candle", "order", "fill"):
        pages.append(reverse(f"admin:sizing_app_{model}_changelist"))
    pages += [
        admin_url(SizingDecision, "change", ledger.ord_1.pk),
        admin_url(SizingSnapshot, "change", ledger.btc_snapshot.pk),
        admin_url(Symbol, "change", ledger.btc.pk), admin_url(Symbol, "history", ledger.btc.pk),
        admin_url(Override, "change", override.pk), admin_url(GlobalPolicy, "change", 1),
    ]
    for url in pages:
        response = compliance.get(url)
        assert response.status_code == 200, url
        assert_no_write_controls(response.content.decode())
    assert compliance.get(admin_url(SizingDecision, "export_csv")).status_code == 200
    for url, data in ((admin_url(Symbol, "change", ledger.btc.pk), {"mode": "off"}),
                      (admin_url(Override, "add"), {}), (admin_url(SizingDecision, "add"), {})):
        assert compliance.post(url, data).status_code == 403, url
    assert Symbol.objects.get(pk=ledger.btc.pk).mode == ""


@pytest.mark.parametrize("model", [SizingDecision, SizingSnapshot, RecomputeRun])
def test_not_even_a_superuser_writes_recorded_rows(superuser, ledger, model):
    now = timezone.now()
    row = {SizingDecision: ledger.ord_1, SizingSnapshot: ledger.btc_snapshot,
           RecomputeRun: RecomputeRun.objects.create(as_of=now, started_at=now)}[model]
    assert superuser.get(admin_url(model, "add")).status_code == 403
    assert superuser.post(admin_url(model, "add"), {}).status_code == 403
    assert superuser.get(admin_url(model, "delete", row.pk)).status_code == 403
    assert superuser.post(admin_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert superuser.post(admin_url(model, "change", row.pk), {}).status_code == 403
    page = superuser.get(admin_url(model, "change", row.pk))
    assert page.status_code == 200
    assert_no_write_controls(page.content.decode(), content_only=True)
    changelist = superuser.get(admin_url(model, "changelist"))
    assert_no_write_controls(changelist.content.decode(), content_only=True)
    assert model.objects.filter(pk=row.pk).exists()


def test_superuser_cannot_write_telemetry_or_delete_policy(superuser, ledger):
    for name in ("candle", "order", "fill"):
        assert superuser.get(reverse(f"admin:sizing_app_{name}_add")).status_code == 403
    assert superuser.get(admin_url(Symbol, "delete", ledger.btc.pk)).status_code == 403
    assert "delete_selected" not in superuser.get(admin_url(Symbol, "changelist")).content.decode()


def test_risk_changes_a_symbol_mode_through_the_service(risk, risk_user, ledger):
    url = admin_url(Symbol, "change", ledger.btc.pk)
    page = risk.get(url).content.decode()
    assert 'name="mode"' in page and 'name="name"' not in page and 'name="_save"' in page
    response = risk.post(url, {"mode": "shadow", "_save": "Save"})
    assert response.status_code == 302
    assert Symbol.objects.get(pk=ledger.btc.pk).mode == "shadow"
    latest = ledger.btc.history.order_by("-history_date", "-history_id").first()
    assert (latest.mode, latest.history_user) == ("shadow", risk_user)
    assert hot_state.policy("BTCUSDC").mode == "shadow"
    # The next size follows at once: shadow records the factor and applies 1.0.
    decision = size_decide("BTCUSDC", 1000.0, order_ref="after-switch")
    assert (decision.mode, decision.intel_factor, decision.applied_factor) == ("shadow", 1.75, 1.0)


def test_symbol_history_shows_who_changed_what(client, risk, ledger):
    risk.post(admin_url(Symbol, "change", ledger.btc.pk), {"mode": "off", "_save": "Save"})
    client.force_login(role_user("carol", "compliance"))
    html = client.get(admin_url(Symbol, "history", ledger.btc.pk)).content.decode()
    assert "rita" in html and "off" in html
    history_id = ledger.btc.history.order_by("-history_id").first().history_id
    history_form = admin_url(Symbol, "simple_history", ledger.btc.pk, history_id)
    assert client.get(history_form).status_code == 200
    assert client.post(history_form, {"mode": ""}).status_code == 403


def test_risk_creates_an_override_through_the_service(risk, risk_user, ledger):
    response = risk.post(admin_url(Override, "add"), {
        "symbol": ledger.btc.pk, "pinned_factor": "1.5", "mode": "", "reason": "event risk",
        "expires_at_0": "", "expires_at_1": "", "_save": "Save",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    override = Override.objects.get()
    assert (override.pinned_factor, override.reason, override.author) == (1.5, "event risk", risk_user)
    assert override.history.get().history_user == risk_user
    decision = size_decide("BTCUSDC", 1000.0)
    assert (decision.override_id, decision.applied_factor) == (override.pk, 1.5)


@pytest.mark.parametrize(("data", "message"), [
    ({"reason": "nothing pinned"}, "An override pins a factor, a mode, or both."),
    ({"reason": "too big", "pinned_factor": "5"}, "pinned_factor must be a number within [0.25, 2.0]"),
    ({"reason": "past", "mode": "off", "expires_at_0": "2001-01-01", "expires_at_1": "00:00:00"},
     "expires_at must be in the future."),
])
def test_override_refused_by_the_service_is_a_form_error(risk, ledger, data, message):
    form = {"symbol": ledger.btc.pk, "pinned_factor": "", "mode": "", "expires_at_0": "", "expires_at_1": "", **data}
    response = risk.post(admin_url(Override, "add"), form)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Override.objects.exists() and not Override.history.exists()


def test_risk_revokes_overrides_with_the_action_and_cannot_edit_or_delete_them(risk, risk_user, ledger):
    override = Override.objects.create(symbol=ledger.btc, pinned_factor=1.5, reason="pin", author=risk_user)
    changelist = risk.get(admin_url(Override, "changelist")).content.decode()
    assert 'value="revoke_overrides"' in changelist and "delete_selected" not in changelist
    response = risk.post(admin_url(Override, "changelist"),
                         {"action": "revoke_overrides", "_selected_action": [override.pk]})
    assert response.status_code == 302
    override.refresh_from_db()
    assert override.revoked_at is not None
    assert override.history.order_by("-history_id").first().history_user == risk_user
    assert risk.post(admin_url(Override, "change", override.pk), {"reason": "edited"}).status_code == 403
    assert risk.get(admin_url(Override, "delete", override.pk)).status_code == 403
    assert_no_write_controls(risk.get(admin_url(Override, "change", override.pk)).content.decode(), content_only=True)


def test_risk_sets_the_global_mode_on_the_single_policy_row(risk, risk_user):
    assert risk.get(admin_url(GlobalPolicy, "changelist")).status_code == 200
    assert risk.post(admin_url(GlobalPolicy, "add"), {"mode": "shadow", "_save": "Save"}).status_code == 302
    policy = GlobalPolicy.objects.get()
    assert (policy.pk, policy.mode) == (1, "shadow")
    assert {row.history_user for row in policy.history.all()} == {risk_user}
    response = risk.get(admin_url(GlobalPolicy, "changelist"))
    assert response.status_code == 302 and response["Location"] == admin_url(GlobalPolicy, "change", 1)
    assert risk.get(admin_url(GlobalPolicy, "add")).status_code == 403  # a singleton
    assert risk.post(admin_url(GlobalPolicy, "change", 1), {"mode": "off", "_save": "Save"}).status_code == 302
    assert GlobalPolicy.objects.get().mode == "off"
    latest = policy.history.order_by("-history_id").first()
    assert (latest.mode, latest.history_user) == ("off", risk_user)


def test_dashboard_user_only_views(dashboard, ledger):
    assert dashboard.get(admin_url(SizingDecision, "changelist")).status_code == 200
    assert dashboard.get(admin_url(SizingDecision, "change", ledger.ord_1.pk)).status_code == 200
    symbol_page = dashboard.get(admin_url(Symbol, "change", ledger.btc.pk))
    assert symbol_page.status_code == 200
    assert_no_write_controls(symbol_page.content.decode())
    assert dashboard.post(admin_url(Symbol, "change", ledger.btc.pk), {"mode": "off"}).status_code == 403
    assert dashboard.get(admin_url(Override, "add")).status_code == 403
    assert dashboard.post(admin_url(GlobalPolicy, "add"), {"mode": "off"}).status_code == 403
    overrides = dashboard.get(admin_url(Override, "changelist")).content.decode()
    assert "revoke_overrides" not in overrides
    for name in ("candle", "order", "fill"):  # telemetry is not a dashboard concern
        assert dashboard.get(reverse(f"admin:sizing_app_{name}_changelist")).status_code == 403
    assert Symbol.objects.get(pk=ledger.btc.pk).mode == "" and not GlobalPolicy.objects.exists()


def test_anonymous_is_sent_to_login(client, ledger):
    for url in (reverse("admin:index"), admin_url(SizingDecision, "changelist"),
                admin_url(SizingDecision, "change", ledger.ord_1.pk), admin_url(Symbol, "changelist")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next=")


def test_engine_accounts_have_no_admin(client, ledger):
    client.force_login(role_user("engine1", "engine"))
    response = client.get(admin_url(SizingDecision, "changelist"))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
