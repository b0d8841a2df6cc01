"""Equipment, drone and allowed-user queries of contract section 6, from the contract."""
from __future__ import annotations

import pytest
from helpers import (DRONE, EQUIPMENT, expect, expect_error, expect_refused, has_shape, ids,
                     new_property)
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)

MISSING = 999_999


def equipment_of(client, pid, query="get-equipment") -> dict[int, dict]:
    items = expect(client.call(query, propertyId=pid), "data", "equipment")["equipment"]
    assert all(has_shape(item, EQUIPMENT) for item in items)
    return {item["id"]: item for item in items}


def free_drones(client, pid) -> list[int]:
    drones = expect(client.call("get-free-drones", propertyId=pid), "data", "drones")["drones"]
    assert all({"id", "description"} <= drone.keys() for drone in drones)
    return sorted(ids(drones))


def dispatched(client, **data) -> list[dict]:
    drones = expect(client.call("get-dispatched-drones", data), "data", "drones")["drones"]
    assert all(has_shape(drone, DRONE) for drone in drones)
    return drones


def allowed(client, pid) -> dict:
    return expect(client.call("get-allowed-users", propertyId=pid), "data",
                  "allowedUsers")["allowedUsers"]


# --- equipment ----------------------------------------------------------------------------

def test_get_equipment_lists_the_propertys_equipment(clients, site):
    items = equipment_of(clients["owner"], site["p1"])
    assert set(items) == {site["camera"], *site["drones"]}
    assert items[site["camera"]] == {**items[site["camera"]], "type": 1, "name": "Camera",
                                     "description": "gate camera"}


@pytest.mark.parametrize("query", ["add-equipment", "add-equipment-property"])
def test_add_equipment_returns_its_id(clients, site, query):
    owner = clients["owner"]
    data = {"propertyId": site["p1"], "equipmentType": 4, "description": "siren"}
    new_id = expect(owner.call(query, data), "data", "id")["id"]
    item = equipment_of(owner, site["p1"])[new_id]
    assert (item["type"], item["name"], item["description"]) == (4, "Alarm", "siren")


@pytest.mark.parametrize("field, value", [("equipmentType", 6), ("equipmentType", 0),
                                          ("equipmentType", True), ("description", "d" * 2001),
                                          ("propertyId", "one")])
def test_add_equipment_validates_its_fields(clients, site, field, value):
    data = {"propertyId": site["p1"], "equipmentType": 4, "description": "", field: value}
    expect_error(clients["owner"].call("add-equipment", data), "validation_error", field)
    assert len(equipment_of(clients["owner"], site["p1"])) == 3


def test_add_equipment_on_another_owners_property_is_refused(clients, site):
    expect_refused(clients["owner"].call("add-equipment", propertyId=site["p2"], equipmentType=4,
                                         description="bug"))
    assert set(equipment_of(clients["neighbour"], site["p2"])) == {site["other_camera"]}


@pytest.mark.parametrize("query", ["remove-equipment", "remove-equipment-property"])
def test_remove_equipment_removes_it(clients, site, query):
    owner = clients["owner"]
    data = {"propertyId": str(site["p1"]), "equipmentId": str(site["camera"])}
    expect(owner.call(query, data), "success")
    assert set(equipment_of(owner, site["p1"])) == set(site["drones"])


def test_remove_equipment_of_another_property_is_not_found(clients, site):
    expect_error(clients["staff"].call("remove-equipment", propertyId=site["p1"],
                                       equipmentId=site["other_camera"]), "not_found")
    expect_error(clients["staff"].call("remove-equipment", propertyId=site["p1"],
                                       equipmentId=MISSING), "not_found")
    assert set(equipment_of(clients["neighbour"], site["p2"])) == {site["other_camera"]}


def test_a_camera_that_has_seen_visitors_can_be_removed_and_the_visits_stay(clients, site):
    staff = clients["staff"]
    staff.ok("add-visitor", propertyId=site["p1"], cameraId=site["camera"], userId="visitor-1")
    expect(staff.call("remove-equipment", propertyId=site["p1"], equipmentId=site["camera"]),
           "success")
    assert set(equipment_of(staff, site["p1"])) == set(site["drones"])
    assert staff.ok("get-weekly-visitors", propertyId=site["p1"])["visitors"] == ["visitor-1"]


