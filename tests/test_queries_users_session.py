"""Internal events (contract section 4), user queries, get-events, and what every envelope
shares (section 3): written from the contract."""
from __future__ import annotations

import pytest
from helpers import PROPERTY, USER, expect, expect_error, has_shape, ids, new_property
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)

from propsec.protocol.events import NAMESPACE

NAMES = {"owner": "Owner Person", "neighbour": "Neighbour Person", "staff": "Staff Person",
         "admin": "Admin Person"}


# --- session ------------------------------------------------------------------------------

@pytest.mark.parametrize("user, role", [("owner", "owner"), ("neighbour", "owner"),
                                        ("staff", "staff"), ("admin", "admin")])
def test_session_describes_the_connected_user(clients, user, role):
    data = expect(clients[user].call("session", {"id": user}), "status", "user")
    assert data["user"] == {**data["user"], "id": user, "fullName": NAMES[user], "role": role}


def test_session_without_data(clients):
    reply = clients["staff"].sio.emit("session", namespace=NAMESPACE, callback=True)
    assert expect(reply, "status", "user")["user"]["id"] == "staff"


@pytest.mark.parametrize("user", ["owner", "admin"])
def test_session_for_someone_else_is_forbidden(clients, user):
    expect_error(clients[user].call("session", {"id": "neighbour"}), "forbidden")


# --- subscribe / unsubscribe --------------------------------------------------------------

def test_subscribe_answers_with_status_and_replayed(clients):
    data = expect(clients["owner"].call("subscribe", {"id": "events.alerts"}), "status",
                  "replayed")
    assert data["replayed"] == 0


def test_subscribe_with_own_client_id(clients):
    expect(clients["owner"].call("subscribe", {"id": "events.all", "clientId": "owner"}),
           "status", "replayed")


@pytest.mark.parametrize("data, code, field", [
    ({"id": "events.nothing"}, "validation_error", "id"),
    ({"id": "alerts"}, "validation_error", "id"),
    ({}, "validation_error", "id"),
    ({"id": "events.alerts", "since": "yesterday"}, "validation_error", "since"),
    ({"id": "events.alerts", "since": True}, "validation_error", "since"),
    ({"id": "events.alerts", "clientId": "neighbour"}, "forbidden", None),
])
def test_subscribe_errors(clients, site, data, code, field):
    owner = clients["owner"]
    expect_error(owner.call("subscribe", data), code, field)
    owner.ok("add-alert", propertyId=site["p1"], userId="owner")
    assert owner.events() == []


def test_unsubscribe_answers_with_status(clients):
    owner = clients["owner"]
    owner.ok("subscribe", {"id": "events.alerts"})
    expect(owner.call("unsubscribe", {"id": "events.alerts", "clientId": "owner"}), "status")


def test_unsubscribe_for_someone_else_is_forbidden(clients, site):
    owner = clients["owner"]
    owner.ok("subscribe", {"id": "events.alerts"})
    expect_error(owner.call("unsubscribe", {"id": "events.alerts", "clientId": "staff"}),
                 "forbidden")
    owner.ok("add-alert", propertyId=site["p1"], userId="owner")
    assert [name for name, _ in owner.events()] == ["events.alerts"]


# --- get-user / get-users -----------------------------------------------------------------

def test_get_user_returns_id_and_full_name(clients):
    user = expect(clients["owner"].call("get-user", userId="staff"), "data", "id", "fullName")
    assert (user["id"], user["fullName"]) == ("staff", "Staff Person")


@pytest.mark.parametrize("data, code, field", [({"userId": "ghost"}, "not_found", None),
                                               ({}, "validation_error", "userId"),
                                               ({"userId": 12}, "validation_error", "userId")])
def test_get_user_errors(clients, data, code, field):
    expect_error(clients["owner"].call("get-user", data), code, field)


def users(client, **data) -> list[str]:
    items = expect(client.call("get-users", data), "data", "users")["users"]
    assert all(has_shape(item, USER) and item["fullName"] == NAMES[item["id"]] for item in items)
    return ids(items)


@pytest.mark.parametrize("search, expected", [
    ("", set(NAMES)), ("PERSON", set(NAMES)), ("neigh", {"neighbour"}),
    ("admin p", {"admin"}), ("staff", {"staff"}), ("nobody", set()),
])
def test_get_users_searches_full_name_and_id(clients, search, expected):
    assert set(users(clients["owner"], search=search)) == expected


def test_get_users_pages(clients):
    pages = [users(clients["owner"], limit=3, offset=offset) for offset in (0, 3, 6)]
    assert [len(page) for page in pages] == [3, 1, 0]
    assert set(pages[0] + pages[1]) == set(NAMES)


@pytest.mark.parametrize("field, value", [("limit", 0), ("limit", 1001), ("offset", -1),
                                          ("search", ["a"])])
def test_get_users_validates_paging(clients, field, value):
    expect_error(clients["owner"].call("get-users", {field: value}), "validation_error", field)


# --- get-user-properties ------------------------------------------------------------------

def user_properties(client, user) -> list[dict]:
    props = expect(client.call("get-user-properties", userId=user), "data",
                   "properties")["properties"]
    assert all(has_shape(p, PROPERTY | {"name"}) and p["name"] == p["location"] for p in props)
    return props


