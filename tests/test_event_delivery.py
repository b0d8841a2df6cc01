"""Event delivery (contract sections 4 and 8): every event, caused by its query, reaches the
subscribers entitled to it and nobody else; `events.all`; ordering; unsubscribe; replay."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
from helpers import ISO_UTC, expect
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)

from propsec.protocol.events import NAMESPACE

# Contract section 8: the fields of each event's payload, besides eventId and timestamp.
FIELDS = {
    "events.alerts": {"propertyId", "user", "alertId", "reason", "severity"},
    "events.alert-acknowledged": {"propertyId", "alertId", "user"},
    "events.visits": {"propertyId", "clientId"},
    "events.scanned": {"propertyId", "clientId", "cameraId"},
    "events.crimes": {"propertyId", "clientId", "crimeId"},
    "events.auth-entries": {"propertyId", "clientId", "authorized"},
    "events.property-added": {"id", "owner", "location", "tier", "x", "y", "width", "height",
                              "status", "description", "clientId"},
    "events.property-removed": {"propertyId"},
    "events.property-status-change": {"propertyId", "status"},
    "events.property-equipment-change": {"propertyId", "equipmentId"},
    "events.requested-remove-property": {"propertyId"},
    "events.approved-remove-property": {"propertyId"},
    "events.drone-dispatched": {"propertyId", "droneId"},
    "events.drone-recalled": {"propertyId", "droneId"},
    "events.property-coordinates-changed": {"propertyId", "x", "y"},
    "events.property-size-changed": {"propertyId", "width", "height", "size"},
    "events.property-tier-changed": {"propertyId", "tier"},
    "events.alert-assigned": {"propertyId", "alertId", "user", "assignee"},
    "events.alert-resolved": {"propertyId", "alertId", "user", "note"},
    "events.arming-changed": {"propertyId", "mode", "user"},
}


@dataclass
class Cause:
    """`actor` sends `query` with `data(site)` on P1 (owner's); the event's payload must then
    hold `payload(site, ack_data)`. `prepare` runs first, before anyone subscribes."""

    event: str
    actor: str
    query: str
    data: Callable[[dict], dict]
    payload: Callable[[dict, dict], dict]
    prepare: Callable[[object, dict], dict] | None = None
    label: str = ""

    @property
    def id(self) -> str:
        return self.event.removeprefix("events.") + (f"[{self.label}]" if self.label else "")


def raise_alert(clients, site):
    return {"alert": clients["owner"].ok("add-alert", propertyId=site["p1"], userId="owner")["id"]}


def request_removal(clients, site):
    clients["owner"].ok("request-remove-property", propertyId=site["p1"])
    return {}


def dispatch(clients, site):
    return {"drone": clients["owner"].ok("dispatch-drone", propertyId=site["p1"])["droneId"]}


NEW_PROPERTY = {"location": "9 Mill Lane", "tier": 3, "x": 300, "y": 40, "width": 25,
                "height": 30, "description": "new barn"}
VISIT = {"userId": "visitor-1"}

CAUSES = [
    Cause("events.alerts", "owner", "add-alert",
          lambda s: {"propertyId": s["p1"], "userId": "owner", "reason": "window"},
          lambda s, ack: {"propertyId": s["p1"], "user": "owner", "alertId": ack["id"],
                          "reason": "window", "severity": "high"}),
    Cause("events.alerts", "staff", "add-auth-entry",
          lambda s: {"propertyId": s["p1"], "userId": "stranger"},
          lambda s, ack: {"propertyId": s["p1"], "user": "stranger",
                          "reason": "unauthorized-entry", "severity": "medium"},
          label="unauthorized-entry"),  # (disarmed: medium; contract section 14)
    Cause("events.arming-changed", "owner", "set-arming",
          lambda s: {"propertyId": s["p1"], "mode": "home"},
          lambda s, ack: {"propertyId": s["p1"], "mode": "home", "user": "owner"}),
    Cause("events.alert-assigned", "staff", "assign-alert",
          lambda s: {"alertId": s["alert"], "userId": "admin"},
          lambda s, ack: {"propertyId": s["p1"], "alertId": s["alert"], "user": "staff",
                          "assignee": "admin"}, prepare=raise_alert),
    Cause("events.alert-resolved", "admin", "resolve-alert",
          lambda s: {"alertId": s["alert"], "note": "the cat again"},
          lambda s, ack: {"propertyId": s["p1"], "alertId": s["alert"], "user": "admin",
                          "note": "the cat again"}, prepare=raise_alert),
    Cause("events.alert-acknowledged", "staff", "acknowledge-alert",
          lambda s: {"alertId": s["alert"]},
          lambda s, ack: {"propertyId": s["p1"], "alertId": s["alert"], "user": "staff"},
          prepare=raise_alert),
    Cause("events.visits", "staff", "add-visitor",
          lambda s: {"propertyId": s["p1"], "cameraId": s["camera"], **VISIT},
          lambda s, ack: {"propertyId": s["p1"], "clientId": "visitor-1"}),
    Cause("events.scanned", "staff", "add-visitor",
          lambda s: {"propertyId": s["p1"], "cameraId": s["camera"], **VISIT},
          lambda s, ack: {"propertyId": s["p1"], "clientId": "visitor-1",
                          "cameraId": s["camera"]}),
    Cause("events.crimes", "staff", "add-crime",
          lambda s: {"propertyId": s["p1"], "description": "bike stolen"},
          lambda s, ack: {"propertyId": s["p1"], "clientId": "staff", "crimeId": ack["id"]}),
    Cause("events.auth-entries", "staff", "add-auth-entry",
          lambda s: {"propertyId": s["p1"], "userId": "owner"},
          lambda s, ack: {"propertyId": s["p1"], "clientId": "owner", "authorized": True}),
    Cause("events.property-added", "owner", "add-property",
          lambda s: {**NEW_PROPERTY, "clientId": "owner"},
          lambda s, ack: {**NEW_PROPERTY, "id": ack["id"], "owner": "owner",
                          "status": "PENDING", "clientId": "owner"}),
    Cause("events.property-added", "admin", "add-property",
          lambda s: {**NEW_PROPERTY, "clientId": "owner"},
          lambda s, ack: {**NEW_PROPERTY, "id": ack["id"], "owner": "owner",
                          "status": "PENDING", "clientId": "owner"}, label="by-admin"),
    Cause("events.property-removed", "admin", "remove-property",
          lambda s: {"propertyId": s["p1"]}, lambda s, ack: {"propertyId": s["p1"]}),
    Cause("events.property-removed", "admin", "approve-remove-property",
          lambda s: {"propertyId": s["p1"]}, lambda s, ack: {"propertyId": s["p1"]},
          prepare=request_removal, label="approved"),
    Cause("events.property-status-change", "admin", "change-property-status",
          lambda s: {"propertyId": s["p1"], "status": "INACTIVE"},
          lambda s, ack: {"propertyId": s["p1"], "status": "INACTIVE"}),
    Cause("events.property-equipment-change", "owner", "add-equipment",
          lambda s: {"propertyId": s["p1"], "equipmentType": 4, "description": "siren"},
          lambda s, ack: {"propertyId": s["p1"], "equipmentId": ack["id"], "equipmentType": 4,
                          "description": "siren"}, label="add"),
    Cause("events.property-equipment-change", "owner", "remove-equipment",
          lambda s: {"propertyId": s["p1"], "equipmentId": s["camera"]},
          lambda s, ack: {"propertyId": s["p1"], "equipmentId": s["camera"]}, label="remove"),
    Cause("events.requested-remove-property", "owner", "request-remove-property",
          lambda s: {"propertyId": s["p1"]}, lambda s, ack: {"propertyId": s["p1"]}),
    Cause("events.approved-remove-property", "admin", "approve-remove-property",
          lambda s: {"propertyId": s["p1"]}, lambda s, ack: {"propertyId": s["p1"]},
          prepare=request_removal),
    Cause("events.drone-dispatched", "owner", "dispatch-drone",
          lambda s: {"propertyId": s["p1"]},
          lambda s, ack: {"propertyId": s["p1"], "droneId": ack["droneId"]}),
    Cause("events.drone-recalled", "owner", "recall-drone",
          lambda s: {"droneId": s["drone"]},
          lambda s, ack: {"propertyId": s["p1"], "droneId": s["drone"]}, prepare=dispatch),
    Cause("events.property-coordinates-changed", "admin", "change-property-coordinates",
          lambda s: {"propertyId": s["p1"], "x": -5, "y": 6},
          lambda s, ack: {"propertyId": s["p1"], "x": -5, "y": 6}),
    Cause("events.property-size-changed", "admin", "change-property-size",
          lambda s: {"propertyId": s["p1"], "width": 30, "height": 40},
          lambda s, ack: {"propertyId": s["p1"], "width": 30, "height": 40, "size": 1200}),
    Cause("events.property-tier-changed", "admin", "change-property-tier",
          lambda s: {"propertyId": s["p1"], "tier": 3},
          lambda s, ack: {"propertyId": s["p1"], "tier": 3}),
]


def test_every_event_of_the_contract_has_a_cause():
    assert {cause.event for cause in CAUSES} == set(FIELDS)


def subscribe(client, *names, **extra):
    for name in names:
        expect(client.call("subscribe", {"id": name, **extra}), "status", "replayed")


def provoke(cause: Cause, clients, site) -> dict:
    """Run the cause's query; returns the payload its event must carry."""
    envelope = clients[cause.actor].call(cause.query, cause.data(site))
    assert envelope["type"] != "error", envelope
    return cause.payload(site, envelope["data"])


def check_payload(cause: Cause, payload: dict, expected: dict) -> None:
    assert FIELDS[cause.event] | {"eventId", "timestamp"} <= payload.keys(), payload
    assert payload == {**payload, **expected}
    assert isinstance(payload["eventId"], int) and not isinstance(payload["eventId"], bool)
    assert ISO_UTC.match(payload["timestamp"]), payload


@pytest.fixture
def ready(clients, site, request):
    """The site after the cause's preparation, with nothing received yet by anyone."""
    cause = request.param
    extra = cause.prepare(clients, site) if cause.prepare else {}
    return cause, {**site, **extra}


by_cause = pytest.mark.parametrize("ready", CAUSES, ids=lambda c: c.id, indirect=True)


@by_cause
def test_event_reaches_only_entitled_subscribers(connect, clients, ready):
    cause, site = ready
    watchers = ["owner", "staff", "admin", "neighbour"]
    for user in watchers:
        subscribe(clients[user], cause.event)
    silent_owner, silent_staff = connect("owner"), connect("staff")
    expected = provoke(cause, clients, site)

    received = {user: clients[user].events() for user in watchers}
    for user in ("owner", "staff", "admin"):
        assert [name for name, _ in received[user]] == [cause.event], (user, received[user])
        check_payload(cause, received[user][0][1], expected)
    assert received["owner"] == received["staff"] == received["admin"]
    assert received["neighbour"] == []
    assert silent_owner.events() == [] and silent_staff.events() == []


@by_cause
def test_events_all_carries_the_event_with_the_same_id(clients, ready):
    cause, site = ready
    for user in ("owner", "neighbour"):
        subscribe(clients[user], cause.event, "events.all")
    provoke(cause, clients, site)

    received = clients["owner"].events()
    [direct] = [payload for name, payload in received if name == cause.event]
    copies = [payload for name, payload in received
              if name == "events.all" and payload["event"] == cause.event]
    assert copies == [{**direct, "event": cause.event}]
    assert clients["neighbour"].events() == []


def alert(clients, site, reason, prop="p1", who="owner"):
    return clients[who].ok("add-alert", propertyId=site[prop], userId=who, reason=reason)["id"]


def test_event_ids_strictly_increase_across_events(clients, site):
    staff = clients["staff"]
    subscribe(staff, "events.all")
    alert(clients, site, "a")
    clients["owner"].ok("dispatch-drone", propertyId=site["p1"])
    alert(clients, site, "b", prop="p2", who="neighbour")
    staff.ok("add-visitor", propertyId=site["p1"], cameraId=site["camera"], userId="v")
    clients["admin"].ok("change-property-tier", propertyId=site["p2"], tier=3)
    received = staff.events()
    assert [p["event"] for _, p in received] == [
        "events.alerts", "events.drone-dispatched", "events.alerts", "events.visits",
        "events.scanned", "events.property-tier-changed"]
    event_ids = [p["eventId"] for _, p in received]
    assert all(a < b for a, b in zip(event_ids, event_ids[1:])), event_ids


def test_unsubscribe_stops_delivery(clients, site):
    owner = clients["owner"]
    subscribe(owner, "events.alerts", "events.all")
    alert(clients, site, "both")
    assert [name for name, _ in owner.events()] == ["events.alerts", "events.all"]
    expect(owner.call("unsubscribe", {"id": "events.alerts"}), "status")
    alert(clients, site, "all only")
    assert [name for name, _ in owner.events()] == ["events.all"]
    expect(owner.call("unsubscribe", {"id": "events.all"}), "status")
    alert(clients, site, "none")
    assert owner.events() == []


# --- replay after a reconnect -------------------------------------------------------------

# What happens on the site, in order: (property, an alert's reason or "drone" for a dispatch).
SEEN = [("p1", "seen 1"), ("p2", "seen 2")]
MISSED = [("p1", "missed 1"), ("p2", "theirs 1"), ("p1", "drone"), ("p1", "missed 2"),
          ("p2", "theirs 2")]
VISIBLE = {"owner": {"p1"}, "neighbour": {"p2"}, "staff": {"p1", "p2"}}


def happen(clients, site, prop, label):
    if label == "drone":
        clients["staff"].ok("dispatch-drone", propertyId=site[prop])
    else:
        clients["staff"].ok("add-alert", propertyId=site[prop], userId="staff", reason=label)


@pytest.mark.parametrize("name", ["events.alerts", "events.all"])
@pytest.mark.parametrize("user", VISIBLE)
def test_replay_after_reconnect_returns_exactly_the_missed_events(connect, clients, site,
                                                                  user, name):
    witness = clients["admin"]
    subscribe(witness, "events.all")
    first = connect(user)
    subscribe(first, name)
    for prop, label in SEEN:
        happen(clients, site, prop, label)
    seen = first.events()
    assert [p["reason"] for _, p in seen] == [r for prop, r in SEEN if prop in VISIBLE[user]]
    last = seen[-1][1]["eventId"]
    first.sio.disconnect(NAMESPACE)
    for prop, label in MISSED:
        happen(clients, site, prop, label)

    visible = {site[prop] for prop in VISIBLE[user]}
    expected = [payload if name == "events.all" else {k: v for k, v in payload.items()
                                                      if k != "event"}
                for _, payload in witness.events()
                if payload["eventId"] > last and payload["propertyId"] in visible
                and name in ("events.all", payload["event"])]
    assert expected, "the scenario must leave something to replay"
    second = connect(user)
    replayed = expect(second.call("subscribe", {"id": name, "since": last}), "status",
                      "replayed")["replayed"]
    assert second.events() == [(name, payload) for payload in expected]
    assert replayed == len(expected)

    happen(clients, site, sorted(VISIBLE[user])[0], "live")
    assert [p["reason"] for _, p in second.events()] == ["live"]


def test_subscribing_since_the_latest_event_replays_nothing(clients, site):
    owner = clients["owner"]
    subscribe(owner, "events.alerts")
    alert(clients, site, "one")
    [(_, payload)] = owner.events()
    data = expect(owner.call("subscribe", {"id": "events.alerts", "since": payload["eventId"]}),
                  "status", "replayed")
    assert data["replayed"] == 0 and owner.events() == []
