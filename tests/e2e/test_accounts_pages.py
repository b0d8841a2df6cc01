"""Accounts in the browser: enrol in two-factor login from the dashboard and log in with a
code; an admin creates a person and a token on the admin page; the audit page lists what
happened; a property's CSV downloads."""
from __future__ import annotations

import time

import pyotp
from playwright.sync_api import expect

from dashboard_support import PASSWORD, USERS, VIEWPORT, ApiClient, shot, start_site


def test_enrol_two_factor_in_the_dashboard_then_log_in_with_a_code(site, browser, open_page):
    site.server.create_user("guard2", "staff", PASSWORD, name="Gus Guard")
    page = open_page("guard2")
    page.click("#tab-btn-notify")
    page.click("#tab-notify [data-action=begin-2fa]")
    secret = page.locator("#tab-notify [data-role=secret]").inner_text()
    expect(page.locator("#tab-notify img.qr")).to_be_visible()
    shot(page, "enrol-2fa")
    page.fill("#tab-notify [data-role=enrol] input[name=code]", pyotp.TOTP(secret).now())
    page.click("#tab-notify [data-action=confirm-2fa]")
    expect(page.locator("#tab-notify [data-role=recovery-codes] li")).to_have_count(8)
    expect(page.locator("#tab-notify [data-field=two-factor]")).to_contain_text("is on")
    assert not page.errors, page.errors
    # a new browser: the password alone is refused, the next code lets in
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        other = ctx.new_page()
        other.goto(site.url + "/login")
        other.fill("input[name=username]", "guard2")
        other.fill("input[name=password]", PASSWORD)
        other.click("button[type=submit]")
        expect(other.locator(".login-error")).to_contain_text("code")
        other.fill("input[name=password]", PASSWORD)
        other.fill("input[name=otp]", pyotp.TOTP(secret).at(time.time() + 30))
        other.click("button[type=submit]")
        other.wait_for_selector("#connection-status[data-state=connected]", timeout=15000)
    finally:
        ctx.close()


def test_an_admin_creates_a_person_and_a_token_and_sees_the_audit(site, open_page):
    assert "admin1" in USERS
    page = open_page("admin1")
    page.click("[data-action=admin-page]")
    page.wait_for_selector("#connection-status[data-state=connected]")
    page.fill("#admin-users input[name=userId]", "newguard")
    page.fill("#admin-users input[name=fullName]", "Nia Newguard")
    page.select_option("#admin-users select[name=role]", "staff")
    page.fill("#admin-users input[name=password]", "a fresh password 1")
    page.click("#admin-users [data-action=create-user]")
    expect(page.locator("#admin-users [data-role=msg]")).to_have_text("Created newguard.")
    expect(page.locator("#admin-tokens [data-role=who]")).to_contain_text("newguard")
    page.fill("#admin-tokens input[name=label]", "north gate scanner")
    page.click("#admin-tokens [data-action=issue-token]")
    token = page.locator("#admin-tokens .token-once").inner_text()
    assert token.startswith("ps_")
    expect(page.locator("#admin-tokens [data-role=token-list] li")).to_contain_text("north gate scanner")
    # the token works for a device
    device = ApiClient(site.url, token)
    device.ok("get-tiers")
    device.close()
    # the audit page shows what just happened, newest first
    page.click("#admin-audit [data-action=filter-audit]")
    expect(page.locator("#admin-audit tbody tr").first).to_contain_text("queries.issue-token")
    expect(page.locator('#admin-audit tbody tr[data-action="queries.create-user"]')).to_have_count(1)
    assert "a fresh password 1" not in page.content()
    shot(page, "admin-page")
    # revoke from the page
    page.click("#admin-tokens [data-action=revoke-token]")
    page.click("#admin-tokens [data-action=revoke-token]")
    expect(page.locator("#admin-tokens [data-role=token-list]")).to_contain_text("No active tokens")
    assert not page.errors, page.errors


def test_the_audit_page_shows_the_newest_entries_of_a_long_trail(tmp_path, open_page):
    """25,000 older entries: the page still opens on the newest (it pages back from the end
    of the trail, not forward from its start), and says that only the newest are shown; a
    date range that ends before all of them still finds its entries. (A site of its own:
    its trail starts with the ten early entries, as a real one would.)"""
    from datetime import timedelta

    from sqlalchemy import insert

    from propsec.extensions import db
    from propsec.models import AuditEntry
    from propsec.models._common import utcnow

    site = start_site(tmp_path)
    app = site.server.local_app()
    with app.app_context():
        at = utcnow()
        earlier = at - timedelta(days=2)
        db.session.execute(insert(AuditEntry), [
            {"at": earlier, "actor": "early", "action": "early-entry", "detail": {"n": n}}
            for n in range(10)])
        db.session.execute(insert(AuditEntry), [
            {"at": at, "actor": "filler", "action": "filler", "detail": {"n": n}}
            for n in range(25_000)])
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    try:
        _newest_and_early_entries(site, open_page("admin1", site), earlier)
    finally:
        site.close_clients()
        site.server.stop()


def _newest_and_early_entries(site, page, earlier) -> None:
    page.click("[data-action=admin-page]")
    page.wait_for_selector("#connection-status[data-state=connected]")
    admin = site.client("admin1")
    admin.ok("issue-token", userId="owner2", label="after a long trail")
    page.click("#admin-audit [data-action=filter-audit]")
    first = page.locator("#admin-audit tbody tr").first
    expect(first).to_contain_text("queries.issue-token")
    expect(first).to_contain_text("owner2")
    expect(page.locator("#admin-audit [data-role=summary]")).to_contain_text("The newest 500 entries")
    expect(page.locator("#admin-audit tbody tr")).to_have_count(500)
    # up to two days ago: only the ten early entries, found past the 25,000 newer ones
    page.fill("#admin-audit input[name=to]", earlier.date().isoformat())
    page.click("#admin-audit [data-action=filter-audit]")
    expect(page.locator('#admin-audit tbody tr[data-action="early-entry"]')).to_have_count(10)
    expect(page.locator("#admin-audit tbody tr")).to_have_count(10)
    expect(page.locator("#admin-audit [data-role=summary]")).to_have_text("10 entries.")
    assert not page.errors, page.errors


def test_a_property_exports_download_as_csv(site, open_page):
    page = open_page("owner1")
    pid = next(p for p, st in site.seeded.items() if st == "ACTIVE")
    page.fill("#property-search", f"#{pid}")
    page.press("#property-search", "Enter")
    link = page.locator("#property-panel [data-export=visits]")
    expect(link).to_be_visible()
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == f"propsec-visits-{pid}.csv"
    with open(download.path()) as data:
        assert data.readline().strip() == "id,propertyId,userId,cameraId,timestamp"