@pytest.mark.parametrize("query", ["get-equipment", "get-equipment-property"])
def test_get_equipment_errors(clients, site, query):
    expect_refused(clients["neighbour"].call(query, propertyId=site["p1"]))
    expect_error(clients["staff"].call(query, propertyId=MISSING), "not_found")


def test_get_equipment_alias_answers_like_the_query(clients, site):
    owner = clients["owner"]
    assert equipment_of(owner, site["p1"], "get-equipment-property") == \
        equipment_of(owner, site["p1"])


def test_get_equipment_types_returns_the_reference_types(clients):
    types = expect(clients["owner"].call("get-equipment-types"), "data",
                   "equipmentTypes")["equipmentTypes"]
    assert {(t["id"], t["name"]) for t in types} >= {
        (1, "Camera"), (2, "Drone"), (3, "Scanner"), (4, "Alarm"), (5, "Motion sensor")}


# --- drones -------------------------------------------------------------------------------

def test_get_free_drones_lists_the_propertys_drones(clients, site):
    assert free_drones(clients["owner"], site["p1"]) == sorted(site["drones"])
    assert free_drones(clients["neighbour"], site["p2"]) == []


def test_get_free_drones_of_another_owner_is_refused(clients, site):
    expect_refused(clients["neighbour"].call("get-free-drones", propertyId=site["p1"]))


def test_dispatch_drone_takes_a_free_drone(clients, site):
    owner = clients["owner"]
    drone = expect(owner.call("dispatch-drone", propertyId=str(site["p1"])), "data",
                   "droneId")["droneId"]
    assert drone in site["drones"]
    assert free_drones(owner, site["p1"]) == [d for d in site["drones"] if d != drone]
    assert [(d["id"], d["propertyId"]) for d in dispatched(clients["staff"])] == \
        [(drone, site["p1"])]


def test_dispatch_drone_without_a_free_drone_is_a_conflict(clients, site):
    owner = clients["owner"]
    first = owner.ok("dispatch-drone", propertyId=site["p1"])["droneId"]
    second = owner.ok("dispatch-drone", propertyId=site["p1"])["droneId"]
    assert {first, second} == set(site["drones"])
    expect_error(owner.call("dispatch-drone", propertyId=site["p1"]), "conflict")
    expect_error(clients["neighbour"].call("dispatch-drone", propertyId=site["p2"]), "conflict")


@pytest.mark.parametrize("status", ["PENDING", "INACTIVE", "REJECTED", "REMOVAL_REQUESTED"])
def test_dispatch_drone_needs_an_active_property(clients, site, status):
    if status == "REMOVAL_REQUESTED":
        clients["owner"].ok("request-remove-property", propertyId=site["p1"])
    else:
        clients["admin"].ok("change-property-status", propertyId=site["p1"], status=status)
    expect_error(clients["owner"].call("dispatch-drone", propertyId=site["p1"]), "conflict")
    assert free_drones(clients["owner"], site["p1"]) == sorted(site["drones"])


def test_dispatch_drone_errors(clients, site):
    expect_refused(clients["neighbour"].call("dispatch-drone", propertyId=site["p1"]))
    expect_error(clients["staff"].call("dispatch-drone", propertyId=MISSING), "not_found")
    assert free_drones(clients["owner"], site["p1"]) == sorted(site["drones"])


def test_recall_drone_frees_it(clients, site):
    owner = clients["owner"]
    drone = owner.ok("dispatch-drone", propertyId=site["p1"])["droneId"]
    expect(owner.call("recall-drone", droneId=str(drone)), "status")
    assert free_drones(owner, site["p1"]) == sorted(site["drones"])
    assert dispatched(clients["staff"]) == []


def test_recall_drone_that_is_not_dispatched_is_a_conflict(clients, site):
    expect_error(clients["owner"].call("recall-drone", droneId=site["drones"][0]), "conflict")


def test_recall_drone_errors(clients, site):
    drone = clients["owner"].ok("dispatch-drone", propertyId=site["p1"])["droneId"]
    expect_refused(clients["neighbour"].call("recall-drone", droneId=drone))
    expect_error(clients["staff"].call("recall-drone", droneId=MISSING), "not_found")
    expect_error(clients["staff"].call("recall-drone", droneId="drone"), "validation_error",
                 "droneId")
    assert [d["id"] for d in dispatched(clients["staff"])] == [drone]


