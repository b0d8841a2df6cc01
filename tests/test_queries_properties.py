"""Property queries of contract section 6 and the status rules of section 5, written from
the contract: envelope types, returned fields, and at least one error path per query."""
from __future__ import annotations

import pytest
from helpers import (EQUIPMENT, PROPERTY, PROPERTY_DETAILED, expect, expect_error, expect_refused,
                     has_shape, ids, new_property)
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)

MISSING = 999_999


def get_property(client, pid) -> dict:
    return expect(client.call("get-property", propertyId=pid), "data", "property")["property"]


def listed(client, query, **data) -> list[int]:
    return ids(expect(client.call(query, data), "data", "properties")["properties"])


# --- add-property -------------------------------------------------------------------------

def test_add_property_creates_a_pending_property_with_default_size(clients):
    owner = clients["owner"]
    data = {"location": "9 Mill Lane", "tier": 3, "x": -40, "y": 70, "description": "barn",
            "clientId": "owner"}
    pid = expect(owner.call("add-property", data), "success", "id")["id"]
    assert isinstance(pid, int)
    prop = get_property(owner, pid)
    assert has_shape(prop, PROPERTY)
    assert prop == {**prop, "id": pid, "location": "9 Mill Lane", "tier": 3, "x": -40, "y": 70,
                    "width": 20, "height": 20, "status": "PENDING", "description": "barn"}


def test_add_property_keeps_a_given_size(clients):
    pid = new_property(clients["owner"], width=35, height=12)
    prop = get_property(clients["owner"], pid)
    assert (prop["width"], prop["height"]) == (35, 12)


def test_only_an_admin_may_add_a_property_for_someone_else(clients):
    owner, admin = clients["owner"], clients["admin"]
    expect_error(owner.call("add-property", location="x", tier=1, x=0, y=0, description="",
                            clientId="neighbour"), "forbidden")
    pid = new_property(admin, clientId="neighbour")
    detailed = expect(admin.call("get-property-detailed", propertyId=pid), "data", "property")
    assert detailed["property"]["owner"] == "neighbour"
    assert pid in listed(clients["neighbour"], "get-properties")


@pytest.mark.parametrize("field, value", [
    ("location", ""), ("location", "x" * 201), ("tier", 4), ("tier", True), ("x", True),
    ("x", 1_000_001), ("y", -1_000_001), ("x", 1.5), ("width", 0), ("height", 100_001),
    ("description", "d" * 2001), ("location", None),
])
def test_add_property_validates_each_field(clients, field, value):
    owner = clients["owner"]
    data = {"location": "9 Mill Lane", "tier": 1, "x": 0, "y": 0, "description": "",
            "clientId": "owner", field: value}
    expect_error(owner.call("add-property", data), "validation_error", field)
    assert listed(owner, "get-user-properties", userId="owner") == []


def test_add_property_reports_a_missing_field(clients):
    data = {"tier": 1, "x": 0, "y": 0, "description": "", "clientId": "owner"}
    expect_error(clients["owner"].call("add-property", data), "validation_error", "location")


# --- get-property / get-property-detailed ------------------------------------------------

def test_get_property_returns_the_property(clients, site):
    prop = get_property(clients["owner"], site["p1"])
    assert has_shape(prop, PROPERTY)
    assert prop == {**prop, "id": site["p1"], "location": "1 Harbour Road", "tier": 2, "x": 0,
                    "y": 0, "width": 20, "height": 20, "status": "ACTIVE", "description": "home"}


@pytest.mark.parametrize("user", ["owner", "staff", "admin"])
def test_a_missing_property_is_not_found_for_every_role(clients, site, user):
    expect_error(clients[user].call("get-property", propertyId=MISSING), "not_found")


def test_an_owner_never_sees_another_owners_property(clients, site):
    for query in ("get-property", "get-property-detailed"):
        expect_refused(clients["neighbour"].call(query, propertyId=site["p1"]))


@pytest.mark.parametrize("bad", ["abc", "12a", " 1", "", -1, 0, 1.5, True, None, [1], {"id": 1}])
def test_a_property_id_must_be_an_int_or_digit_string(clients, site, bad):
    expect_error(clients["owner"].call("get-property", propertyId=bad),
                 "validation_error", "propertyId")


