"""The dashboard in a real browser against a real server (issue 3's end-to-end tests)."""
from __future__ import annotations

import time

from playwright.sync_api import expect

from dashboard_support import map_statuses, shot


def assert_layout(page, panel=False):
    """Map, (panel,) sidebar side by side, filling the window: nothing overlaps, no gap."""
    width = page.viewport_size["width"]
    boxes = {name: page.locator(sel).bounding_box() for name, sel in
             (("map", "#map"), ("panel", "#property-panel"), ("sidebar", ".sidebar"))}
    assert boxes["map"]["x"] == 0 and boxes["map"]["width"] > 300
    assert abs(boxes["sidebar"]["x"] + boxes["sidebar"]["width"] - width) < 2, boxes
    right_of_map = boxes["panel"] if panel else boxes["sidebar"]
    assert abs(boxes["map"]["x"] + boxes["map"]["width"] - right_of_map["x"]) < 2, boxes
    if panel:
        assert abs(boxes["panel"]["x"] + boxes["panel"]["width"] - boxes["sidebar"]["x"]) < 2, boxes
    else:
        assert boxes["panel"] is None  # hidden


def test_staff_sees_every_seeded_property_with_its_status(site, open_page):
    page = open_page("staff1")
    drawn = map_statuses(page)
    assert drawn == site.seeded, "the map must draw exactly the visible properties, each with its status"
    assert_layout(page)
    # the hook elements are the drawn shapes themselves: visible and clickable
    some_pid = next(pid for pid, st in site.seeded.items() if st == "PENDING")
    shape = page.locator(f'#map [data-property-id="{some_pid}"]')
    assert shape.is_visible()
    shape.click()
    page.wait_for_selector('#property-panel:not([hidden]) [data-field="location"]')
    assert page.text_content('#property-panel [data-field="location"]').strip().endswith("Test Lane")
    expect(page.locator("#property-panel [data-field=owner]")).to_contain_text("owner1")
    time.sleep(0.6)  # let the panel's charts settle before the picture
    assert_layout(page, panel=True)
    shot(page, "staff-map-and-panel")
    # the panel sits beside the map, never over it: every shape stays clickable
    for pid in sorted(site.seeded, reverse=True)[:3]:
        page.locator(f'#map [data-property-id="{pid}"]').click(timeout=5000)
        page.wait_for_selector(f'#property-panel[data-property-id="{pid}"]')
    # the queues of a staff member list what waits for approval / removal
    page.click("#tab-btn-queues")
    page.wait_for_selector(f'#queue-pending [data-property-id="{some_pid}"]')
    removal = next(pid for pid, st in site.seeded.items() if st == "REMOVAL_REQUESTED")
    page.wait_for_selector(f'#queue-removal [data-property-id="{removal}"]')
    assert page.locator("#queue-pending [data-action=approve]").count() == 0, "staff may not approve"
    page.fill("#queue-pending input[type=search]", "no such place")
    page.wait_for_selector("#queue-pending li.empty")
    shot(page, "staff-queues")
    assert not page.errors, page.errors


def test_alert_from_another_client_reaches_feed_and_map_within_two_seconds(site, open_page):
    page = open_page("staff1")
    target = next(pid for pid, st in site.seeded.items() if st == "ACTIVE")
    assert not page.locator(f'#map [data-property-id="{target}"].alerting').count()
    device = site.client("owner1")
    started = time.monotonic()
    created = device.ok("add-alert", propertyId=target, userId="owner1", reason="door forced")
    line = f'#event-feed > [data-event="events.alerts"][data-property-id="{target}"]'
    page.wait_for_selector(line, timeout=2000)
    page.wait_for_selector(f'#map [data-property-id="{target}"].alerting', state="attached", timeout=2000)
    page.wait_for_selector(f'.alert-pulse[data-alert-property-id="{target}"]', state="attached", timeout=2000)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"alert took {elapsed:.2f}s to show"
    item = page.locator(line).first
    assert item.get_attribute("data-event-id").isdigit()
    assert "door forced" in item.inner_text()
    assert page.locator(".toast").count() >= 1, "an alert raises a toast"
    shot(page, "staff-alert-live")
    # clicking the feed line opens that property; staff can acknowledge the alert there
    item.click()
    page.wait_for_selector(f'#property-panel[data-property-id="{target}"]')
    ack = page.locator(f'#property-panel [data-alert-id="{created["id"]}"] [data-action=acknowledge]')
    ack.click()
    page.wait_for_selector('#event-feed > [data-event="events.alert-acknowledged"]', timeout=5000)
    # acknowledged is still unresolved: the map keeps its mark until someone resolves it
    page.wait_for_selector(f'#alert-queue > [data-alert-id="{created["id"]}"][data-state=acknowledged]')
    assert page.get_attribute(f'#map [data-property-id="{target}"]', "data-severity") == "high"
    page.click(f'#property-panel [data-alert-id="{created["id"]}"] [data-action=resolve]')
    page.fill(f'#property-panel [data-alert-id="{created["id"]}"] textarea[name=note]', "door was left open")
    page.click(f'#property-panel [data-alert-id="{created["id"]}"] [data-action=confirm-resolve]')
    page.wait_for_selector(f'#map [data-property-id="{target}"][data-severity=""]', state="attached",
                           timeout=5000)
    assert not page.locator(f'#map [data-property-id="{target}"].alerting').count()
    # the queue redraws on the next animation frame, a moment after the map
    page.wait_for_selector(f'#alert-queue > [data-alert-id="{created["id"]}"]', state="detached",
                           timeout=2000)
    assert not page.errors, page.errors


