"""The alert lifecycle of contract section 13 (v2): severity, open → acknowledged → resolved,
assignment, the queue of open alerts, and the map's open-alert marks. In-process, on every
configured database."""
from __future__ import annotations

import pytest
from helpers import ALERT, ago, expect, expect_error, insert
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)

from propsec.models import Alert

V2_ALERT = ALERT | {"propertyId", "severity", "state", "assignee", "resolvedBy", "resolvedAt",
                    "note", "escalationLevel"}


def raise_alert(client, pid, **fields) -> int:
    return expect(client.call("add-alert", propertyId=pid, userId="owner", **fields),
                  "success", "id")["id"]


def the_alert(client, pid, alert_id) -> dict:
    alerts = expect(client.call("get-alerts", propertyId=pid), "data")["alerts"]
    [alert] = [a for a in alerts if a["id"] == alert_id]
    assert V2_ALERT <= alert.keys(), alert
    return alert


def open_queue(client, **data) -> list[dict]:
    return expect(client.call("get-open-alerts", data), "data", "alerts")["alerts"]


def test_severity_defaults_to_high_and_is_carried_by_alert_and_event(clients, site):
    owner, staff = clients["owner"], clients["staff"]
    expect(staff.call("subscribe", {"id": "events.alerts"}), "status")
    default = raise_alert(owner, site["p1"])
    critical = raise_alert(owner, site["p1"], severity="critical")
    alert = the_alert(owner, site["p1"], default)
    assert alert == {
        **alert, "severity": "high", "state": "open",
        "propertyId": site["p1"], "assignee": None, "resolvedBy": None, "resolvedAt": None,
        "note": None, "escalationLevel": 0}
    assert the_alert(owner, site["p1"], critical)["severity"] == "critical"
    events = [p for _, p in staff.events("events.alerts")]
    assert [(e["alertId"], e["severity"]) for e in events] == [(default, "high"),
                                                               (critical, "critical")]


@pytest.mark.parametrize("value", ["urgent", "", 3, None, ["high"]])
def test_an_unknown_severity_is_a_validation_error(clients, site, app, value):
    answer = clients["owner"].call("add-alert", propertyId=site["p1"], userId="owner",
                                   severity=value)
    expect_error(answer, "validation_error", "severity")
    assert open_queue(clients["staff"]) == []


def test_acknowledge_only_an_open_alert(clients, site):
    staff = clients["staff"]
    alert_id = raise_alert(clients["owner"], site["p1"])
    expect(staff.call("acknowledge-alert", alertId=alert_id), "success")
    alert = the_alert(staff, site["p1"], alert_id)
    assert (alert["state"], alert["acknowledgedBy"]) == ("acknowledged", "staff")
    expect_error(staff.call("acknowledge-alert", alertId=alert_id), "conflict")
    resolved = raise_alert(clients["owner"], site["p1"])
    expect(staff.call("resolve-alert", alertId=resolved, note="done"), "success")
    expect_error(staff.call("acknowledge-alert", alertId=resolved), "conflict")


def test_assign_to_staff_and_admins_only_until_resolved(clients, site):
    staff = clients["staff"]
    expect(staff.call("subscribe", {"id": "events.alert-assigned"}), "status")
    alert_id = raise_alert(clients["owner"], site["p1"])
    expect(staff.call("assign-alert", alertId=alert_id, userId="admin"), "success")
    assert the_alert(staff, site["p1"], alert_id)["assignee"] == "admin"
    [event] = [p for _, p in staff.events("events.alert-assigned")]
    assert event == {**event, "propertyId": site["p1"], "alertId": alert_id,
                          "user": "staff", "assignee": "admin"}
    for who in ("owner", "nobody-at-all"):
        expect_error(staff.call("assign-alert", alertId=alert_id, userId=who),
                     "validation_error", "userId")
    assert the_alert(staff, site["p1"], alert_id)["assignee"] == "admin"  # unchanged
    expect_error(clients["owner"].call("assign-alert", alertId=alert_id, userId="staff"),
                 "forbidden")
    expect(staff.call("resolve-alert", alertId=alert_id, note="false alarm"), "success")
    expect_error(staff.call("assign-alert", alertId=alert_id, userId="staff"), "conflict")
    expect_error(staff.call("assign-alert", alertId=999_999, userId="staff"), "not_found")