def test_a_camera_is_not_a_drone(clients, site):
    envelope = clients["staff"].call("recall-drone", droneId=site["camera"])
    assert envelope["type"] == "error"
    assert envelope["data"]["code"] in ("not_found", "validation_error", "conflict"), envelope


def test_get_dispatched_drones_searches_and_pages(clients, site):
    owner = clients["owner"]
    both = {owner.ok("dispatch-drone", propertyId=site["p1"])["droneId"] for _ in range(2)}
    staff = clients["staff"]
    assert {d["id"] for d in dispatched(staff)} == both
    assert [d["id"] for d in dispatched(staff, search="DRONE 2")] == [site["drones"][1]]
    assert dispatched(staff, search="helicopter") == []
    pages = [ids(dispatched(staff, limit=1, offset=offset)) for offset in (0, 1, 2)]
    assert sorted(pages[0] + pages[1]) == sorted(both) and pages[2] == []


def test_get_dispatched_drones_is_for_staff(clients, site):
    expect_error(clients["owner"].call("get-dispatched-drones"), "forbidden")
    expect_error(clients["staff"].call("get-dispatched-drones", limit=0), "validation_error",
                 "limit")


# --- allowed users ------------------------------------------------------------------------

def test_allowed_users_are_added_and_removed(clients, site):
    owner = clients["owner"]
    assert allowed(owner, site["p1"]) == {}
    expect(owner.call("add-allowed-user", propertyId=site["p1"], userId="staff"), "success")
    expect(owner.call("add-allowed-user", propertyId=site["p1"], userId="neighbour"), "success")
    assert allowed(owner, site["p1"]) == {"staff": "Staff Person",
                                          "neighbour": "Neighbour Person"}
    expect(owner.call("remove-allowed-user", propertyId=site["p1"], userId="staff"), "success")
    assert allowed(owner, site["p1"]) == {"neighbour": "Neighbour Person"}


def test_adding_an_allowed_user_twice_is_fine(clients, site):
    owner = clients["owner"]
    for _ in range(2):
        expect(owner.call("add-allowed-user", propertyId=site["p1"], userId="staff"), "success")
    assert allowed(owner, site["p1"]) == {"staff": "Staff Person"}


def test_an_allowed_user_must_exist(clients, site):
    envelope = clients["owner"].call("add-allowed-user", propertyId=site["p1"], userId="ghost")
    assert envelope["type"] == "error"
    assert envelope["data"]["code"] in ("not_found", "validation_error"), envelope
    assert allowed(clients["owner"], site["p1"]) == {}


def test_removing_a_user_not_on_the_list_is_not_found(clients, site):
    expect_error(clients["owner"].call("remove-allowed-user", propertyId=site["p1"],
                                       userId="staff"), "not_found")


@pytest.mark.parametrize("query", ["get-allowed-users", "add-allowed-user",
                                   "remove-allowed-user"])
def test_allowed_users_of_another_owner_are_refused(clients, site, query):
    clients["neighbour"].ok("add-allowed-user", propertyId=site["p2"], userId="staff")
    expect_refused(clients["owner"].call(query, propertyId=site["p2"], userId="staff"))
    assert allowed(clients["neighbour"], site["p2"]) == {"staff": "Staff Person"}


def test_allowed_users_of_a_missing_property_are_not_found(clients, site):
    expect_error(clients["staff"].call("get-allowed-users", propertyId=MISSING), "not_found")


def test_staff_manage_allowed_users_on_any_property(clients, site):
    staff = clients["staff"]
    staff.ok("add-allowed-user", propertyId=site["p2"], userId="owner")
    assert allowed(staff, site["p2"]) == {"owner": "Owner Person"}


def test_equipment_queries_work_on_a_new_pending_property(clients, site):
    owner = clients["owner"]
    pid = new_property(owner)
    new_id = owner.ok("add-equipment", propertyId=pid, equipmentType=2, description="spare")["id"]
    assert free_drones(owner, pid) == [new_id]
