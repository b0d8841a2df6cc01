"""The dashboard's Notify tab (contract section 15) in a real browser: set e-mail
preferences, add a webhook and see its secret once, watch a delivery arrive."""
from __future__ import annotations

import hashlib
import hmac

from playwright.sync_api import expect
from receivers import Receiver

from dashboard_support import shot


def test_staff_adds_a_webhook_sees_the_secret_once_and_watches_a_delivery(site, open_page):
    receiver = Receiver()
    try:
        page = open_page("staff1")
        page.wait_for_selector("#queue-count:not([hidden])")  # (the widest the strip gets)
        assert page.evaluate("(t => t.scrollWidth <= t.clientWidth)(document.querySelector('.tabs'))"), \
            "every tab is in view at 1440×900"
        page.click("#tab-btn-notify")
        # e-mail preferences
        page.wait_for_selector("#tab-notify [data-section=email] input[name=email]")
        page.check("#tab-notify input[name=email]")
        page.select_option("#tab-notify [data-section=email] select[name=minSeverity]", "critical")
        page.click("#tab-notify [data-action=save-email]")
        expect(page.locator("#tab-notify [data-section=email] .action-msg")).to_have_text("Saved.")
        api = site.client("staff1")
        assert api.ok("get-notification-preferences") | {"email": True, "minSeverity": "critical"} \
            == api.ok("get-notification-preferences")
        # a webhook for new alerts, site-wide
        page.fill("#tab-notify input[name=url]", receiver.url)
        page.click("#tab-notify [data-action=add-webhook]")
        secret = page.locator("#tab-notify .webhook-secret")
        expect(secret).to_be_visible(timeout=5000)
        secret_text = secret.inner_text()
        assert secret_text.startswith("whsec_")
        item = page.locator("#tab-notify .webhook").first
        expect(item).to_contain_text(receiver.url)
        shot(page, "notify-webhook-added")
        # something happens: the receiver gets it, signed with that secret
        pid = next(p for p, st in site.seeded.items() if st == "ACTIVE")
        api.ok("add-alert", propertyId=pid, userId="owner1", reason="from the notify test")
        assert receiver.wait(lambda r: len(r.answered()) == 1, 15)
        got = receiver.answered()[0]
        expected = "sha256=" + hmac.new(secret_text.encode(), got["body"], hashlib.sha256).hexdigest()
        assert got["headers"]["X-Propsec-Signature"] == expected
        item.locator("[data-action=deliveries]").click()
        expect(item.locator(".delivery-log li.delivery-ok")).to_have_count(1, timeout=5000)
        expect(item.locator(".delivery-log")).to_contain_text("200")
        # the secret is never shown again
        page.reload()
        page.wait_for_selector("#connection-status[data-state=connected]")
        page.click("#tab-btn-notify")
        page.wait_for_selector("#tab-notify .webhook")
        assert secret_text not in page.content()
        shot(page, "notify-deliveries")
        assert not page.errors, page.errors
    finally:
        receiver.close()
