"""Demo seeding goes through the event log as live changes do (issue 12, a first-look bug: on a
fresh database the seeded open alert had no mark and the feed said "Waiting for events…")."""
from __future__ import annotations

from collections import Counter

from helpers import expect
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)

from propsec.cli.seed import seed_demo
from propsec.extensions import db
from propsec.models import Alert, Crime, Property


def all_events(client) -> list[dict]:
    events, since = [], 0
    while True:
        page = expect(client.call("get-events", since=since, limit=1000), "data")["events"]
        events += page
        if len(page) < 1000:
            return events
        since = page[-1]["eventId"]


def test_seeded_properties_alerts_and_crimes_are_in_the_log_and_on_the_map(app, clients):
    with app.app_context():
        seed_demo(150, seed=3)
        properties = {p.id: p for p in db.session.scalars(db.select(Property))}
        alerts = {a.id: a for a in db.session.scalars(db.select(Alert))}
        crimes = {c.id for c in db.session.scalars(db.select(Crime))}
    assert alerts and crimes, "the demo seed should raise a few alerts and crimes"
    events = all_events(clients["staff"])
    by_name = Counter(e["event"] for e in events)
    assert by_name["events.property-added"] == len(properties)
    added = {e["id"]: e for e in events if e["event"] == "events.property-added"}
    assert set(added) == set(properties)
    some = properties[min(properties)]
    assert added[some.id] | {"location": some.location, "status": some.status,
                             "owner": some.owner_id} == added[some.id]
    raised = {e["alertId"]: e for e in events if e["event"] == "events.alerts"}
    assert set(raised) == set(alerts)
    assert {e["crimeId"] for e in events if e["event"] == "events.crimes"} == crimes
    # the log tells the story in time order: ids and timestamps rise together
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    # the map's marks come from the same rows
    items = expect(clients["staff"].call("get-map"), "data")["properties"]
    marked = {p["id"]: p["openAlerts"] for p in items if p["openAlerts"]}
    assert marked == dict(Counter(a.property_id for a in alerts.values()))
    # owners see only their own properties' events: this one owns none of the demo's
    assert all_events(clients["owner"]) == []
