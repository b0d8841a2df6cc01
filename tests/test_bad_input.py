"""Malformed payloads for every query: a validation_error naming the field (never
internal_error, never a dropped connection) and no change to the database."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

import propsec.handlers  # noqa: F401  (registers every declaration)
from propsec.extensions import db
from propsec.models import (Alert, AllowedUser, AuthEntry, Crime, Equipment, EventRecord,
                            Property, User, Visit)
from propsec.protocol.registry import declarations

# Values that no field of the contract accepts (a boolean only where the field is not one): a
# boolean, a list, an object, a 60 KiB
# string (every string field is shorter; no id is a word) and a number beyond every range.
HOSTILE_VALUES = {
    "boolean": True,
    "list": [1, 2],
    "object": {"nested": {"deeper": []}},
    "60KiB string": "x" * 60 * 1024,
    "huge number": 10**30,
    "negative": -(10**12),
}
NOT_OBJECTS = {"list": [1, 2, 3], "string": "propertyId=1", "number": 7, "true": True}


def snapshot(app) -> dict:
    with app.app_context():
        counts = {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                  for model in (Property, Equipment, AllowedUser, Alert, Visit, AuthEntry, Crime,
                                EventRecord, User)}
        counts["statuses"] = tuple(db.session.scalars(select(Property.status).order_by(Property.id)))
        counts["dispatched"] = tuple(db.session.scalars(select(Equipment.dispatched)))
        db.session.remove()
        return counts


def wire_fields(decl) -> list[str]:
    return [info.alias or name for name, info in decl.schema.model_fields.items()]


def boolean_fields(decl) -> set[str]:
    return {info.alias or name for name, info in decl.schema.model_fields.items()
            if info.annotation is bool}


def required_fields(decl) -> list[str]:
    return [info.alias or name for name, info in decl.schema.model_fields.items()
            if info.is_required()]


def assert_validation_error(envelope, field: str | None = None):
    assert envelope["type"] == "error", envelope
    assert envelope["data"]["code"] == "validation_error", envelope
    if field is not None:
        assert field in envelope["data"]["fields"], envelope


WITH_FIELDS = [d for d in declarations() if wire_fields(d)]


@pytest.mark.parametrize("decl", WITH_FIELDS, ids=lambda d: d.name)
def test_each_field_refuses_hostile_values(decl, app, connect, site):
    admin = connect("admin")
    before = snapshot(app)
    for field in wire_fields(decl):
        for label, value in HOSTILE_VALUES.items():
            if label == "boolean" and field in boolean_fields(decl):
                continue
            envelope = admin.call(decl.name, {field: value})
            assert_validation_error(envelope, field)
    assert admin.sio.is_connected("/propsec")
    assert admin.ok("get-tiers")["tiers"]  # the connection still answers
    assert snapshot(app) == before


@pytest.mark.parametrize("decl", [d for d in declarations() if required_fields(d)],
                         ids=lambda d: d.name)
def test_missing_fields_are_named(decl, app, connect, site):
    admin = connect("admin")
    before = snapshot(app)
    envelope = admin.call(decl.name, {"unrelated": 1})
    assert_validation_error(envelope)
    assert set(required_fields(decl)) <= set(envelope["data"]["fields"])
    assert snapshot(app) == before


@pytest.mark.parametrize("label", NOT_OBJECTS)
def test_payload_that_is_not_an_object(label, connect, site, app):
    admin = connect("admin")
    before = snapshot(app)
    for decl in declarations():
        envelope = admin.call(decl.name, NOT_OBJECTS[label])
        assert_validation_error(envelope, "data")
    assert snapshot(app) == before


def test_unknown_query_is_named_and_harmless(connect, app):
    staff = connect("staff")
    for name in ("queries.nope", "queries.", "queries.get-property ", "drop table", "events.all"):
        envelope = staff.call(name, {"propertyId": 1})
        assert envelope["type"] == "error" and envelope["data"]["code"] == "unknown_query"
    assert staff.ok("session")["user"]["id"] == "staff"


@pytest.mark.parametrize("field,value,reason", [
    ("x", 1_000_001, "above range"), ("x", 2.5, "float"), ("x", "5", "digits for a coordinate"),
    ("width", 0, "zero width"), ("height", 100_001, "too tall"), ("tier", 9, "no such tier"),
    ("location", "", "empty location"), ("location", "l" * 201, "long location"),
    ("description", "d" * 2001, "long description"), ("location", "a\x00b", "NUL"),
    ("location", "\ud800", "lone surrogate"), ("clientId", "", "empty owner"),
])
def test_add_property_rules(field, value, reason, connect, app):
    owner = connect("owner")
    before = snapshot(app)
    payload = {"location": "5 Canal Walk", "tier": 1, "x": 1, "y": 1, "description": "",
               "clientId": "owner", field: value}
    assert_validation_error(owner.call("add-property", payload), field)
    assert snapshot(app) == before


def test_ids_accept_digit_strings_only(connect, site):
    staff = connect("staff")
    assert staff.ok("get-property", propertyId=str(site["p1"]))["property"]["id"] == site["p1"]
    for bad in ("1.0", " 1", "0x1", "١", "-1", "", 0):
        assert_validation_error(staff.call("get-property", propertyId=bad), "propertyId")


def test_status_outside_the_settable_four(connect, site, app):
    admin = connect("admin")
    before = snapshot(app)
    for status in ("REMOVED", "REMOVAL_REQUESTED", "active", "", "DELETED"):
        assert_validation_error(admin.call("change-property-status", propertyId=site["p1"],
                                           status=status), "status")
    assert snapshot(app) == before