# Every query that names a property by `propertyId` and only reads it.
READS_BY_PROPERTY = ["get-property", "get-property-detailed", "get-equipment",
                     "get-equipment-property", "get-free-drones", "get-allowed-users",
                     "get-alerts", "get-weekly-visitors", "get-auth-entries"]


@pytest.mark.parametrize("query", READS_BY_PROPERTY)
def test_ids_may_be_sent_as_digit_strings(clients, site, query):
    owner = clients["owner"]
    as_int = expect(owner.call(query, propertyId=site["p1"]), "data")
    assert expect(owner.call(query, propertyId=str(site["p1"])), "data") == as_int


def test_get_property_detailed_adds_tier_owner_and_equipment(clients, site):
    prop = expect(clients["staff"].call("get-property-detailed", propertyId=site["p1"]),
                  "data", "property")["property"]
    assert has_shape(prop, PROPERTY_DETAILED)
    assert (prop["tier_name"], prop["owner"], prop["owner_full_name"]) == \
        ("Standard", "owner", "Owner Person")
    assert all(has_shape(item, EQUIPMENT) for item in prop["equipment"])
    by_id = {item["id"]: (item["type"], item["name"], item["description"])
             for item in prop["equipment"]}
    assert by_id == {site["camera"]: (1, "Camera", "gate camera"),
                     site["drones"][0]: (2, "Drone", "drone 1"),
                     site["drones"][1]: (2, "Drone", "drone 2")}


def test_get_property_detailed_of_a_missing_property_is_not_found(clients, site):
    expect_error(clients["admin"].call("get-property-detailed", propertyId=MISSING), "not_found")


# --- get-properties / get-map -------------------------------------------------------------

def test_get_properties_returns_only_an_owners_own(clients, site):
    props = expect(clients["owner"].call("get-properties"), "data", "properties")["properties"]
    assert all(has_shape(p, PROPERTY) for p in props)
    assert ids(props) == [site["p1"]]


def test_get_properties_for_staff_searches_location_case_insensitively(clients, site):
    staff = clients["staff"]
    assert sorted(listed(staff, "get-properties")) == sorted([site["p1"], site["p2"]])
    assert sorted(listed(staff, "get-properties", search="harbour")) == \
        sorted([site["p1"], site["p2"]])
    assert listed(staff, "get-properties", search="2 HARBOUR") == [site["p2"]]
    assert listed(staff, "get-properties", search="nowhere") == []


