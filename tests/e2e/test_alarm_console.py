"""The alarm console and the first-look fixes of issue 12, in a real browser against a real
server: the queue's order and actions across dashboards, severity on the map, sound and
mute, toasts that never hide the queue, the feed or the panel, arming, allowed users' hours,
and each first-look bug with the test that would have caught it."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from dashboard_support import VIEWPORT, login, shot, wait_for

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@pytest.fixture
def staff_api(site):
    """A staff client; every unresolved alert is resolved first, so each test starts with an
    empty queue (the site is shared by the module)."""
    api = site.client("staff1")
    for alert in api.ok("get-open-alerts", limit=1000)["alerts"]:
        api.ok("resolve-alert", alertId=alert["id"], note="cleared before the next test")
    return api


def active(site, n=0) -> int:
    return [pid for pid, st in sorted(site.seeded.items()) if st == "ACTIVE"][n]


def queue(page) -> list[tuple[int, str, str]]:
    return [(int(a), s, st) for a, s, st in page.eval_on_selector_all(
        "#alert-queue > li", "els => els.map(e => [e.dataset.alertId, e.dataset.severity, e.dataset.state])")]


def boxes_overlap(a, b) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def open_panel(page, pid):
    """Search for the property and open its panel. The search reads the page's own store,
    which hears of a property just made through the API a moment later: search again until
    it is there (then the panel must open)."""
    panel = f'#property-panel:not([hidden])[data-property-id="{pid}"]'
    for _ in range(20):
        page.fill("#property-search", f"#{pid}")
        page.press("#property-search", "Enter")
        try:
            page.wait_for_selector(panel, timeout=1500)
            return
        except PlaywrightTimeout:
            continue
    page.wait_for_selector(panel)


def test_a_new_critical_alert_goes_above_an_older_medium_one_within_two_seconds(site, open_page, staff_api):
    page = open_page("staff1")
    expect(page.locator("#alert-queue")).to_be_visible()  # no clicks needed at 1440×900
    first, second = active(site, 0), active(site, 1)
    medium = staff_api.ok("add-alert", propertyId=first, userId="owner1", reason="gate ajar",
                          severity="medium")["id"]
    page.wait_for_selector(f'#alert-queue > [data-alert-id="{medium}"]', timeout=2000)
    device = site.client("owner1")
    started = time.monotonic()
    critical = device.ok("add-alert", propertyId=second, userId="owner1", reason="glass break",
                         severity="critical")["id"]
    page.wait_for_selector(f'#alert-queue > li:first-child[data-alert-id="{critical}"]', timeout=2000)
    assert time.monotonic() - started < 2.0
    assert queue(page) == [(critical, "critical", "open"), (medium, "medium", "open")]
    # the map shows each property's top open severity
    assert page.get_attribute(f'#map [data-property-id="{second}"]', "data-severity") == "critical"
    assert page.get_attribute(f'#map [data-property-id="{first}"]', "data-severity") == "medium"
    assert page.get_attribute(f'#map [data-property-id="{active(site, 2)}"]', "data-severity") == ""
    # a low alert on the critical property does not lower its mark
    device.ok("add-alert", propertyId=second, userId="owner1", severity="low")
    wait_for(lambda: len(queue(page)) == 3, 3)
    assert [s for _, s, _ in queue(page)] == ["critical", "medium", "low"]
    assert page.get_attribute(f'#map [data-property-id="{second}"]', "data-severity") == "critical"
    # filters narrow the queue without changing what the map shows
    page.select_option("#alarm-console select[name=min-severity]", "high")
    wait_for(lambda: len(queue(page)) == 1, 3)
    assert queue(page)[0][0] == critical
    page.select_option("#alarm-console select[name=min-severity]", "low")
    wait_for(lambda: len(queue(page)) == 3, 3)
    shot(page, "alarm-queue-1440x900")
    assert not page.errors, page.errors


def test_acknowledge_and_resolve_in_the_queue_update_every_open_dashboard(site, open_page, staff_api):
    one, two, owner = open_page("staff1"), open_page("admin1"), open_page("owner1")
    pid = active(site, 3)
    alert = staff_api.ok("add-alert", propertyId=pid, userId="owner1", reason="motion",
                         severity="high")["id"]
    item = f'#alert-queue > [data-alert-id="{alert}"]'
    for page in (one, two, owner):
        page.wait_for_selector(f"{item}[data-state=open]", timeout=3000)
    # owners see the alert but only security staff act on it
    assert owner.locator(f"{item} [data-action=acknowledge]").is_disabled()
    assert owner.locator(f"{item} [data-action=resolve]").count() == 0
    one.click(f"{item} [data-action=acknowledge]")
    for page in (one, two, owner):
        page.wait_for_selector(f"{item}[data-state=acknowledged]", timeout=3000)
        assert page.locator(f"{item} [data-action=acknowledge]").count() == 0
    # assign to me, then resolve with a note from the other dashboard
    one.click(f"{item} [data-action=assign]")
    one.click(f"{item} [data-action=assign-me]")
    two.wait_for_selector(f"{item} .tag:has-text('Sam Staff')", timeout=3000)
    two.click(f"{item} [data-action=resolve]")
    two.click(f"{item} [data-action=confirm-resolve]")  # an empty note is not sent
    assert two.locator(item).count() == 1
    two.fill(f"{item} textarea[name=note]", "neighbour's cat, checked on camera")
    two.click(f"{item} [data-action=confirm-resolve]")
    for page in (one, two, owner):
        page.wait_for_selector(item, state="detached", timeout=3000)
        page.wait_for_selector(f'#map [data-property-id="{pid}"][data-severity=""]', state="attached")
    feed = one.locator('#event-feed > [data-event="events.alert-resolved"]').first
    expect(feed).to_contain_text("neighbour's cat")
    for page in (one, two, owner):
        assert not page.errors, page.errors


def test_sound_on_high_and_critical_alerts_and_a_mute_that_is_remembered(site, open_page, staff_api):
    page = open_page("staff1")
    sounds = lambda: int(page.evaluate("document.body.dataset.alarmSounds || '0'"))  # noqa: E731
    pid = active(site, 4)
    staff_api.ok("add-alert", propertyId=pid, userId="owner1", severity="low")
    staff_api.ok("add-alert", propertyId=pid, userId="owner1", severity="critical")
    wait_for(lambda: len(queue(page)) == 2, 3)
    assert wait_for(lambda: sounds() == 1, 2), "one sound: for the critical alert, not the low one"
    page.click("#alarm-console [data-action=mute]")
    assert page.get_attribute("#alarm-console [data-action=mute]", "aria-pressed") == "true"
    staff_api.ok("add-alert", propertyId=pid, userId="owner1", severity="high")
    wait_for(lambda: len(queue(page)) == 3, 3)
    time.sleep(0.3)
    assert sounds() == 1
    page.reload()
    page.wait_for_selector("#connection-status[data-state=connected]")
    assert page.get_attribute("#alarm-console [data-action=mute]", "aria-pressed") == "true"
    page.click("#alarm-console [data-action=mute]")  # sound back on for the next dashboards
    assert not page.errors, page.errors


def test_toasts_never_cover_the_queue_the_feed_or_the_panel(site, open_page, staff_api):
    page = open_page("staff1")
    open_panel(page, active(site, 5))
    for n in range(7):
        staff_api.ok("add-alert", propertyId=active(site, n % 6), userId="owner1",
                     reason=f"burst {n}", severity="critical" if n % 2 else "high")
    wait_for(lambda: len(queue(page)) == 7, 3)
    page.wait_for_selector(".toast-more")
    toasts = page.locator("#toasts > .toast")
    assert toasts.count() <= 4, "three alert toasts at most, plus one line for the rest"
    guarded = {name: page.locator(sel).bounding_box() for name, sel in
               (("queue", "#alarm-console"), ("feed", "#tab-feed"), ("panel", "#property-panel"))}
    for i in range(toasts.count()):
        box = toasts.nth(i).bounding_box()
        for name, other in guarded.items():
            assert not boxes_overlap(box, other), f"a toast covers the {name}"
    shot(page, "toasts-beside-queue-and-panel")
    # keyboard: a toast's buttons are reachable, Escape dismisses it
    first = page.locator("#toasts > .toast-alert").first
    first.locator(".toast-close").focus()
    page.keyboard.press("Escape")
    wait_for(lambda: page.locator("#toasts > .toast-alert").count() == 2, 2)
    # the collapsed line leads to the queue
    page.click(".toast-more")
    assert page.locator(".toast-more").count() == 0
    assert page.evaluate("document.activeElement.closest('#alarm-console') !== null")
    assert not page.errors, page.errors


def test_arming_from_the_panel_sets_the_severity_of_an_unauthorized_entry(site, open_page, staff_api):
    owner, staff = open_page("owner1"), open_page("staff1")
    pid = active(site, 6)
    open_panel(owner, pid)
    open_panel(staff, pid)
    owner.click("#property-panel [data-field=armed] [data-mode=away]")
    for page in (owner, staff):
        page.wait_for_selector("#property-panel [data-field=armed][data-mode=away]", timeout=3000)
    staff.wait_for_selector('#event-feed > [data-event="events.arming-changed"]')
    entry = staff_api.ok("add-auth-entry", propertyId=pid, userId="burglar-7")
    staff.wait_for_selector(f'#alert-queue > li:first-child[data-alert-id="{entry["alertId"]}"][data-severity=critical]',
                            timeout=3000)
    staff.click("#property-panel [data-field=armed] [data-mode=disarmed]")
    owner.wait_for_selector("#property-panel [data-field=armed][data-mode=disarmed]", timeout=3000)
    for page in (owner, staff):
        assert not page.errors, page.errors


def test_an_owner_edits_an_allowed_users_hours(site, open_page):
    page = open_page("owner1")
    pid = active(site, 7)
    api = site.client("owner1")
    api.ok("add-allowed-user", propertyId=pid, userId="owner2")
    open_panel(page, pid)
    person = '#property-panel .section-allowed li[data-user-id="owner2"]'
    expect(page.locator(f"{person} [data-field=schedule]")).to_have_text("Any time")
    page.click(f"{person} [data-action=edit-schedule]")
    page.click(f"{person} [data-action=add-window]")  # Mon–Fri 08:00–18:00
    page.click(f"{person} [data-action=add-window]")
    second = page.locator(f"{person} .schedule-window").nth(1)
    for day in ("1", "2", "3", "4", "5"):
        second.locator(f"input[name=day][value='{day}']").uncheck()
    second.locator("input[name=day][value='6']").check()
    second.locator("input[name=from]").fill("22:00")
    second.locator("input[name=to]").fill("02:00")
    page.fill(f"{person} input[name=validUntil]", "2031-06-30T18:00")
    page.click(f"{person} [data-action=save-schedule]")
    expect(page.locator(f"{person} [data-field=schedule]")).to_have_text(
        "Mon–Fri 08:00–18:00; Sat 22:00–02:00 (next day) · until 2031-06-30 18:00", timeout=3000)
    [row] = api.ok("get-allowed-users", propertyId=pid)["allowedUserDetails"]
    assert row["schedule"] == [{"days": [1, 2, 3, 4, 5], "from": "08:00", "to": "18:00"},
                               {"days": [6], "from": "22:00", "to": "02:00"}]
    assert row["validUntil"] == "2031-06-30T18:00:00.000Z"  # the e2e site runs on UTC
    shot(page, "owner-allowed-hours")
    assert not page.errors, page.errors


# -- what a first look found ------------------------------------------------------------------

def test_after_approval_an_open_panel_lets_drones_be_dispatched(site, open_page):
    admin = open_page("admin1")
    owner = site.client("owner1")
    pid = int(owner.ok("add-property", location="5 Approval Walk", tier=1, x=600, y=0,
                       description="", clientId="owner1")["id"])
    owner.ok("add-equipment", propertyId=pid, equipmentType=2, description="")
    open_panel(admin, pid)
    drones = admin.locator("#property-panel .section-drones")
    expect(drones).to_contain_text("only to an active property")
    assert admin.locator("#property-panel [data-action=dispatch]").is_disabled()
    admin.click("#property-panel .section-admin [data-action=approve]")
    expect(drones).not_to_contain_text("only to an active property", timeout=3000)
    expect(admin.locator("#property-panel [data-action=dispatch]")).to_be_enabled()
    # and an empty description is shown as nothing, never as "null"
    for where in ("#property-panel", "#event-feed", "#alarm-console"):
        assert "null" not in admin.locator(where).inner_text()
    assert not admin.errors, admin.errors


def test_crimes_nearby_update_live(site, open_page, staff_api):
    page = open_page("staff1")
    here, neighbour = active(site, 0), active(site, 1)  # 40 m apart
    open_panel(page, here)
    note = page.locator("#property-panel .section-crimes .chart-note")
    expect(note).to_contain_text("within 500 m")
    before = int(note.inner_text().split()[0])
    staff_api.ok("add-crime", propertyId=neighbour, description="bike stolen")
    expect(note).to_contain_text(f"{before + 1} crime", timeout=3000)
    assert not page.errors, page.errors


def test_opening_and_closing_panels_keeps_the_zoom(site, open_page):
    page = open_page("staff1")
    zoom = lambda: page.evaluate("window.propsec.mapView.map.getZoom()")  # noqa: E731
    before = zoom()
    for pid in (active(site, 0), active(site, 2)):
        page.locator(f'#map [data-property-id="{pid}"]').click()
        page.wait_for_selector(f'#property-panel[data-property-id="{pid}"]')
        assert zoom() == before, "opening the panel must not zoom the map out"
        page.click("#property-panel .panel-close")
        assert zoom() == before
    # focusing from the search zooms in to a readable size, and names fit on the shapes
    open_panel(page, active(site, 0))
    time.sleep(0.8)
    assert zoom() >= before
    assert int(page.get_attribute("#map", "data-labels") or 0) > 0, "properties carry their names"
    shot(page, "focused-with-labels")
    assert not page.errors, page.errors


def test_the_admin_sees_an_overlap_and_is_asked_before_approving(site, open_page):
    admin = open_page("admin1")
    newcomer = site.client("owner2")
    target = active(site, 0)
    existing = site.client("admin1").ok("get-property", propertyId=target)["property"]
    pid = int(newcomer.ok("add-property", location="9 On Top Road", tier=1, x=existing["x"] + 5,
                          y=existing["y"] + 5, description="drawn over a neighbour",
                          clientId="owner2")["id"])
    admin.click("#tab-btn-queues")
    item = f'#queue-pending [data-property-id="{pid}"]'
    warning = admin.locator(f"{item} .overlap-warning")
    expect(warning).to_contain_text(existing["location"], timeout=3000)
    assert str(target) in warning.get_attribute("data-overlaps").split(",")
    time.sleep(1)  # the queue's refresh after the new property's event (a refresh resets a question)
    admin.click(f"{item} [data-action=approve]")
    expect(admin.locator(f"{item} [data-action=approve]")).to_have_text("Approve anyway, overlapping 1?")
    time.sleep(0.5)
    assert site.client("admin1").ok("get-property", propertyId=pid)["property"]["status"] == "PENDING"
    admin.click(f"{item} [data-action=approve]")
    admin.wait_for_selector(f'#map [data-property-id="{pid}"][data-status=ACTIVE]', state="attached",
                            timeout=3000)
    shot(admin, "admin-overlap-approved")
    assert not admin.errors, admin.errors


def test_phone_layout_shows_the_queue_and_keeps_toasts_off_it(site, browser, staff_api):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                              has_touch=True)
    try:
        page = ctx.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, site.url, "staff1")
        staff_api.ok("add-alert", propertyId=active(site, 0), userId="owner1", severity="critical",
                     reason="phone check")
        page.wait_for_selector("#alert-queue > li", timeout=3000)
        page.wait_for_selector("#toasts > .toast-alert")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways ({width}px)"
        toast = page.locator("#toasts > .toast-alert").first.bounding_box()
        assert not boxes_overlap(toast, page.locator("#alarm-console").bounding_box())
        shot(page, "staff-390x844")
        page.locator("#alarm-console").scroll_into_view_if_needed()
        shot(page, "staff-390x844-queue")
        assert not errors, errors
    finally:
        ctx.close()


def test_the_big_screen_at_1440x900(site, open_page, staff_api):
    assert VIEWPORT == {"width": 1440, "height": 900} or pytest.skip("another viewport was asked for")
    page = open_page("staff1")
    for n, sev in enumerate(("critical", "high", "medium", "low")):
        staff_api.ok("add-alert", propertyId=active(site, n), userId="owner1", severity=sev,
                     reason=f"{sev} check")
    wait_for(lambda: len(queue(page)) == 4, 3)
    open_panel(page, active(site, 0))
    time.sleep(0.8)
    queue_box = page.locator("#alarm-console").bounding_box()
    assert queue_box["y"] + queue_box["height"] <= 900, "the queue is in view without scrolling"
    shot(page, "staff-1440x900")


def test_a_fresh_demo_database_shows_its_seeded_alerts_on_the_map_and_in_the_feed(browser, tmp_path):
    # the first start of `python app.py` on an empty database seeds the demo site
    from dashboard_support import PASSWORD
    from live import LiveServer

    server = LiveServer(tmp_path, PROPSEC_SEED_DEMO="1").start()
    try:
        server.create_user("watcher", "staff", PASSWORD)
        ctx = browser.new_context(viewport=VIEWPORT)
        page = ctx.new_page()
        login(page, server.url, "watcher")
        token = server.create_user("watcher", "staff")
        from dashboard_support import ApiClient

        api = ApiClient(server.url, token)
        marked = {p["id"]: p["topSeverity"] for p in api.ok("get-map")["properties"] if p["openAlerts"]}
        unresolved = api.ok("get-open-alerts", limit=1000)["alerts"]
        api.close()
        assert marked and unresolved, "the demo seeds a few open alerts"
        page.wait_for_selector("#event-feed > li", timeout=5000)
        assert page.inner_text("#feed-summary") != "Waiting for events…"
        shown = dict(page.eval_on_selector_all(
            '#map [data-property-id]:not([data-severity=""])',
            "els => els.map(e => [Number(e.dataset.propertyId), e.dataset.severity])"))
        assert shown == marked
        wait_for(lambda: len(queue(page)) == len(unresolved), 3)
        assert [a for a, _, _ in queue(page)] == [a["id"] for a in unresolved]
        ctx.close()
    finally:
        server.stop()



def test_a_half_written_resolution_note_survives_new_events(site, open_page, staff_api):
    page = open_page("staff1")
    pid = active(site, 4)
    alert = staff_api.ok("add-alert", propertyId=pid, userId="owner1", reason="smoke",
                         severity="high")["id"]
    page.wait_for_selector(f'#alert-queue > [data-alert-id="{alert}"]', timeout=3000)
    # (the feed may draw a moment after the queue: wait for this property's line)
    line = f'#event-feed > [data-event="events.alerts"][data-property-id="{pid}"]'
    page.wait_for_selector(line, timeout=3000)
    page.locator(line).first.click()
    page.wait_for_selector(f'#property-panel[data-property-id="{pid}"]')
    item = f'#property-panel [data-alert-id="{alert}"]'
    page.click(f"{item} [data-action=resolve]")
    page.fill(f"{item} textarea[name=note]", "fire brigade on the way")
    # more alerts on the property: the panel is drawn again while the note is being written
    for n in range(3):
        staff_api.ok("add-alert", propertyId=pid, userId="owner1", reason=f"smoke {n}")
    page.wait_for_function(
        """n => document.querySelectorAll('#event-feed > [data-event="events.alerts"]').length >= n""",
        arg=4)
    page.wait_for_timeout(500)
    note = page.locator(f"{item} textarea[name=note]")
    expect(note).to_be_visible()
    expect(note).to_have_value("fire brigade on the way")
    page.click(f"{item} [data-action=confirm-resolve]")
    page.wait_for_selector(f'#alert-queue > [data-alert-id="{alert}"]', state="detached", timeout=3000)
    assert not page.errors, page.errors