def test_resolving_an_open_alert_also_acknowledges_it_and_it_never_changes_again(clients, site):
    staff = clients["staff"]
    expect(staff.call("subscribe", {"id": "events.alert-resolved"}), "status")
    alert_id = raise_alert(clients["owner"], site["p1"])
    expect(staff.call("resolve-alert", alertId=alert_id, note="checked: a fox"), "success")
    alert = the_alert(staff, site["p1"], alert_id)
    assert alert["state"] == "resolved" and alert["note"] == "checked: a fox"
    assert alert["resolvedBy"] == alert["acknowledgedBy"] == "staff"
    assert alert["resolvedAt"] == alert["acknowledgedAt"] is not None
    [event] = [p for _, p in staff.events("events.alert-resolved")]
    assert event == {**event, "propertyId": site["p1"], "alertId": alert_id,
                          "user": "staff", "note": "checked: a fox"}
    expect_error(staff.call("resolve-alert", alertId=alert_id, note="again"), "conflict")
    expect_error(clients["admin"].call("resolve-alert", alertId=alert_id, note="x"), "conflict")
    assert the_alert(staff, site["p1"], alert_id) == alert


def test_resolving_an_acknowledged_alert_keeps_who_acknowledged_it(clients, site):
    alert_id = raise_alert(clients["owner"], site["p1"])
    expect(clients["staff"].call("acknowledge-alert", alertId=alert_id), "success")
    expect(clients["admin"].call("resolve-alert", alertId=alert_id, note="ok"), "success")
    alert = the_alert(clients["admin"], site["p1"], alert_id)
    assert (alert["acknowledgedBy"], alert["resolvedBy"]) == ("staff", "admin")


@pytest.mark.parametrize("note", ["", "x" * 2001, 5, None])
def test_a_resolution_needs_a_note_of_1_to_2000_characters(clients, site, note):
    staff = clients["staff"]
    alert_id = raise_alert(clients["owner"], site["p1"])
    expect_error(staff.call("resolve-alert", alertId=alert_id, note=note), "validation_error",
                 "note")
    assert the_alert(staff, site["p1"], alert_id)["state"] == "open"
    expect(staff.call("resolve-alert", alertId=alert_id, note="x" * 2000), "success")


def test_open_alerts_highest_severity_first_then_oldest(app, clients, site):
    older_medium, older_critical = insert(
        app, Alert(property_id=site["p1"], user_id="owner", reason="a", timestamp=ago(hours=2),
                   severity=1),
        Alert(property_id=site["p1"], user_id="owner", reason="b", timestamp=ago(hours=1),
              severity=3))
    newer_critical = raise_alert(clients["owner"], site["p1"], severity="critical")
    low = raise_alert(clients["owner"], site["p1"], severity="low")
    theirs = raise_alert_on(clients["admin"], site["p2"], "medium")
    resolved = raise_alert(clients["owner"], site["p1"], severity="critical")
    expect(clients["staff"].call("resolve-alert", alertId=resolved, note="n"), "success")

    staff_view = [a["id"] for a in open_queue(clients["staff"])]
    assert staff_view == [older_critical, newer_critical, older_medium, theirs, low]
    assert [a["id"] for a in open_queue(clients["owner"])] == [older_critical, newer_critical,
                                                               older_medium, low]
    assert [a["id"] for a in open_queue(clients["neighbour"])] == [theirs]
    assert [a["id"] for a in open_queue(clients["staff"], minSeverity="high")] == [
        older_critical, newer_critical]
    assert [a["id"] for a in open_queue(clients["staff"], limit=2, offset=1)] == [
        newer_critical, older_medium]
    expect_error(clients["staff"].call("get-open-alerts", minSeverity="severe"),
                 "validation_error", "minSeverity")


