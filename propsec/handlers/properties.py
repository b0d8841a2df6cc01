"""Registering properties, reading them, and the admin's edits to their shape and standing."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy import func, select

from ..extensions import db
from ..models import (REMOVED, RESOLVED, SETTABLE_STATUSES, SEVERITIES, STATUSES, Alert,
                      Equipment, Property, Tier, User)
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import Forbidden, ValidationFailed
from ..protocol.registry import websocket_query
from ..protocol.schemas import (Coordinate, Description, Extent, Id, Int, Location, Page,
                                Payload, PropertyRef, UserId, text)
from ._shared import page, property_rows, update_property, visible_properties


class NewProperty(Payload):
    location: Location
    tier: Id
    x: Coordinate
    y: Coordinate
    description: Description
    clientId: UserId
    width: Extent = 20
    height: Extent = 20


class MapBox(Payload):
    minX: Annotated[Int, Field(ge=-10**9, le=10**9)] | None = None
    minY: Annotated[Int, Field(ge=-10**9, le=10**9)] | None = None
    maxX: Annotated[Int, Field(ge=-10**9, le=10**9)] | None = None
    maxY: Annotated[Int, Field(ge=-10**9, le=10**9)] | None = None


class NewSize(PropertyRef):
    width: Extent
    height: Extent


class NewCoordinates(PropertyRef):
    x: Coordinate
    y: Coordinate


class NewStatus(PropertyRef):
    status: text(max_length=32)


class NewTier(PropertyRef):
    tier: Id


def existing_tier(tier_id: int) -> int:
    if db.session.get(Tier, tier_id) is None:
        raise ValidationFailed.on("tier", f"there is no tier {tier_id}")
    return tier_id


def change(req, event: str, values: dict, **extra) -> dict:
    """Apply an admin's edit to the target property (wire names as keys) and announce it,
    with any `extra` payload fields the event carries beside the new values."""
    prop = req.target
    update_property(prop.id, **{"tier_id" if name == "tier" else name: value
                                for name, value in values.items()})
    req.emit(event, prop, propertyId=prop.id, **values, **extra)
    return envelopes.success(f"property {prop.id} updated")


@websocket_query("add-property", NewProperty, allow=Allow.ANYONE, mutates=True,
                 emits=("events.property-added",))
def add_property(req, data: NewProperty):
    if data.clientId != req.user.id:
        if not req.user.is_admin:
            raise Forbidden("you may only add properties of your own")
        if db.session.get(User, data.clientId) is None:
            raise ValidationFailed.on("clientId", "there is no such user")
    prop = Property(owner_id=data.clientId, location=data.location, tier_id=existing_tier(data.tier),
                    x=data.x, y=data.y, width=data.width, height=data.height,
                    description=data.description)
    db.session.add(prop)
    db.session.flush()
    req.emit("events.property-added", prop, **prop.to_dict(), owner=prop.owner_id,
             clientId=prop.owner_id)
    return envelopes.success("property added", id=prop.id)


@websocket_query("get-property", PropertyRef, allow=Allow.OWNER, target="propertyId")
def get_property(req, data: PropertyRef):
    return envelopes.data(property=req.target.to_dict())


@websocket_query("get-property-detailed", PropertyRef, allow=Allow.OWNER, target="propertyId")
def get_property_detailed(req, data: PropertyRef):
    prop = req.target
    equipment = db.session.scalars(select(Equipment).where(Equipment.property_id == prop.id)
                                   .order_by(Equipment.id))
    return envelopes.data(property={
        **prop.to_dict(), "tier_name": db.session.get(Tier, prop.tier_id).name,
        "owner": prop.owner_id, "owner_full_name": db.session.get(User, prop.owner_id).full_name,
        "equipment": [e.to_dict() for e in equipment]})


@websocket_query("get-properties", Page, allow=Allow.ANYONE)
def get_properties(req, data: Page):
    query = page(visible_properties(req.user), data, Property.location)
    return envelopes.data(properties=property_rows(query))


VISIBLE_STATUSES = tuple(s for s in STATUSES if s != REMOVED)
_WIDEST = select(func.max(Property.width)).scalar_subquery()
_TALLEST = select(func.max(Property.height)).scalar_subquery()


@websocket_query("get-map", MapBox, allow=Allow.ANYONE)
def get_map(req, data: MapBox):
    """Every visible property overlapping the box (edges touching count), unpaged."""
    # `status IN (...)` and the lower bounds below let the (status, x, y) index find the box
    # instead of scanning every property: one that overlaps it starts at most the widest
    # property's width left of it, and the tallest's height above it (docs/performance.md).
    query = visible_properties(req.user).where(Property.status.in_(VISIBLE_STATUSES))
    if data.maxX is not None:
        query = query.where(Property.x <= data.maxX)
    if data.maxY is not None:
        query = query.where(Property.y <= data.maxY)
    if data.minX is not None:
        query = query.where(Property.x + Property.width >= data.minX,
                            Property.x >= data.minX - _WIDEST)
    if data.minY is not None:
        query = query.where(Property.y + Property.height >= data.minY,
                            Property.y >= data.minY - _TALLEST)
    return envelopes.data(properties=with_open_alerts(property_rows(query.order_by(Property.id))))


def with_open_alerts(rows: list[dict]) -> list[dict]:
    """Add each property's count of unresolved alerts and their top severity (or null):
    one aggregate over the open alerts, which are few, for the whole map."""
    counts = {}
    if rows:
        counts = {pid: (n, top) for pid, n, top in db.session.execute(
            select(Alert.property_id, func.count(), func.max(Alert.severity))
            .where(Alert.state != RESOLVED).group_by(Alert.property_id))}
    for row in rows:
        n, top = counts.get(row["id"], (0, None))
        row["openAlerts"], row["topSeverity"] = n, None if top is None else SEVERITIES[top]
    return rows


@websocket_query("get-tiers", allow=Allow.ANYONE)
def get_tiers(req, data):
    tiers = db.session.scalars(select(Tier).order_by(Tier.id))
    return envelopes.data(tiers=[{"id": t.id, "name": t.name} for t in tiers])


@websocket_query("change-property-size", NewSize, allow=Allow.ADMIN, target="propertyId",
                 mutates=True, lock=True, emits=("events.property-size-changed",))
def change_property_size(req, data: NewSize):
    return change(req, "events.property-size-changed", {"width": data.width, "height": data.height},
                  size=data.width * data.height)


@websocket_query("change-property-coordinates", NewCoordinates, allow=Allow.ADMIN,
                 target="propertyId", mutates=True, lock=True,
                 emits=("events.property-coordinates-changed",))
def change_property_coordinates(req, data: NewCoordinates):
    return change(req, "events.property-coordinates-changed", {"x": data.x, "y": data.y})


@websocket_query("change-property-status", NewStatus, allow=Allow.ADMIN, target="propertyId",
                 mutates=True, lock=True, emits=("events.property-status-change",))
def change_property_status(req, data: NewStatus):
    if data.status not in SETTABLE_STATUSES:
        raise ValidationFailed.on("status", "must be one of " + ", ".join(SETTABLE_STATUSES))
    return change(req, "events.property-status-change", {"status": data.status})


@websocket_query("change-property-tier", NewTier, allow=Allow.ADMIN, target="propertyId",
                 mutates=True, lock=True, emits=("events.property-tier-changed",))
def change_property_tier(req, data: NewTier):
    return change(req, "events.property-tier-changed", {"tier": existing_tier(data.tier)})