def test_get_user_properties_lists_an_owners_own(clients, site):
    pending = new_property(clients["owner"], location="9 Mill Lane")
    props = user_properties(clients["owner"], "owner")
    assert {(p["id"], p["name"]) for p in props} == {(site["p1"], "1 Harbour Road"),
                                                     (pending, "9 Mill Lane")}


def test_staff_get_anyones_user_properties(clients, site):
    assert ids(user_properties(clients["staff"], "neighbour")) == [site["p2"]]
    assert user_properties(clients["staff"], "admin") == []


def test_an_owner_may_not_list_someone_elses_properties(clients, site):
    expect_error(clients["owner"].call("get-user-properties", userId="neighbour"), "forbidden")


# --- get-events ---------------------------------------------------------------------------

@pytest.fixture
def history(clients, site):
    """Four events: an alert on P1, one on P2, a drone dispatched from P1, an alert on P1."""
    clients["owner"].ok("add-alert", propertyId=site["p1"], userId="owner", reason="one")
    clients["neighbour"].ok("add-alert", propertyId=site["p2"], userId="neighbour")
    clients["owner"].ok("dispatch-drone", propertyId=site["p1"])
    clients["owner"].ok("add-alert", propertyId=site["p1"], userId="owner", reason="two")
    return site


def events_of(client, **data) -> list[dict]:
    events = expect(client.call("get-events", data), "data", "events")["events"]
    assert all({"event", "eventId", "timestamp"} <= e.keys() for e in events)
    return events


def test_get_events_returns_the_visible_history_oldest_first(clients, history):
    everything = events_of(clients["staff"])
    assert [(e["event"], e["propertyId"]) for e in everything] == [
        ("events.alerts", history["p1"]), ("events.alerts", history["p2"]),
        ("events.drone-dispatched", history["p1"]), ("events.alerts", history["p1"])]
    ids_ = [e["eventId"] for e in everything]
    assert ids_ == sorted(ids_) and len(set(ids_)) == 4
    owner_view = events_of(clients["owner"])
    assert owner_view == [e for e in everything if e["propertyId"] == history["p1"]]
    assert events_of(clients["neighbour"]) == [everything[1]]


def test_get_events_since_limit_and_event(clients, history):
    staff = clients["staff"]
    everything = events_of(staff)
    first = everything[0]["eventId"]
    assert events_of(staff, since=first) == everything[1:]
    assert events_of(staff, since=everything[-1]["eventId"]) == []
    assert events_of(staff, limit=2) == everything[:2]
    alerts = events_of(clients["owner"], event="events.alerts")
    assert [e["reason"] for e in alerts] == ["one", "two"]


def test_get_events_limit_defaults_to_fifty(clients, site):
    for n in range(55):
        clients["owner"].ok("add-alert", propertyId=site["p1"], userId="owner", reason=str(n))
    events = events_of(clients["owner"])
    assert [e["reason"] for e in events] == [str(n) for n in range(50)]


@pytest.mark.parametrize("query", ["get-events", "subscribe"])
def test_since_may_be_a_digit_string(clients, history, query):
    staff = clients["staff"]
    first = events_of(staff)[0]["eventId"]
    data = {"id": "events.all"} if query == "subscribe" else {}
    as_int = staff.call(query, {**data, "since": first})
    staff.events()
    assert staff.call(query, {**data, "since": str(first)}) == as_int


@pytest.mark.parametrize("field, value", [("limit", 0), ("since", -1), ("since", "latest"),
                                          ("event", 5)])
def test_get_events_validates(clients, field, value):
    expect_error(clients["staff"].call("get-events", {field: value}), "validation_error", field)


# --- what every envelope shares -----------------------------------------------------------

@pytest.mark.parametrize("name, data, kind", [
    ("get-tiers", {}, "data"),
    ("add-alert", {"propertyId": "p1", "userId": "owner"}, "success"),
    ("session", {}, "status"),
    ("subscribe", {"id": "events.alerts"}, "status"),
    ("get-property", {"propertyId": 999_999}, "error"),
    ("get-property", {"propertyId": "nope"}, "error"),
    ("queries.no-such-query", {}, "error"),
])
@pytest.mark.parametrize("request_id", ["req-42", 7])
def test_request_identifier_is_echoed(clients, site, name, data, kind, request_id):
    data = {key: site.get(value, value) if isinstance(value, str) else value
            for key, value in data.items()}
    envelope = clients["owner"].call(name, {**data, "requestIdentifier": request_id})
    assert envelope["type"] == kind, envelope
    assert envelope["requestIdentifier"] == request_id


def test_an_unknown_query_is_an_error_and_the_connection_stays(clients):
    owner = clients["owner"]
    expect_error(owner.call("queries.launch-missiles", {}), "unknown_query")
    expect_error(owner.sio.emit("launch-missiles", {}, namespace=NAMESPACE, callback=True),
                 "unknown_query")
    assert owner.sio.is_connected(NAMESPACE)
    assert owner.ok("get-user", userId="owner")["id"] == "owner"
