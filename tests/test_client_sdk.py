"""The Python client SDK (propsec/client.py) against a real `python app.py` process."""
from __future__ import annotations

import threading
import time

import pytest
from live import LiveServer

from propsec import create_app
from propsec.client import (ERRORS, Conflict, Disconnected, Forbidden, NotFound, PropsecClient,
                            PropsecError, RateLimited, Unauthenticated, UnknownQuery,
                            ValidationError)
from propsec.database import init_db
from propsec.extensions import db
from propsec.models import User
from propsec.security import issue_token


def prepare(server: LiveServer, users: dict[str, str]) -> dict[str, str]:
    """Create the schema, the reference data and `users` ({id: role}) in the server's
    database; return an API token per user. Done in-process: one `flask` process per
    command costs seconds each (the CLI itself is covered by the server's tests)."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": server.env["PROPSEC_DATABASE_URL"],
                      "PROPSEC_ASYNC_MODE": "threading"})
    with app.app_context():
        init_db(app)
        for user_id, role in users.items():
            db.session.add(User(id=user_id, full_name=user_id.title(), role=role))
        db.session.commit()
        tokens = {user_id: issue_token(user_id) for user_id in users}
        db.session.remove()
        db.engine.dispose()
    return tokens


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("sdk"))
    server.tokens = prepare(server, {"ada": "admin", "sam": "staff", "olive": "owner"})
    with server:
        yield server


def connect(live, user: str, **kwargs) -> PropsecClient:
    return PropsecClient(live.url, live.tokens[user], **kwargs).connect()


@pytest.fixture(scope="module")
def site(live):
    """An ACTIVE property of olive with a camera and a drone."""
    with connect(live, "olive") as olive, connect(live, "ada") as ada:
        pid = olive.call("add-property", location="1 SDK Street", tier=1, x=0, y=0,
                         description="for the SDK tests", clientId="olive")["id"]
        ada.call("change-property-status", propertyId=pid, status="ACTIVE")
        camera = olive.call("add-equipment", propertyId=pid, equipmentType=1, description="cam")["id"]
        drone = olive.call("add-equipment", propertyId=pid, equipmentType=2, description="drone")["id"]
    return {"property": pid, "camera": camera, "drone": drone}


class Collector:
    """A subscription handler that records payloads and lets the test wait for them."""

    def __init__(self):
        self.items: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, payload):
        with self.lock:
            self.items.append(payload)

    def wait(self, count: int, timeout: float = 15.0) -> list[dict]:
        wait_for(lambda: len(self.items) >= count, timeout)
        time.sleep(0.2)  # let duplicates, if any, arrive too
        with self.lock:
            return list(self.items)


def test_bad_token_is_refused_as_unauthenticated(live):
    client = PropsecClient(live.url, "ps_not-a-real-token-at-all")
    with pytest.raises(Unauthenticated) as err:
        client.connect()
    assert err.value.code == "unauthenticated"
    assert "authentication required" in err.value.message


def test_connect_reports_the_user_and_calls_accept_either_name(live):
    with connect(live, "sam") as sam:
        assert sam.user == {"id": "sam", "fullName": "Sam", "role": "staff"}
        assert sam.session()["id"] == "sam"
        tiers = sam.call("get-tiers")
        assert tiers == sam.call("queries.get-tiers")
        assert {"id": 1, "name": "Basic"} in tiers["tiers"]


def test_polling_transport_works(live):
    with connect(live, "sam", transports=["polling"]) as sam:
        assert sam.call("get-equipment-types")["equipmentTypes"][0] == {"id": 1, "name": "Camera"}


def test_success_envelope_returns_its_data(live, site):
    with connect(live, "sam") as sam:
        result = sam.call("add-visitor", {"userId": "guest-1", "propertyId": site["property"],
                                          "cameraId": site["camera"]})
        assert isinstance(result["id"], int) and result["message"]


@pytest.mark.parametrize("user, query, data, exc", [
    ("olive", "get-pending-properties", {}, Forbidden),
    ("ada", "get-property", {"propertyId": 999999}, NotFound),
    ("ada", "no-such-query", {}, UnknownQuery),
    ("olive", "add-property", {"location": "x", "tier": 1, "x": True, "y": 0, "description": "",
                               "clientId": "olive"}, ValidationError),
])
def test_error_codes_raise_typed_exceptions(live, user, query, data, exc):
    with connect(live, user) as client:
        with pytest.raises(exc) as err:
            client.call(query, **data)
    assert isinstance(err.value, PropsecError)
    assert ERRORS[err.value.code] is exc
    assert err.value.message


def test_validation_error_names_the_fields(live, site):
    with connect(live, "sam") as sam:
        with pytest.raises(ValidationError) as err:
            sam.call("add-visitor", userId="guest", propertyId=site["property"], cameraId=site["drone"])
        assert "cameraId" in err.value.fields
        with pytest.raises(ValidationError) as err:
            sam.call("get-property", propertyId="twelve")
        assert "propertyId" in err.value.fields


def test_conflict_is_typed(live, site):
    with connect(live, "olive") as olive:
        with pytest.raises(Conflict):
            olive.call("recall-drone", droneId=site["drone"])


def test_subscribe_delivers_events_and_handlers_may_call(live, site):
    seen: list[tuple[int, str]] = []
    all_events = Collector()
    done = threading.Event()

    with connect(live, "sam") as sam, connect(live, "ada") as ada:
        def on_visit(payload):  # a handler may itself make requests
            location = sam.call("get-property", propertyId=payload["propertyId"])["property"]["location"]
            seen.append((payload["eventId"], location, payload["clientId"]))
            if len(seen) == 2:
                done.set()

        status = sam.subscribe("events.visits", on_visit)
        assert status["replayed"] == 0
        sam.subscribe("events.all", all_events)
        for n in range(2):
            ada.call("add-visitor", userId=f"visitor-{n}", propertyId=site["property"],
                     cameraId=site["camera"])
        assert done.wait(10)
        assert [v for _, _, v in seen] == ["visitor-0", "visitor-1"]
        assert seen[0][1] == "1 SDK Street"
        assert seen[0][0] < seen[1][0]
        copies = [e for e in all_events.wait(4) if e.get("event") == "events.visits"]
        assert [e["eventId"] for e in copies] == [eid for eid, _, _ in seen]

        sam.unsubscribe("events.visits")
        ada.call("add-visitor", userId="visitor-late", propertyId=site["property"], cameraId=site["camera"])
        time.sleep(0.5)
        assert len(seen) == 2


def test_subscribe_since_replays_without_duplicates(live, site):
    with connect(live, "ada") as ada, connect(live, "sam") as sam:
        first = Collector()
        sam.subscribe("events.crimes", first)
        for n in range(3):
            ada.call("add-crime", propertyId=site["property"], description=f"crime {n}")
        ids = [e["eventId"] for e in first.wait(3)]
        assert len(ids) == 3
    with connect(live, "sam") as again:
        later = Collector()
        status = again.subscribe("events.crimes", later, since=ids[0])
        assert status["replayed"] == 2
        assert [e["eventId"] for e in later.wait(2)] == ids[1:]


def test_unknown_event_name_is_a_validation_error(live):
    with connect(live, "sam") as sam:
        with pytest.raises(ValidationError) as err:
            sam.subscribe("events.nonsense", lambda payload: None)
        assert "id" in err.value.fields
        assert sam.last_event_id("events.nonsense") is None


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_reconnect_after_server_restart_replays_missed_events_once(live, site, transport):
    """The subscriber gets every event exactly once, in order, across a server restart."""
    received = Collector()
    sub = PropsecClient(live.url, live.tokens["sam"], transports=[transport],
                        reconnection_delay=6, reconnection_delay_max=6, randomization_factor=0)
    sub.connect()
    oneshot = connect(live, "sam", transports=[transport], reconnection=False)
    try:
        sub.subscribe("events.auth-entries", received)

        def entries(client, names):
            for name in names:
                client.call("add-auth-entry", propertyId=site["property"], userId=name)

        with connect(live, "ada") as ada:
            entries(ada, [f"{transport}-before-{n}" for n in range(3)])
            assert len(received.wait(3)) == 3

        live.stop()
        assert wait_for(lambda: not sub.connected, 15), "the SDK did not notice the server going away"
        assert not sub.gone  # reconnecting
        assert wait_for(lambda: oneshot.gone, 15)  # reconnection=False: fails fast
        started = time.monotonic()
        with pytest.raises(Disconnected):
            oneshot.call("get-tiers", timeout=8)
        assert time.monotonic() - started < 4
        live.start()
        with connect(live, "ada") as ada:
            entries(ada, [f"{transport}-away-{n}" for n in range(4)])
        caused_while_away = not sub.connected

        assert sub.wait_connected(30), "the SDK did not reconnect by itself"
        assert len(received.wait(7)) == 7
        with connect(live, "ada") as ada:
            entries(ada, [f"{transport}-after-{n}" for n in range(2)])
        got = received.wait(9)
    finally:
        sub.close()
        oneshot.close()

    expected = ([f"{transport}-before-{n}" for n in range(3)] + [f"{transport}-away-{n}" for n in range(4)]
                + [f"{transport}-after-{n}" for n in range(2)])
    assert [e["clientId"] for e in got] == expected
    ids = [e["eventId"] for e in got]
    assert ids == sorted(set(ids))
    assert sub.reconnects == 1
    if caused_while_away:
        assert sub.replayed("events.auth-entries") == 4


def test_rate_limited_is_typed_and_keeps_the_connection(tmp_path):
    server = LiveServer(tmp_path, PROPSEC_RATE_LIMIT="5/2")
    token = prepare(server, {"sam": "staff"})["sam"]
    with server, PropsecClient(server.url, token) as sam:
        with pytest.raises(RateLimited):
            for _ in range(20):
                sam.call("get-tiers")
        time.sleep(1.5)
        assert sam.connected
        assert sam.call("get-tiers")["tiers"]


def test_held_events_are_sorted_and_deduplicated_without_a_server():
    """Events that arrive while a (re)subscribe is in flight are held, then handed over
    in eventId order, each id once, and nothing at or below the last delivered id."""
    from propsec.client import _Subscription

    client = PropsecClient("http://127.0.0.1:9", "unused")
    client._start_dispatcher()
    got = Collector()
    sub = _Subscription("events.x", 5)
    sub.handlers.append(got)
    client._subs["events.x"] = sub
    sub.buffering = True
    for event_id in (7, 6, 5, 7, 8):
        client._on_event("events.x", {"eventId": event_id})
    client._finish_subscribe(sub, sub.generation, {"type": "status", "data": {"replayed": 3}})
    for event_id in (8, 9, 4):
        client._on_event("events.x", {"eventId": event_id})
    client._on_event("events.other", {"eventId": 10})
    assert [e["eventId"] for e in got.wait(4)] == [6, 7, 8, 9]
    assert client.replayed("events.x") == 3
    assert client.last_event_id("events.x") == 9
    client._stop_dispatcher()
