"""Load (issue 6): 500 concurrent connections × 100 queries against a real server process.

Every connection belongs to its own owner, with an ACTIVE property and two drones, and is
subscribed to `events.all`. It runs 100 queries one after another, 30 of them writes that
each cause exactly one event about its property (an alert, a drone dispatch, a recall), the
rest reads. All 500 run at once, on one asyncio loop (python-socketio's AsyncClient over
websockets), against `python app.py` (eventlet, SQLite).

Checked: every query is acknowledged (zero lost acks), none with an error; every
connection receives exactly the events it caused, each once (by eventId), in increasing
eventId order; and the event log in the database agrees, row for row.

Size: LOAD_CONNECTIONS × LOAD_QUERIES (default 500 × 100; the env variables
PROPSEC_LOAD_CONNECTIONS / PROPSEC_LOAD_QUERIES shrink it for a quick local look)."""
from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections import Counter

import pytest
import requests
import socketio
from sqlalchemy import insert, select

from live import LiveServer
from propsec.models import ACTIVE, DRONE, ApiToken, Equipment, EventRecord, Property, User
from propsec.protocol.events import NAMESPACE
from propsec.security import TOKEN_PREFIX, token_digest

CONNECTIONS = int(os.environ.get("PROPSEC_LOAD_CONNECTIONS", "500"))
QUERIES = int(os.environ.get("PROPSEC_LOAD_QUERIES", "100"))
CONNECT_BATCH = 25  # eventlet listens with a backlog of 50
CALL_TIMEOUT = 120
# One round of ten queries; three of them cause one event each.
ROUND = ("get-property", "add-alert", "get-alerts", "dispatch-drone", "get-free-drones",
         "recall-drone", "get-map", "get-tiers", "get-equipment", "get-user")
WRITES = {"add-alert": "events.alerts", "dispatch-drone": "events.drone-dispatched",
          "recall-drone": "events.drone-recalled"}

pytestmark = pytest.mark.slow