def test_owner_adds_property_staff_sees_it_admin_approves_both_recolour(site, open_page):
    owner = open_page("owner2")
    staff = open_page("staff1")
    admin = open_page("admin1")
    assert map_statuses(owner) == {}, "a new owner sees no properties of others"

    owner.click("#add-property-button")
    box = owner.locator("#map").bounding_box()
    owner.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5)
    owner.wait_for_selector("#add-property form")
    owner.fill("#add-property input[name=location]", "77 Brand New Road")
    owner.fill("#add-property textarea[name=description]", "added from the browser")
    shot(owner, "owner-add-form")
    owner.click("#add-property button[type=submit]")
    owner.wait_for_selector('#property-panel:not([hidden])[data-property-id]')
    pid = int(owner.get_attribute("#property-panel", "data-property-id"))
    owner.wait_for_selector(f'#map [data-property-id="{pid}"][data-status="PENDING"]', state="attached")
    assert owner.text_content('#property-panel [data-field="location"]').strip() == "77 Brand New Road"

    staff.wait_for_selector(f'#map [data-property-id="{pid}"][data-status="PENDING"]', state="attached",
                            timeout=5000)
    staff.wait_for_selector('#event-feed > [data-event="events.property-added"]', timeout=5000)

    admin.click("#tab-btn-queues")
    admin.fill("#queue-pending input[type=search]", "Brand New")
    admin.wait_for_selector(f'#queue-pending [data-property-id="{pid}"] [data-action=approve]')
    expect(admin.locator("#queue-pending li.queue-item")).to_have_count(1)  # the search narrowed it
    shot(admin, "admin-queue")
    admin.click(f'#queue-pending [data-property-id="{pid}"] [data-action=approve]')

    for page in (owner, staff, admin):
        page.wait_for_selector(f'#map [data-property-id="{pid}"][data-status="ACTIVE"]', state="attached",
                               timeout=5000)
    expect(owner.locator('#property-panel [data-field="status"]')).to_have_text("Active", timeout=5000)
    shot(owner, "owner-approved")
    shot(staff, "staff-after-approval")
    for page in (owner, staff, admin):
        assert not page.errors, page.errors


def test_search_finds_and_focuses_a_property(site, open_page):
    page = open_page("admin1")
    pid, status = next((p, s) for p, s in site.seeded.items() if s == "INACTIVE")
    page.fill("#property-search", f"#{pid}")
    page.wait_for_selector(f'#search-results li[data-property-id="{pid}"]')
    page.press("#property-search", "Enter")
    page.wait_for_selector(f'#property-panel:not([hidden])[data-property-id="{pid}"]')
    page.wait_for_selector(f'#map [data-property-id="{pid}"].selected', state="attached")
    # admin controls are there for an admin
    page.wait_for_selector("#property-panel .section-admin select[name=status]")
    time.sleep(0.8)  # the fly-to animation
    shot(page, "admin-search-focus")
    assert not page.errors, page.errors


def test_error_envelope_is_shown_next_to_the_action(site, open_page):
    page = open_page("staff1")
    pid = next(p for p, s in site.seeded.items() if s == "ACTIVE")
    page.fill("#property-search", f"#{pid}")
    page.press("#property-search", "Enter")
    panel = page.locator(f'#property-panel[data-property-id="{pid}"]')
    panel.wait_for()
    # a second equipment description longer than the contract allows is refused by the server
    page.wait_for_selector("#property-panel .section-equipment input[name=description]")
    page.eval_on_selector("#property-panel .section-equipment input[name=description]",
                          "el => { el.removeAttribute('maxlength'); el.value = 'x'.repeat(2100); }")
    page.click("#property-panel .section-equipment button.btn-primary")
    msg = page.locator("#property-panel .section-equipment > .action-msg.is-error")
    msg.wait_for(timeout=5000)
    assert "description" in msg.inner_text().lower()
    shot(page, "staff-error-message")
