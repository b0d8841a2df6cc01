"""Stop and restart the server under an open dashboard: it must say so, come back on
its own and show what happened meanwhile exactly once (subscribe with `since`)."""
from __future__ import annotations

from collections import Counter

from dashboard_support import map_statuses, shot, wait_for


def feed_ids(page) -> list[int]:
    return [int(v) for v in page.eval_on_selector_all(
        "#event-feed > [data-event-id]", "els => els.map(e => e.dataset.eventId).filter(Boolean)")]


def test_restart_shows_reconnecting_then_replays_missed_events_once(site, open_page):
    page = open_page("staff1")
    active = [pid for pid, st in site.seeded.items() if st == "ACTIVE"]
    pending = [pid for pid, st in site.seeded.items() if st == "PENDING"]

    # something happens while the page watches, so it knows a last event id
    before = site.client("owner1")
    before.ok("add-alert", propertyId=active[0], userId="owner1", reason="before the restart")
    page.wait_for_selector('#event-feed > [data-event="events.alerts"]', timeout=5000)
    before.close()

    site.server.stop()
    page.wait_for_selector("#connection-status[data-state=reconnecting]", timeout=10000)
    shot(page, "staff-reconnecting")

    # keep the page away while the server is back and things happen: its reconnect
    # attempts start with an HTTP long-polling handshake, which we refuse for now
    page.route("**/socket.io/**", lambda route: route.abort())
    site.server.start()
    admin = site.client("admin1")
    device = site.client("owner1")
    device.ok("add-alert", propertyId=active[1], userId="owner1", reason="while away 1")
    admin.ok("change-property-status", propertyId=pending[0], status="ACTIVE")
    device.ok("add-alert", propertyId=active[2], userId="owner1", reason="while away 2")
    missed = admin.ok("get-events", since=0, limit=1000)["events"]
    missed_ids = [e["eventId"] for e in missed if e.get("reason", "").startswith("while away")
                  or (e["event"] == "events.property-status-change" and e["propertyId"] == pending[0])]
    assert len(missed_ids) == 3
    assert page.get_attribute("#connection-status", "data-state") in ("reconnecting", "disconnected")
    assert not set(missed_ids) & set(feed_ids(page)), "nothing may arrive while the page is cut off"

    page.unroute("**/socket.io/**")
    page.wait_for_selector("#connection-status[data-state=connected]", timeout=20000)
    assert wait_for(lambda: set(missed_ids) <= set(feed_ids(page)), 5), "missed events were not replayed"

    # and live events still flow afterwards
    device.ok("add-alert", propertyId=active[3], userId="owner1", reason="after the restart")
    page.wait_for_selector('#event-feed > [data-event="events.alerts"]:has-text("after the restart")', timeout=5000)

    counts = Counter(feed_ids(page))
    duplicates = {eid: n for eid, n in counts.items() if n > 1}
    assert not duplicates, f"events shown more than once: {duplicates}"
    for eid in missed_ids:
        assert counts[eid] == 1
    # the replayed changes were applied to the map too
    statuses = map_statuses(page)
    assert statuses[pending[0]] == "ACTIVE"
    for pid in (active[1], active[2], active[3]):
        assert page.locator(f'#map [data-property-id="{pid}"].alerting').count() == 1
    shot(page, "staff-after-reconnect")
    assert not page.errors, page.errors
