"""Browser fixtures: Debian's Chromium driven by Playwright's sync API against pytest-django's live_server.

Playwright's own browser download is never used; without /usr/bin/chromium the tests skip (fail on CI).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.append_only import sqlite_guards

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update"]


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for the module's tests."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (apt-get install chromium); browser tests need it"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread, and Django refuses ORM
    # calls from a thread with a running loop unless told otherwise. Set only while it runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(chromium):
    """A fresh page; the test errors if the page ever broke the Content-Security-Policy.

    Chromium reports each refused script, style or image on the console; a page of ours that
    needs one has a defect (or the policy does), even when the test's own checks pass.
    """
    context = chromium.new_context(viewport={"width": 1920, "height": 1080}, accept_downloads=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    refused = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    yield page
    context.close()
    assert not refused, f"the page broke its Content-Security-Policy: {refused}"


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def flushable_ledger(transactional_db):
    """Let the flush that ends a transactional test empty the ledger tables on SQLite.

    pytest-django empties tables with DELETE on SQLite, which the append-only triggers refuse
    (PostgreSQL uses TRUNCATE, which they leave alone). The triggers are lifted only for that
    flush, which runs after this fixture's teardown, and put back before the next test.
    """
    sqlite_guards("install")
    yield
    sqlite_guards("remove")


@pytest.fixture(scope="module", autouse=True)
def restore_database_state(django_db_blocker):
    """After the module's last flush, give back what migrations made, for the tests that follow.

    Transactional tests end by emptying every table: permissions come back (post_migrate), but
    the role groups (data migration 0003) do not, and SQLite's triggers were lifted for the flush.
    """
    yield
    from django.contrib.auth.models import Group, Permission

    from sizing_app.roles import sync_role_groups

    with django_db_blocker.unblock():
        sqlite_guards("install")
        sync_role_groups(Group, Permission)


@pytest.fixture
def browser_settings(settings):
    # No collectstatic manifest in tests: the live server serves admin assets by their plain names.
    settings.STORAGES = {
        **settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings
