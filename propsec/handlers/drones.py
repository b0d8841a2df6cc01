"""Dispatching drones from a property and calling them back.

Both changes are conditional UPDATEs (`... WHERE dispatched = <expected>`), so two
requests racing for the same drone cannot both win, on SQLite or PostgreSQL."""
from __future__ import annotations

from sqlalchemy import select, update

from ..extensions import db
from ..models import ACTIVE, DRONE, REMOVED, Equipment, Property
from ..models._common import utcnow
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import Conflict, NotFound
from ..protocol.registry import websocket_query
from ..protocol.schemas import Id, Page, Payload, PropertyRef
from ._shared import page

FREE_DRONE_TRIES = 5


class DroneRef(Payload):
    droneId: Id


def drones(*columns):
    return select(*(columns or (Equipment,))).where(Equipment.type_id == DRONE)


def _flip(drone_id: int, dispatched: bool) -> bool:
    """Set a drone's state only if it is in the other one; True when this request won."""
    result = db.session.execute(
        update(Equipment).where(Equipment.id == drone_id, Equipment.dispatched.is_(not dispatched))
        .values(dispatched=dispatched, dispatched_at=utcnow() if dispatched else None))
    return result.rowcount == 1


def drone_property(data: DroneRef) -> int:
    property_id = db.session.scalar(drones(Equipment.property_id).where(Equipment.id == data.droneId))
    if property_id is None:
        raise NotFound(f"drone {data.droneId} not found")
    return property_id


@websocket_query("dispatch-drone", PropertyRef, allow=Allow.OWNER, target="propertyId",
                 mutates=True, lock=True, emits=("events.drone-dispatched",))
def dispatch_drone(req, data: PropertyRef):
    prop = req.target
    if prop.status != ACTIVE:
        raise Conflict(f"property {prop.id} is {prop.status}, not ACTIVE")
    for _ in range(FREE_DRONE_TRIES):
        drone_id = db.session.scalar(
            drones(Equipment.id).where(Equipment.property_id == prop.id,
                                       Equipment.dispatched.is_(False))
            .order_by(Equipment.id).limit(1))
        if drone_id is None:
            break
        if _flip(drone_id, True):
            req.emit("events.drone-dispatched", prop, propertyId=prop.id, droneId=drone_id)
            return envelopes.data(message="drone dispatched", droneId=drone_id)
    raise Conflict(f"no free drone at property {prop.id}")


@websocket_query("recall-drone", DroneRef, allow=Allow.OWNER, target=drone_property,
                 mutates=True, emits=("events.drone-recalled",))
def recall_drone(req, data: DroneRef):
    if not _flip(data.droneId, False):
        raise Conflict(f"drone {data.droneId} is not dispatched")
    req.emit("events.drone-recalled", req.target, propertyId=req.target.id, droneId=data.droneId)
    return envelopes.status("drone recalled", droneId=data.droneId)


@websocket_query("get-dispatched-drones", Page, allow=Allow.STAFF)
def get_dispatched_drones(req, data: Page):
    query = page(drones(Equipment.id, Equipment.description, Equipment.property_id)
                 .join(Property, Property.id == Equipment.property_id)
                 .where(Equipment.dispatched.is_(True), Property.status != REMOVED),
                 data, Equipment.description)
    return envelopes.data(drones=[{"id": r.id, "description": r.description,
                                   "propertyId": r.property_id} for r in db.session.execute(query)])


@websocket_query("get-free-drones", PropertyRef, allow=Allow.OWNER, target="propertyId")
def get_free_drones(req, data: PropertyRef):
    query = drones(Equipment.id, Equipment.description).where(
        Equipment.property_id == req.target.id, Equipment.dispatched.is_(False)).order_by(Equipment.id)
    return envelopes.data(drones=[{"id": r.id, "description": r.description}
                                  for r in db.session.execute(query)])