def populate(server: LiveServer) -> list[dict]:
    """Owners, their properties, two drones each and API tokens, in a few bulk inserts."""
    from propsec.extensions import db

    people = [{"user": f"load{n:04d}", "token": TOKEN_PREFIX + secrets.token_urlsafe(32)}
              for n in range(CONNECTIONS)]
    with server.local_app().app_context():
        db.session.execute(insert(User), [{"id": p["user"], "full_name": f"Load Owner {n}",
                                           "role": "owner"} for n, p in enumerate(people)])
        db.session.execute(insert(ApiToken), [{"user_id": p["user"],
                                               "token_hash": token_digest(p["token"])}
                                              for p in people])
        db.session.execute(insert(Property), [
            {"owner_id": p["user"], "location": f"{n} Load Street", "tier_id": 1,
             "x": (n % 50) * 40, "y": (n // 50) * 40, "width": 20, "height": 20,
             "status": ACTIVE, "description": ""} for n, p in enumerate(people)])
        ids = dict(db.session.execute(select(Property.owner_id, Property.id)).all())
        db.session.execute(insert(Equipment), [
            {"property_id": ids[p["user"]], "type_id": DRONE, "description": f"drone {k}"}
            for p in people for k in (1, 2)])
        db.session.commit()
        for person in people:
            person["property"] = ids[person["user"]]
        db.session.remove()
        db.engine.dispose()
    return people


class Connection:
    def __init__(self, server: LiveServer, person: dict):
        self.server, self.person = server, person
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[dict] = []
        self.expected = Counter()
        self.acks = 0
        self.errors: list = []
        self.sio.on("events.all", self.events.append, namespace=NAMESPACE)

    async def connect(self) -> None:
        await self.sio.connect(self.server.url, namespaces=[NAMESPACE], transports=["websocket"],
                               auth={"token": self.person["token"]}, wait_timeout=60)
        answer = await self.call("subscribe", {"id": "events.all"})
        assert answer["type"] == "status", answer

    async def call(self, name: str, data: dict) -> dict:
        answer = await self.sio.call(name, data, namespace=NAMESPACE, timeout=CALL_TIMEOUT)
        self.acks += 1
        if not isinstance(answer, dict) or answer.get("type") == "error":
            self.errors.append((name, answer))
        return answer

    def payload(self, name: str, drone: int | None) -> dict:
        pid, user = self.person["property"], self.person["user"]
        return {"get-property": {"propertyId": pid},
                "add-alert": {"propertyId": pid, "userId": user, "reason": "load test"},
                "get-alerts": {"propertyId": pid, "limit": 5},
                "dispatch-drone": {"propertyId": pid},
                "get-free-drones": {"propertyId": pid},
                "recall-drone": {"droneId": drone},
                "get-map": {"minX": 0, "minY": 0, "maxX": 400, "maxY": 400},
                "get-tiers": {},
                "get-equipment": {"propertyId": pid},
                "get-user": {"userId": user}}[name]

    async def work(self) -> None:
        drone = None
        for n in range(QUERIES):
            name = ROUND[n % len(ROUND)]
            if name == "recall-drone" and drone is None:
                name = "get-tiers"  # the round was cut short before its dispatch
            answer = await self.call("queries." + name, self.payload(name, drone))
            if name == "dispatch-drone":
                drone = answer.get("data", {}).get("droneId")
            if name == "recall-drone":
                drone = None
            if name in WRITES and answer.get("type") != "error":
                self.expected[WRITES[name]] += 1


async def run_load(server: LiveServer, people: list[dict]) -> tuple[list[Connection], dict]:
    conns = [Connection(server, p) for p in people]
    timings = {}
    started = time.monotonic()
    for first in range(0, len(conns), CONNECT_BATCH):
        await asyncio.gather(*(c.connect() for c in conns[first:first + CONNECT_BATCH]))
    timings["connect"] = time.monotonic() - started
    started = time.monotonic()
    await asyncio.gather(*(c.work() for c in conns))
    timings["queries"] = time.monotonic() - started
    # Events are pushed after the commit and may trail the acknowledgement a little.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
            len(c.events) < sum(c.expected.values()) for c in conns):
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # anything extra (a duplicate) would show up now
    timings["total"] = sum(timings.values()) + 1.0
    await asyncio.gather(*(c.sio.disconnect() for c in conns))
    return conns, timings


def test_500_connections_100_queries_each_nothing_lost(tmp_path):
    # (escalation would add events of its own on a slow machine: this test counts events)
    server = LiveServer(tmp_path, PROPSEC_RATE_LIMIT="1000000/1000000",
                        PROPSEC_ESCALATION_SECONDS="86400")
    server.init_db()
    people = populate(server)
    with server:
        conns, timings = asyncio.run(run_load(server, people))
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
    total_queries = CONNECTIONS * QUERIES
    print(f"\nload: {CONNECTIONS} connections x {QUERIES} queries: {timings}, "
          f"{total_queries / timings['queries']:.0f} queries/s")

    assert sum(c.acks for c in conns) == total_queries + CONNECTIONS  # + the subscribes
    errors = [e for c in conns for e in c.errors]
    assert errors == [], errors[:5]

    with server.local_app().app_context():
        from propsec.extensions import db
        logged: dict[str, list[int]] = {}
        for owner, event_id in db.session.execute(
                select(EventRecord.owner_id, EventRecord.id).order_by(EventRecord.id)):
            logged.setdefault(owner, []).append(event_id)
        db.session.remove()
    for c in conns:
        ids = [e["eventId"] for e in c.events]
        assert len(ids) == len(set(ids)), f"{c.person['user']}: duplicated events"
        assert ids == sorted(ids), f"{c.person['user']}: events out of order"
        assert Counter(e["event"] for e in c.events) == c.expected, c.person["user"]
        assert all(e["propertyId"] == c.person["property"] for e in c.events)
        assert ids == logged.get(c.person["user"], []), f"{c.person['user']}: lost events"
    assert sum(len(c.events) for c in conns) == CONNECTIONS * sum(
        1 for n in range(QUERIES) if ROUND[n % len(ROUND)] in WRITES)