def test_get_properties_pages_with_limit_and_offset(clients, site):
    staff = clients["staff"]
    extra = [new_property(clients["owner"], location=f"{n} Side Street") for n in range(3)]
    everything = set(listed(staff, "get-properties"))
    assert everything == {site["p1"], site["p2"], *extra}
    pages = [listed(staff, "get-properties", limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert {pid for page in pages for pid in page} == everything


def test_get_properties_limit_defaults_to_ten(clients, site):
    for n in range(11):
        new_property(clients["owner"], location=f"{n} Long Row")
    assert len(listed(clients["owner"], "get-properties")) == 10
    assert len(listed(clients["owner"], "get-properties", limit=1000)) == 12


@pytest.mark.parametrize("field, value", [("limit", 0), ("limit", 1001), ("limit", True),
                                          ("offset", -1), ("search", 5)])
def test_get_properties_validates_paging(clients, site, field, value):
    expect_error(clients["staff"].call("get-properties", {field: value}), "validation_error", field)


@pytest.mark.parametrize("box, expected", [
    ({}, {"p1", "p2"}),
    ({"minX": 0, "minY": 0, "maxX": 50, "maxY": 50}, {"p1"}),
    ({"minX": 15, "minY": 15, "maxX": 105, "maxY": 30}, {"p1", "p2"}),
    ({"minX": 200, "minY": 200, "maxX": 300, "maxY": 300}, set()),
    ({"minX": 110}, {"p2"}),
])
def test_get_map_returns_properties_overlapping_the_box(clients, site, box, expected):
    assert set(listed(clients["staff"], "get-map", **box)) == {site[key] for key in expected}


def test_get_map_includes_pending_but_only_an_owners_own(clients, site):
    pending = new_property(clients["owner"], x=0, y=0)
    assert set(listed(clients["owner"], "get-map")) == {site["p1"], pending}
    assert set(listed(clients["neighbour"], "get-map")) == {site["p2"]}


def test_get_map_is_not_paged(clients, site):
    for n in range(12):
        new_property(clients["neighbour"], location=f"{n} Map Lane", x=n * 30)
    assert len(listed(clients["staff"], "get-map")) == 14


def test_get_map_validates_the_box(clients, site):
    expect_error(clients["staff"].call("get-map", minX="west"), "validation_error", "minX")


# --- admin changes ------------------------------------------------------------------------

@pytest.mark.parametrize("query, data, changed", [
    ("change-property-size", {"width": 30, "height": 45}, {"width": 30, "height": 45}),
    ("change-property-coordinates", {"x": -5, "y": 999}, {"x": -5, "y": 999}),
    ("change-property-tier", {"tier": 3}, {"tier": 3}),
    ("change-property-status", {"status": "INACTIVE"}, {"status": "INACTIVE"}),
])
def test_admin_changes_a_property(clients, site, query, data, changed):
    expect(clients["admin"].call(query, propertyId=str(site["p1"]), **data), "success")
    prop = get_property(clients["owner"], site["p1"])
    assert prop == {**prop, **changed}


@pytest.mark.parametrize("query, data", [
    ("change-property-size", {"width": 30, "height": 45}),
    ("change-property-coordinates", {"x": 1, "y": 2}),
    ("change-property-tier", {"tier": 3}),
    ("change-property-status", {"status": "INACTIVE"}),
])
def test_admin_changes_are_refused_to_others_and_to_missing_properties(clients, site, query, data):
    for user in ("owner", "staff"):
        expect_error(clients[user].call(query, propertyId=site["p1"], **data), "forbidden")
    expect_error(clients["admin"].call(query, propertyId=MISSING, **data), "not_found")
    assert get_property(clients["owner"], site["p1"])["tier"] == 2


@pytest.mark.parametrize("query, data, field", [
    ("change-property-size", {"width": 0, "height": 10}, "width"),
    ("change-property-size", {"width": 10, "height": True}, "height"),
    ("change-property-coordinates", {"x": 2_000_000, "y": 0}, "x"),
    ("change-property-coordinates", {"x": 0}, "y"),
    ("change-property-tier", {"tier": 4}, "tier"),
    ("change-property-status", {"status": "REMOVED"}, "status"),
    ("change-property-status", {"status": "REMOVAL_REQUESTED"}, "status"),
    ("change-property-status", {"status": "active"}, "status"),
])
def test_admin_changes_validate_their_fields(clients, site, query, data, field):
    before = get_property(clients["admin"], site["p1"])
    expect_error(clients["admin"].call(query, propertyId=site["p1"], **data),
                 "validation_error", field)
    assert get_property(clients["admin"], site["p1"]) == before


@pytest.mark.parametrize("status", ["PENDING", "ACTIVE", "INACTIVE", "REJECTED"])
def test_every_settable_status_can_be_set(clients, site, status):
    expect(clients["admin"].call("change-property-status", propertyId=site["p2"], status=status),
           "success")
    assert get_property(clients["neighbour"], site["p2"])["status"] == status


def test_a_tier_change_shows_in_the_tier_name(clients, site):
    clients["admin"].ok("change-property-tier", propertyId=site["p1"], tier=1)
    detailed = clients["owner"].ok("get-property-detailed", propertyId=site["p1"])["property"]
    assert (detailed["tier"], detailed["tier_name"]) == (1, "Basic")


# --- pending properties -------------------------------------------------------------------

def test_get_pending_properties_lists_only_pending(clients, site):
    pending = new_property(clients["owner"])
    props = expect(clients["staff"].call("get-pending-properties"), "data", "properties")
    assert all(has_shape(p, PROPERTY) for p in props["properties"])
    assert ids(props["properties"]) == [pending]
    clients["admin"].ok("change-property-status", propertyId=pending, status="ACTIVE")
    assert listed(clients["staff"], "get-pending-properties") == []


def test_search_pending_properties_searches_and_pages(clients, site):
    mill = new_property(clients["owner"], location="9 Mill Lane")
    quay = new_property(clients["neighbour"], location="3 Quay Street")
    staff = clients["staff"]
    assert set(listed(staff, "search-pending-properties", search="")) == {mill, quay}
    assert listed(staff, "search-pending-properties", search="MILL") == [mill]
    assert listed(staff, "search-pending-properties", search="harbour") == []
    pages = [listed(staff, "search-pending-properties", search="", limit=1, offset=o)
             for o in (0, 1)]
    assert sorted(pages[0] + pages[1]) == sorted([mill, quay])


@pytest.mark.parametrize("query", ["get-pending-properties", "search-pending-properties",
                                   "search-removal-properties",
                                   "get-requested-remove-properties"])
def test_staff_lists_are_refused_to_owners(clients, site, query):
    expect_error(clients["owner"].call(query, search=""), "forbidden")


def test_search_pending_properties_validates_limit(clients, site):
    expect_error(clients["staff"].call("search-pending-properties", search="", limit=0),
                 "validation_error", "limit")


# --- removal ------------------------------------------------------------------------------

def test_request_remove_property_marks_it_removal_requested(clients, site):
    expect(clients["owner"].call("request-remove-property", propertyId=site["p1"]), "success")
    assert get_property(clients["owner"], site["p1"])["status"] == "REMOVAL_REQUESTED"


def test_request_remove_property_of_another_owner_is_refused(clients, site):
    expect_refused(clients["neighbour"].call("request-remove-property", propertyId=site["p1"]))
    expect_error(clients["owner"].call("request-remove-property", propertyId=MISSING),
                 "not_found")
    assert get_property(clients["owner"], site["p1"])["status"] == "ACTIVE"


def test_removal_requests_are_listed_for_staff(clients, site):
    clients["owner"].ok("request-remove-property", propertyId=site["p1"])
    staff = clients["staff"]
    assert listed(staff, "search-removal-properties", search="harbour") == [site["p1"]]
    assert listed(staff, "search-removal-properties", search="nowhere") == []
    requested = staff.ok("get-requested-remove-properties")["properties"]
    assert [(p["id"], p["clientId"]) for p in requested] == [(site["p1"], "owner")]
    assert has_shape(requested[0], PROPERTY)


def test_approve_remove_property_removes_it(clients, site):
    clients["owner"].ok("request-remove-property", propertyId=site["p1"])
    expect(clients["admin"].call("approve-remove-property", propertyId=site["p1"]), "success")
    assert get_property(clients["owner"], site["p1"])["status"] == "REMOVED"
    staff = clients["staff"]
    assert listed(staff, "search-removal-properties", search="") == []
    assert listed(staff, "get-requested-remove-properties") == []


@pytest.mark.parametrize("status", ["ACTIVE", "PENDING", "INACTIVE"])
def test_approve_remove_property_needs_a_request(clients, site, status):
    clients["admin"].ok("change-property-status", propertyId=site["p1"], status=status)
    expect_error(clients["admin"].call("approve-remove-property", propertyId=site["p1"]),
                 "conflict")
    assert get_property(clients["owner"], site["p1"])["status"] == status


def test_approve_remove_property_is_for_admins(clients, site):
    clients["owner"].ok("request-remove-property", propertyId=site["p1"])
    expect_error(clients["staff"].call("approve-remove-property", propertyId=site["p1"]),
                 "forbidden")
    assert get_property(clients["owner"], site["p1"])["status"] == "REMOVAL_REQUESTED"


def test_remove_property_removes_it_at_once(clients, site):
    expect(clients["admin"].call("remove-property", propertyId=site["p1"]), "success")
    assert get_property(clients["owner"], site["p1"])["status"] == "REMOVED"


def test_remove_property_is_for_admins_and_existing_properties(clients, site):
    expect_error(clients["owner"].call("remove-property", propertyId=site["p1"]), "forbidden")
    expect_error(clients["admin"].call("remove-property", propertyId=MISSING), "not_found")
    assert get_property(clients["owner"], site["p1"])["status"] == "ACTIVE"


def test_get_tiers_returns_the_reference_tiers(clients):
    tiers = expect(clients["owner"].call("get-tiers"), "data", "tiers")["tiers"]
    assert {(t["id"], t["name"]) for t in tiers} >= {(1, "Basic"), (2, "Standard"),
                                                     (3, "Premium")}


# --- a REMOVED property (contract section 5) ----------------------------------------------

@pytest.fixture
def removed(clients, site):
    """P1 removed by an admin after it got an allowed user, an alert and a dispatched drone."""
    owner = clients["owner"]
    owner.ok("add-allowed-user", propertyId=site["p1"], userId="staff")
    alert = owner.ok("add-alert", propertyId=site["p1"], userId="owner", reason="before")["id"]
    drone = owner.ok("dispatch-drone", propertyId=site["p1"])["droneId"]
    clients["admin"].ok("remove-property", propertyId=site["p1"])
    return {**site, "alert": alert, "dispatched": drone}


# Every query that changes a property or anything on it, with a payload aimed at P1.
MUTATIONS = {
    "remove-property": lambda s: {"propertyId": s["p1"]},
    "request-remove-property": lambda s: {"propertyId": s["p1"]},
    "approve-remove-property": lambda s: {"propertyId": s["p1"]},
    "change-property-status": lambda s: {"propertyId": s["p1"], "status": "ACTIVE"},
    "change-property-tier": lambda s: {"propertyId": s["p1"], "tier": 3},
    "change-property-size": lambda s: {"propertyId": s["p1"], "width": 50, "height": 50},
    "change-property-coordinates": lambda s: {"propertyId": s["p1"], "x": 7, "y": 7},
    "add-equipment": lambda s: {"propertyId": s["p1"], "equipmentType": 4, "description": ""},
    "add-equipment-property": lambda s: {"propertyId": s["p1"], "equipmentType": 4,
                                         "description": ""},
    "remove-equipment": lambda s: {"propertyId": s["p1"], "equipmentId": s["camera"]},
    "add-allowed-user": lambda s: {"propertyId": s["p1"], "userId": "neighbour"},
    "remove-allowed-user": lambda s: {"propertyId": s["p1"], "userId": "staff"},
    "add-alert": lambda s: {"propertyId": s["p1"], "userId": "admin", "reason": "after"},
    "acknowledge-alert": lambda s: {"alertId": s["alert"]},
    "add-visitor": lambda s: {"propertyId": s["p1"], "userId": "v1", "cameraId": s["camera"]},
    "add-crime": lambda s: {"propertyId": s["p1"], "description": "theft"},
    "add-auth-entry": lambda s: {"propertyId": s["p1"], "userId": "owner"},
    "dispatch-drone": lambda s: {"propertyId": s["p1"]},
    "recall-drone": lambda s: {"droneId": s["dispatched"]},
}


@pytest.mark.parametrize("query", MUTATIONS)
def test_every_change_to_a_removed_property_is_a_conflict(clients, removed, query):
    admin = clients["admin"]
    before = admin.ok("get-property", propertyId=removed["p1"])
    expect_error(admin.call(query, MUTATIONS[query](removed)), "conflict")
    assert admin.ok("get-property", propertyId=removed["p1"]) == before


def test_a_removed_property_keeps_its_history(clients, removed):
    alerts = clients["staff"].ok("get-alerts", propertyId=removed["p1"])["alerts"]
    assert ids(alerts) == [removed["alert"]]


@pytest.mark.parametrize("user, query, data", [
    ("staff", "get-properties", {}),
    ("staff", "get-properties", {"search": "harbour"}),
    ("owner", "get-properties", {}),
    ("staff", "get-map", {}),
    ("owner", "get-map", {}),
    ("owner", "get-user-properties", {"userId": "owner"}),
    ("staff", "get-user-properties", {"userId": "owner"}),
])
def test_a_removed_property_leaves_every_list_and_the_map(clients, removed, user, query, data):
    assert removed["p1"] not in listed(clients[user], query, **data)


def test_get_property_still_returns_a_removed_property(clients, removed):
    prop = get_property(clients["owner"], removed["p1"])
    assert has_shape(prop, PROPERTY)
    assert (prop["status"], prop["location"]) == ("REMOVED", "1 Harbour Road")
