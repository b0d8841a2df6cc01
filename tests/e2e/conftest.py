"""End-to-end fixtures: a real `python app.py` server, Debian's Chromium driven by
Playwright, and python-socketio clients with API tokens acting as other users.

Without /usr/bin/chromium (or Playwright) these tests skip with the reason; with
PROPSEC_REQUIRE_BROWSER=1 (CI) they fail instead."""
from __future__ import annotations

import os

import pytest

from dashboard_support import (CHROMIUM, CHROMIUM_ARGS, VIEWPORT, _missing_browser_reason, login,
                               seed_properties, start_site)


@pytest.fixture(scope="module", autouse=True)
def _need_browser():
    """Skip (or, with PROPSEC_REQUIRE_BROWSER=1, fail) before any server is started."""
    reason = _missing_browser_reason()
    if reason is None:
        return
    if os.environ.get("PROPSEC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"PROPSEC_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(f"end-to-end browser tests skipped: {reason}")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = start_site(tmp_path_factory.mktemp("e2e"))
    s.seeded = seed_properties(s)
    yield s
    s.close_clients()
    s.server.stop()


@pytest.fixture
def open_page(browser, site):
    """open_page(user_id) -> a logged-in dashboard page (connected, map drawn)."""
    contexts = []

    def make(user_id: str, target=None):
        target = target or site
        ctx = browser.new_context(viewport=VIEWPORT)
        contexts.append(ctx)
        page = ctx.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        login(page, target.url, user_id)
        return page

    yield make
    for ctx in contexts:
        ctx.close()
