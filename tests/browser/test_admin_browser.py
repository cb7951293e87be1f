"""A compliance reviewer in a real browser: log in, filter the ledger, read a decision's breakdown,
export the filtered rows, and find no control that would change anything.
"""
from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.auth.models import Group, Permission
from playwright.sync_api import expect

from sizing_app.roles import sync_role_groups
from tests.admin.test_admin import PASSWORD, XSS_ORDER_REF, build_ledger, role_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reviewer(browser_settings, live_server, flushable_ledger):
    # An earlier transactional test may have emptied the tables, groups included.
    sync_role_groups(Group, Permission)
    role_user("carol", "compliance")
    return build_ledger()


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def result_order_refs(page) -> set[str]:
    return set(page.locator("#result_list tbody td.field-order_ref").all_inner_texts())


def assert_no_write_controls(page) -> None:
    content = page.locator("#content")
    assert content.locator("a.addlink").count() == 0
    assert content.locator("input[name=_save], input[name=_continue], input[name=_addanother]").count() == 0
    assert content.locator("a.deletelink").count() == 0
    assert page.locator("select[name=action]").count() == 0
    assert page.get_by_role("button", name=re.compile("^(Add|Save|Delete)")).count() == 0


def test_reviewer_filters_the_ledger_and_reads_a_breakdown(page, live_server, reviewer, artifacts):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, live_server, "carol")
    page.click("a[href='/admin/sizing_app/sizingdecision/']")
    expect(page.locator("#result_list tbody tr")).to_have_count(6)
    assert XSS_ORDER_REF in result_order_refs(page)  # shown as text, never run
    assert_no_write_controls(page)

    filters = page.locator("#changelist-filter")
    filters.get_by_role("link", name="BTCUSDC", exact=True).click()
    page.wait_for_url(re.compile(r"[?&]symbol=BTCUSDC"))
    assert result_order_refs(page) == {"ord-1", "ord-2", "ord-10"}
    filters.get_by_role("link", name="shadow: factor recorded, 1.0 applied").click()
    page.wait_for_url(re.compile(r"mode__exact=shadow"))
    assert result_order_refs(page) == set()
    filters.get_by_role("link", name="live: factor applied").click()
    page.wait_for_url(re.compile(r"mode__exact=live"))
    assert "symbol=BTCUSDC" in page.url
    assert result_order_refs(page) == {"ord-1", "ord-2", "ord-10"}
    assert page.locator("#result_list td.field-applied_factor_display").all_inner_texts() == ["1.75x"] * 3
    page.screenshot(path=str(artifacts / "admin-ledger-filtered.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert [row[3] for row in rows] == ["order_ref", "ord-10", "ord-2", "ord-1"]
    assert [row[11] for row in rows[1:]] == ["7.3828125", "492.1875", "2460.9375"]

    ord_1 = page.locator("#result_list tbody tr").filter(
        has=page.locator("td.field-order_ref", has_text=re.compile(r"^ord-1$")))
    ord_1.locator("th a").click()
    page.wait_for_selector("table.sizing-breakdown")
    breakdown = page.locator("table.sizing-breakdown tbody tr")
    assert [row.split("\t") for row in breakdown.all_inner_texts()] == [
        ["gross target", "", "1000.0"],
        ["after inverse volatility", "× 0.75", "750.0"],
        ["× volatility regime", "× 1.25", "937.5"],
        ["× Sharpe", "× 1.5", "1406.25"],
        ["× intel factor applied", "× 1.75 (proposed 1.75, mode live)", "2460.9375"],
        ["final size", "", "2460.9375"],
    ]
    assert page.locator("table.sizing-components tbody th").all_inner_texts() == [
        "sharpe_7d", "slippage_bps", "fill_rate", "score"]
    assert "BTCUSDC @ " in page.get_by_role("link", name=re.compile("size factor 1.75")).inner_text()
    assert page.locator(".field-order_ref .readonly").inner_text() == "ord-1"
    assert_no_write_controls(page)
    assert page.get_by_role("link", name="Close").count() == 1
    page.screenshot(path=str(artifacts / "admin-decision-breakdown.png"), full_page=True)
    assert dialogs == []


def test_user_input_never_runs_in_the_decision_page(page, live_server, reviewer, artifacts):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, live_server, "carol")
    page.goto(f"{live_server.url}/admin/sizing_app/sizingdecision/{reviewer.xss.pk}/change/")
    assert page.locator(".field-order_ref .readonly").inner_text() == XSS_ORDER_REF
    assert page.locator(".field-caller .readonly img").count() == 0
    assert page.locator("script", has_text="alert(1)").count() == 0
    assert dialogs == []
    assert_no_write_controls(page)


def test_a_developer_reads_the_api_docs_under_the_content_security_policy(page, live_server, reviewer, artifacts):
    """Swagger UI renders the contract with no inline script (the page fixture fails on any refusal)."""
    from django.contrib.auth.models import User

    User.objects.create_superuser("dora", password=PASSWORD)
    log_in(page, live_server, "dora")
    page.goto(f"{live_server.url}/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Adaptive position sizing API")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/factors/latest/{symbol}/")).to_have_count(1)
    page.screenshot(path=str(artifacts / "api-docs.png"))


def test_policy_history_renders_under_the_content_security_policy(page, live_server, reviewer):
    """simple_history's table (with an inline style attribute) shows every change, nothing refused."""
    from django.contrib.auth.models import User

    from sizing_app.models import Symbol
    from sizing_app.policy import services as policy

    risk = User.objects.create_superuser("rita", password=PASSWORD)
    symbol = Symbol.objects.get(name="BTCUSDC")
    policy.symbol_mode_set(symbol=symbol.name, mode="shadow", user=risk)
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/admin/sizing_app/symbol/{symbol.pk}/history/")
    expect(page.locator("#change-history tbody tr")).not_to_have_count(0)
    expect(page.locator("#change-history")).to_contain_text("rita")
