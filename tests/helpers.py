"""Shared pieces of the contract tests: envelope checks, the object shapes of contract
section 5, and a way to put backdated rows straight into the database."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from propsec.extensions import db

# Contract section 5: the fields every object of a kind carries (more are allowed).
PROPERTY = {"id", "location", "tier", "x", "y", "width", "height", "status", "description"}
PROPERTY_DETAILED = PROPERTY | {"tier_name", "owner", "owner_full_name", "equipment"}
EQUIPMENT = {"id", "type", "description", "name"}
DRONE = {"id", "description", "propertyId"}
ALERT = {"id", "userId", "timestamp", "reason", "acknowledgedBy", "acknowledgedAt"}
USER = {"id", "fullName"}

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

def expect(envelope: dict, kind: str, *fields: str) -> dict:
    """The envelope is of type `kind` and its data carries `fields`; returns the data."""
    assert envelope.get("type") == kind, envelope
    data = envelope["data"]
    assert isinstance(data, dict), envelope
    if kind in ("status", "success"):
        assert isinstance(data.get("message"), str), envelope
    missing = set(fields) - data.keys()
    assert not missing, f"missing {sorted(missing)} in {envelope}"
    return data


def expect_error(envelope: dict, code: str, field: str | None = None) -> dict:
    """An error envelope with `code`; for validation errors `fields` names `field`."""
    assert envelope.get("type") == "error", envelope
    data = envelope["data"]
    assert data["code"] == code, envelope
    assert isinstance(data["message"], str) and data["message"], envelope
    if field is not None:
        assert field in data.get("fields", {}), envelope
    return data


def expect_refused(envelope: dict) -> None:
    """Someone who may not see a property gets `forbidden` or `not_found`, never its data."""
    assert envelope.get("type") == "error", envelope
    assert envelope["data"]["code"] in ("forbidden", "not_found"), envelope


def has_shape(item: dict, fields: set[str]) -> bool:
    return fields <= item.keys()


def ids(items: list[dict], key: str = "id") -> list:
    return [item[key] for item in items]


def now() -> datetime:
    """Naive UTC, as the models store it."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def ago(**delta) -> datetime:
    return now() - timedelta(**delta)


def insert(app, *rows) -> list[int]:
    """Add model rows directly (e.g. backdated ones) and return their ids."""
    with app.app_context():
        db.session.add_all(rows)
        db.session.commit()
        return [getattr(row, "id", None) for row in rows]


def new_property(client, **fields) -> int:
    """Register a property through `add-property` as `client`'s own (it starts PENDING)."""
    user = client.ok("session")["user"]["id"]
    data = {"location": "7 Quay Street", "tier": 1, "x": 500, "y": 500, "description": "",
            "clientId": user, **fields}
    return expect(client.call("add-property", data), "success", "id")["id"]


class Clients:
    """One lazily connected test client per user: `clients["staff"].ok(...)`."""

    def __init__(self, connect):
        self._connect = connect
        self._clients = {}

    def __getitem__(self, user_id):
        if user_id not in self._clients:
            self._clients[user_id] = self._connect(user_id)
        return self._clients[user_id]


@pytest.fixture(name="clients")
def clients_fixture(connect):
    """Import this into a test module to use the `clients` fixture."""
    return Clients(connect)


def change_counts(app) -> tuple[int, int, int]:
    """How many alerts, event rows and audit entries the database holds."""
    from sqlalchemy import func, select

    from propsec.models import Alert, AuditEntry, EventRecord

    with app.app_context():
        found = tuple(db.session.scalar(select(func.count()).select_from(model))
                      for model in (Alert, EventRecord, AuditEntry))
        db.session.remove()
        return found
