"""The API description is generated from the code and stays complete and valid: every query
(aliases too) and event is in the AsyncAPI document, which the official parser accepts; the
checked-in TypeScript types match what the code generates and a typed example compiles; and
real events carry what their declarations say."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import expect
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)
from services import unavailable

import propsec.handlers  # noqa: F401  (registers every declaration)
from propsec.protocol import typescript
from propsec.protocol.asyncapi import document
from propsec.protocol.eventdefs import EVENTS
from propsec.protocol.events import EVENT_NAMES
from propsec.protocol.registry import declarations

ROOT = Path(__file__).resolve().parent.parent


def node_tool(path: str) -> str:
    """The path of a Node tool from `npm ci`, or a skip (a failure under CI's settings)."""
    if shutil.which("node") is None or not (ROOT / path).exists():
        unavailable("Node.js", f"node and `npm ci` ({path}) are needed")
    return str(ROOT / path)


def test_every_query_and_event_is_described(app):
    doc = app.test_client().get("/api/asyncapi.json").get_json()
    addresses = {c["address"] for c in doc["channels"].values()}
    wire_names = {name for d in declarations() for name in (d.name, *d.aliases)}
    assert wire_names <= addresses
    assert set(EVENT_NAMES) <= addresses
    assert len(addresses) == len(wire_names) + len(EVENT_NAMES)
    sends = {o["title"] for o in doc["operations"].values() if o["action"] == "send"}
    assert sends == wire_names
    page = app.test_client().get("/api").get_data(as_text=True)
    for name in wire_names | set(EVENT_NAMES):
        assert f'id="{name}"' in page, name
    add_alert = next(c for c in doc["channels"].values() if c["address"] == "queries.add-alert")
    assert add_alert["messages"]["request"]["payload"]["properties"]["severity"]["enum"] == [
        "low", "medium", "high", "critical"]
    assert "Emits `events.alerts`" in add_alert["description"]


def test_the_official_parser_accepts_the_document(tmp_path):
    validator = node_tool("tools/validate-asyncapi.mjs")
    node_tool("node_modules/@asyncapi/parser")
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document()))
    done = subprocess.run(["node", validator, str(path)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid:" in done.stdout


def test_the_python_sdk_types_are_current_and_typed_right():
    from propsec import client_types
    from propsec.protocol import pytypes

    assert pytypes.TARGET.read_text() == pytypes.generated(), (
        "propsec/client_types.py is stale: run python -m propsec.protocol.typescript")
    assert client_types.AddAlertRequest.__required_keys__ == {"propertyId", "userId"}
    assert client_types.GetScannedVisitorsRequest.__required_keys__ == {"propertyId", "from", "to"}
    names = set(client_types.QueryName.__args__)
    assert {"add-alert", "get-open-alerts", "subscribe", "add-equipment-property"} <= names


def test_the_typescript_types_are_current_and_an_example_compiles():
    assert typescript.TARGET.read_text() == typescript.generated(), (
        "clients/typescript/propsec.d.ts is stale: run python -m propsec.protocol.typescript")
    tsc = node_tool("node_modules/.bin/tsc")
    done = subprocess.run([tsc, "-p", "clients/typescript"], capture_output=True, text=True,
                          timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_real_events_carry_what_their_declarations_say(clients, site):
    staff, admin, owner = clients["staff"], clients["admin"], clients["owner"]
    alert = expect(staff.call("add-alert", propertyId=site["p1"], userId="x", severity="low"),
                   "success")["id"]
    expect(staff.call("acknowledge-alert", alertId=alert), "success")
    expect(staff.call("assign-alert", alertId=alert, userId="staff"), "success")
    expect(staff.call("resolve-alert", alertId=alert, note="ok"), "success")
    expect(staff.call("add-visitor", propertyId=site["p1"], userId="v", cameraId=site["camera"]),
           "success")
    expect(staff.call("add-auth-entry", propertyId=site["p1"], userId="owner"), "success")
    expect(staff.call("add-crime", propertyId=site["p1"]), "success")
    expect(owner.call("set-arming", propertyId=site["p1"], mode="home"), "success")
    expect(owner.call("add-equipment", propertyId=site["p1"], equipmentType=4, description="x"), "data")
    new = expect(owner.call("add-property", location="2 Typed Row", tier=1, x=700, y=700,
                            description="", clientId="owner"), "success")["id"]
    for change, data in (("change-property-status", {"status": "ACTIVE"}),
                         ("change-property-tier", {"tier": 2}),
                         ("change-property-size", {"width": 30, "height": 30}),
                         ("change-property-coordinates", {"x": 710, "y": 710})):
        expect(admin.call(change, propertyId=new, **data), "success")
    drone = expect(owner.call("dispatch-drone", propertyId=site["p1"]), "data")["droneId"]
    expect(owner.call("recall-drone", droneId=drone), "status")
    events = expect(admin.call("get-events", limit=1000), "data")["events"]
    seen = set()
    for item in events:
        name = item.pop("event")
        seen.add(name)
        EVENTS[name].payload.model_validate(item)  # raises when a field is missing or wrong
        EVENTS["events.all"].payload.model_validate({**item, "event": name})
    assert len(seen) >= 15, seen