def raise_alert_on(client, pid, severity) -> int:
    return expect(client.call("add-alert", propertyId=pid, userId="someone",
                              severity=severity), "success", "id")["id"]


def test_the_map_marks_properties_by_their_open_alerts(clients, site):
    staff = clients["staff"]

    def marks() -> dict:
        items = expect(staff.call("get-map"), "data")["properties"]
        return {p["id"]: (p["openAlerts"], p["topSeverity"]) for p in items}

    assert marks() == {site["p1"]: (0, None), site["p2"]: (0, None)}
    medium = raise_alert(clients["owner"], site["p1"], severity="medium")
    critical = raise_alert(clients["owner"], site["p1"], severity="critical")
    assert marks()[site["p1"]] == (2, "critical")
    expect(staff.call("acknowledge-alert", alertId=critical), "success")
    assert marks()[site["p1"]] == (2, "critical")  # acknowledged is still unresolved
    expect(staff.call("resolve-alert", alertId=critical, note="n"), "success")
    assert marks()[site["p1"]] == (1, "medium")
    expect(staff.call("resolve-alert", alertId=medium, note="n"), "success")
    assert marks() == {site["p1"]: (0, None), site["p2"]: (0, None)}


# --------------------------------------------------------------------------- arming (section 14)


@pytest.mark.parametrize("mode, severity", [("away", "critical"), ("home", "high"),
                                            ("disarmed", "medium")])
def test_an_unauthorized_entry_is_as_severe_as_the_property_is_armed(clients, site, mode,
                                                                      severity):
    owner, staff = clients["owner"], clients["staff"]
    expect(owner.call("set-arming", propertyId=site["p1"], mode=mode), "success")
    assert expect(owner.call("get-property", propertyId=site["p1"]),
                  "data")["property"]["armed"] == mode
    answer = expect(staff.call("add-auth-entry", propertyId=site["p1"], userId="stranger"),
                    "success", "alertId")
    assert the_alert(staff, site["p1"], answer["alertId"])["severity"] == severity
    expect(staff.call("add-auth-entry", propertyId=site["p1"], userId="owner"), "success")
    assert len(open_queue(staff)) == 1  # the owner's own entry raised nothing


def test_arming_rules_and_event(clients, site):
    owner, staff = clients["owner"], clients["staff"]
    expect(staff.call("subscribe", {"id": "events.arming-changed"}), "status")
    assert all(p["armed"] == "disarmed" for p in
               expect(staff.call("get-map"), "data")["properties"])  # the default
    expect_error(clients["neighbour"].call("set-arming", propertyId=site["p1"], mode="away"),
                 "forbidden")
    expect_error(owner.call("set-arming", propertyId=site["p1"], mode="vacation"),
                 "validation_error", "mode")
    expect(staff.call("set-arming", propertyId=site["p2"], mode="away"), "success")
    [event] = [p for _, p in staff.events("events.arming-changed")]
    assert event == {**event, "propertyId": site["p2"], "mode": "away", "user": "staff"}


def test_a_stranger_seen_while_armed_away_raises_an_alert(clients, site):
    owner, staff = clients["owner"], clients["staff"]
    visit = {"propertyId": site["p1"], "cameraId": site["camera"]}
    expect(staff.call("add-visitor", {**visit, "userId": "stranger"}), "success")
    assert open_queue(staff) == []  # disarmed: a visit is only a visit
    expect(owner.call("set-arming", propertyId=site["p1"], mode="away"), "success")
    expect(owner.call("add-allowed-user", propertyId=site["p1"], userId="neighbour"), "success")
    for allowed in ("owner", "neighbour"):
        expect(staff.call("add-visitor", {**visit, "userId": allowed}), "success")
    assert open_queue(staff) == []
    expect(staff.call("add-visitor", {**visit, "userId": "stranger"}), "success")
    [alert] = open_queue(staff)
    assert (alert["reason"], alert["severity"], alert["userId"]) == (
        "visitor-while-armed", "high", "stranger")
