"""Alerts, visitors, crimes and entries (contract section 6), from the contract. Counting
queries are checked against backdated rows put straight into the database."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from helpers import (ALERT, ISO_UTC, ago, expect, expect_error, expect_refused, has_shape, ids,
                     insert, now)
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)

from propsec.models import ACTIVE, Alert, AuthEntry, Crime, Property, Visit

MISSING = 999_999


def alerts_of(client, pid, **data) -> list[dict]:
    alerts = expect(client.call("get-alerts", propertyId=pid, **data), "data", "alerts")["alerts"]
    assert all(has_shape(alert, ALERT) and ISO_UTC.match(alert["timestamp"]) for alert in alerts)
    return alerts


def entries_of(client, pid, **data) -> list[dict]:
    entries = expect(client.call("get-auth-entries", propertyId=pid, **data), "data",
                     "authEntries")["authEntries"]
    assert all({"user_id", "timestamp", "authorized"} <= e.keys() for e in entries)
    assert all(ISO_UTC.match(e["timestamp"]) for e in entries)
    return entries


# --- alerts -------------------------------------------------------------------------------

def test_add_alert_raises_an_alert(clients, site):
    owner = clients["owner"]
    alert_id = expect(owner.call("add-alert", propertyId=str(site["p1"]), userId="owner",
                                 reason="window broken"), "success", "id")["id"]
    [alert] = alerts_of(owner, site["p1"])
    assert alert == {**alert, "id": alert_id, "userId": "owner", "reason": "window broken",
                     "acknowledgedBy": None, "acknowledgedAt": None}


def test_add_alert_reason_is_optional(clients, site):
    expect(clients["owner"].call("add-alert", propertyId=site["p1"], userId="owner"), "success",
           "id")
    assert len(alerts_of(clients["owner"], site["p1"])) == 1


@pytest.mark.parametrize("field, value", [("reason", "r" * 201), ("userId", ""),
                                          ("userId", None), ("userId", 7)])
def test_add_alert_validates_its_fields(clients, site, field, value):
    data = {"propertyId": site["p1"], "userId": "owner", "reason": "", field: value}
    expect_error(clients["owner"].call("add-alert", data), "validation_error", field)
    assert alerts_of(clients["owner"], site["p1"]) == []


def test_alerts_of_another_owner_are_refused(clients, site):
    expect_refused(clients["neighbour"].call("add-alert", propertyId=site["p1"],
                                             userId="neighbour"))
    expect_refused(clients["neighbour"].call("get-alerts", propertyId=site["p1"]))
    expect_error(clients["staff"].call("get-alerts", propertyId=MISSING), "not_found")
    assert alerts_of(clients["owner"], site["p1"]) == []


def test_get_alerts_is_newest_first_and_limited(app, clients, site):
    rows = [Alert(property_id=site["p1"], user_id="cam", reason=f"r{n}", timestamp=ago(hours=n))
            for n in range(105)]
    made = insert(app, *rows, Alert(property_id=site["p2"], user_id="cam", reason="theirs"))
    own = sorted(made[:-1], reverse=True)
    assert ids(alerts_of(clients["owner"], site["p1"])) == own[:100]
    assert ids(alerts_of(clients["owner"], site["p1"], limit=3)) == own[:3]
    expect_error(clients["owner"].call("get-alerts", propertyId=site["p1"], limit=0),
                 "validation_error", "limit")


def test_acknowledge_alert_records_who_and_when(clients, site):
    alert_id = clients["owner"].ok("add-alert", propertyId=site["p1"], userId="owner")["id"]
    expect(clients["staff"].call("acknowledge-alert", alertId=str(alert_id)), "success")
    [alert] = alerts_of(clients["owner"], site["p1"])
    assert alert["acknowledgedBy"] == "staff"
    assert ISO_UTC.match(alert["acknowledgedAt"])


def test_acknowledging_twice_is_a_conflict(clients, site):
    alert_id = clients["owner"].ok("add-alert", propertyId=site["p1"], userId="owner")["id"]
    clients["staff"].ok("acknowledge-alert", alertId=alert_id)
    expect_error(clients["admin"].call("acknowledge-alert", alertId=alert_id), "conflict")
    assert alerts_of(clients["owner"], site["p1"])[0]["acknowledgedBy"] == "staff"


def test_acknowledge_alert_errors(clients, site):
    alert_id = clients["owner"].ok("add-alert", propertyId=site["p1"], userId="owner")["id"]
    expect_error(clients["owner"].call("acknowledge-alert", alertId=alert_id), "forbidden")
    expect_error(clients["staff"].call("acknowledge-alert", alertId=MISSING), "not_found")
    expect_error(clients["staff"].call("acknowledge-alert", alertId=True), "validation_error",
                 "alertId")
    assert alerts_of(clients["owner"], site["p1"])[0]["acknowledgedBy"] is None


# --- visitors -----------------------------------------------------------------------------

def test_add_visitor_records_a_visit(clients, site):
    staff = clients["staff"]
    expect(staff.call("add-visitor", userId="visitor-1", propertyId=site["p1"],
                      cameraId=str(site["camera"])), "success", "id")
    visitors = expect(staff.call("get-weekly-visitors", propertyId=site["p1"]), "data",
                      "visitors")["visitors"]
    assert visitors == ["visitor-1"]


@pytest.mark.parametrize("camera", ["drone", "other_camera", "missing"])
def test_add_visitor_needs_a_camera_of_that_property(clients, site, camera):
    camera_id = {"drone": site["drones"][0], "other_camera": site["other_camera"],
                 "missing": MISSING}[camera]
    expect_error(clients["staff"].call("add-visitor", userId="v", propertyId=site["p1"],
                                       cameraId=camera_id), "validation_error", "cameraId")
    assert clients["staff"].ok("get-weekly-visitors", propertyId=site["p1"])["visitors"] == []


def test_add_visitor_errors(clients, site):
    data = {"userId": "v", "propertyId": site["p1"], "cameraId": site["camera"]}
    expect_error(clients["owner"].call("add-visitor", data), "forbidden")
    expect_error(clients["staff"].call("add-visitor", {**data, "propertyId": MISSING}),
                 "not_found")
    expect_error(clients["staff"].call("add-visitor", {**data, "userId": 5}),
                 "validation_error", "userId")


def test_get_weekly_visitors_is_distinct_recent_first_and_seven_days(app, clients, site):
    def visit(user, days, pid=site["p1"], camera=site["camera"]):
        return Visit(property_id=pid, camera_id=camera, user_id=user, timestamp=ago(days=days))

    # oldest first, as devices would report them
    insert(app, visit("dave", 8), visit("carol", 6.5), visit("alice", 3), visit("bob", 2),
           visit("alice", 1), visit("erin", 1, site["p2"], site["other_camera"]))
    owner = clients["owner"]
    weekly = expect(owner.call("get-weekly-visitors", propertyId=site["p1"]), "data", "visitors")
    assert weekly["visitors"] == ["alice", "bob", "carol"]
    clients["staff"].ok("add-visitor", userId="bob", propertyId=site["p1"], cameraId=site["camera"])
    assert owner.ok("get-weekly-visitors", propertyId=site["p1"])["visitors"] == \
        ["bob", "alice", "carol"]


def test_get_weekly_visitors_errors(clients, site):
    expect_refused(clients["neighbour"].call("get-weekly-visitors", propertyId=site["p1"]))
    expect_error(clients["staff"].call("get-weekly-visitors", propertyId=MISSING), "not_found")


def day(offset: int) -> date:
    return now().date() - timedelta(days=offset)


def at(d: date, clock: time = time(12)) -> datetime:
    return datetime.combine(d, clock)


def scanned(client, pid, start: date, end: date) -> list[tuple[str, int]]:
    data = expect(client.call("get-scanned-visitors", propertyId=pid, **{
        "from": start.isoformat(), "to": end.isoformat()}), "data", "visitors")
    return [(item["day"], item["count"]) for item in data["visitors"]]


def test_get_scanned_visitors_counts_per_day_with_zeros(app, clients, site):
    def visit(when, pid=site["p1"], camera=site["camera"]):
        return Visit(property_id=pid, camera_id=camera, user_id="v", timestamp=when)

    insert(app, visit(at(day(1))), visit(at(day(1), time(23, 59, 59))), visit(at(day(3), time(0))),
           visit(at(day(5))), visit(at(day(1)), site["p2"], site["other_camera"]))
    assert scanned(clients["owner"], site["p1"], day(4), day(1)) == [
        (day(4).isoformat(), 0), (day(3).isoformat(), 1), (day(2).isoformat(), 0),
        (day(1).isoformat(), 2)]
    assert scanned(clients["owner"], site["p1"], day(5), day(5)) == [(day(5).isoformat(), 1)]


def test_get_scanned_visitors_allows_a_year(clients, site):
    counts = scanned(clients["owner"], site["p1"], day(365), day(0))
    assert len(counts) == 366 and counts[0] == (day(365).isoformat(), 0)


@pytest.mark.parametrize("start, end, field", [
    ("2025-01-01", "2026-01-02", None),     # 366 days apart
    ("2025-01-10", "2025-01-01", None),     # backwards
    ("2025/01/01", "2025-01-02", "from"),
    ("2025-01-01", "2025-02-30", "to"),
    ("2025-01-01", 20250102, "to"),
])
def test_get_scanned_visitors_validates_the_range(clients, site, start, end, field):
    envelope = clients["owner"].call("get-scanned-visitors", propertyId=site["p1"],
                                     **{"from": start, "to": end})
    expect_error(envelope, "validation_error", field)
    if field is None:
        assert {"from", "to"} & envelope["data"].get("fields", {}).keys(), envelope


def test_get_scanned_visitors_of_another_owner_is_refused(clients, site):
    expect_refused(clients["neighbour"].call("get-scanned-visitors", propertyId=site["p1"],
                                             **{"from": "2025-01-01", "to": "2025-01-02"}))


# --- crimes -------------------------------------------------------------------------------

@pytest.fixture
def crimes(app, site):
    """Crimes at P1 (centre 10,10), P2 (centre 110,10, 100 m away) and a far property
    (centre 5010,10): day 1 is the last 24 hours, day 2 the 24 before, and so on."""
    with app.app_context():
        far = Property(owner_id="neighbour", location="Far Farm", tier_id=1, x=5000, y=0,
                       width=20, height=20, status=ACTIVE, description="")
    [far_id] = insert(app, far)
    places = {site["p1"]: (10, 10), site["p2"]: (110, 10), far_id: (5010, 10)}

    def crime(pid, hours):
        x, y = places[pid]
        return Crime(property_id=pid, reporter_id="staff", description="", x=x, y=y,
                     timestamp=ago(hours=hours))

    insert(app, crime(site["p1"], 12), crime(site["p1"], 13), crime(site["p1"], 36),
           crime(site["p1"], 84), crime(site["p2"], 60), crime(far_id, 12), crime(far_id, 36))
    return {**site, "far": far_id}


def crime_counts(client, **data) -> list[int]:
    items = expect(client.call("get-crimes-in-area", data), "data", "crimes")["crimes"]
    assert [item["day"] for item in items] == list(range(1, len(items) + 1)), items
    return [item["count"] for item in items]


def test_get_crimes_in_area_without_a_centre_counts_the_whole_site(clients, crimes):
    assert crime_counts(clients["owner"]) == [3, 2, 1]
    assert crime_counts(clients["owner"], days=5) == [3, 2, 1, 1, 0]
    assert crime_counts(clients["owner"], days=1) == [3]


def test_get_crimes_in_area_around_a_property_uses_1000_m_by_default(clients, crimes):
    assert crime_counts(clients["owner"], propertyId=crimes["p1"]) == [2, 1, 1]
    assert crime_counts(clients["owner"], propertyId=str(crimes["p1"]), radius=50) == [2, 1, 0]
    assert crime_counts(clients["owner"], propertyId=crimes["p1"], radius=10_000) == [3, 2, 1]


def test_get_crimes_in_area_around_a_point(clients, crimes):
    assert crime_counts(clients["staff"], x=5000, y=0) == [1, 1, 0]
    assert crime_counts(clients["staff"], x=100, y=0, radius=20) == [0, 0, 1]


@pytest.mark.parametrize("field, value", [("days", 0), ("days", 31), ("days", True),
                                          ("radius", -1), ("x", "east")])
def test_get_crimes_in_area_validates(clients, crimes, field, value):
    data = {"x": 0, "y": 0, field: value}
    expect_error(clients["owner"].call("get-crimes-in-area", data), "validation_error", field)


def test_get_crimes_in_area_around_a_missing_property_is_not_found(clients, crimes):
    expect_error(clients["owner"].call("get-crimes-in-area", propertyId=MISSING), "not_found")


def test_add_crime_is_counted_today_and_reported_by_the_caller(clients, site):
    staff = clients["staff"]
    before = crime_counts(staff, propertyId=site["p1"], days=1)
    expect(staff.call("add-crime", propertyId=site["p1"], description="bike stolen"),
           "success", "id")
    expect(staff.call("add-crime", propertyId=site["p1"], clientId="owner"), "success", "id")
    assert crime_counts(staff, propertyId=site["p1"], days=1) == [before[0] + 2]
    logged = staff.ok("get-events", event="events.crimes")["events"]
    assert [e["clientId"] for e in logged] == ["staff", "owner"]


def test_add_crime_errors(clients, site):
    expect_error(clients["owner"].call("add-crime", propertyId=site["p1"]), "forbidden")
    expect_error(clients["staff"].call("add-crime", propertyId=MISSING), "not_found")
    expect_error(clients["staff"].call("add-crime", propertyId=site["p1"],
                                       description="d" * 2001), "validation_error", "description")
    assert crime_counts(clients["staff"]) == [0, 0, 0]


# --- entries ------------------------------------------------------------------------------

@pytest.mark.parametrize("user, authorized", [("owner", True), ("neighbour", True),
                                              ("stranger", False)])
def test_add_auth_entry_decides_authorization(clients, site, user, authorized):
    clients["owner"].ok("add-allowed-user", propertyId=site["p1"], userId="neighbour")
    result = expect(clients["staff"].call("add-auth-entry", propertyId=site["p1"], userId=user),
                    "success", "authorized")
    assert result["authorized"] is authorized
    [entry] = entries_of(clients["owner"], site["p1"])
    assert (entry["user_id"], entry["authorized"]) == (user, authorized)


def test_an_unauthorized_entry_raises_an_alert(clients, site):
    staff = clients["staff"]
    staff.ok("add-auth-entry", propertyId=site["p1"], userId="owner")
    assert alerts_of(staff, site["p1"]) == []
    staff.ok("add-auth-entry", propertyId=site["p1"], userId="stranger")
    [alert] = alerts_of(staff, site["p1"])
    assert (alert["userId"], alert["reason"]) == ("stranger", "unauthorized-entry")


def test_add_auth_entry_errors(clients, site):
    expect_error(clients["owner"].call("add-auth-entry", propertyId=site["p1"], userId="x"),
                 "forbidden")
    expect_error(clients["staff"].call("add-auth-entry", propertyId=MISSING, userId="x"),
                 "not_found")
    expect_error(clients["staff"].call("add-auth-entry", propertyId=site["p1"]),
                 "validation_error", "userId")
    assert entries_of(clients["owner"], site["p1"]) == []


def test_get_auth_entries_is_newest_first_and_limited(app, clients, site):
    rows = [AuthEntry(property_id=site["p1"], user_id=f"u{n}", authorized=n % 2 == 0,
                      timestamp=ago(minutes=n)) for n in range(103)]
    insert(app, *rows, AuthEntry(property_id=site["p2"], user_id="theirs", authorized=True))
    owner = clients["owner"]
    newest = [f"u{n}" for n in range(102, -1, -1)]
    # newest first by id: the last row inserted comes first
    assert [e["user_id"] for e in entries_of(owner, site["p1"])] == newest[:100]
    top = entries_of(owner, site["p1"], limit=2)
    assert [(e["user_id"], e["authorized"]) for e in top] == [("u102", True), ("u101", False)]


def test_get_auth_entries_errors(clients, site):
    expect_refused(clients["neighbour"].call("get-auth-entries", propertyId=site["p1"]))
    expect_error(clients["owner"].call("get-auth-entries", propertyId=site["p1"], limit=1001),
                 "validation_error", "limit")
