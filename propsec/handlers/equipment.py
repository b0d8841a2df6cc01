"""Equipment installed on a property."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import Equipment, EquipmentType
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import Conflict, NotFound, ValidationFailed
from ..protocol.registry import websocket_query
from ..protocol.schemas import Description, Id, PropertyRef

CHANGE = ("events.property-equipment-change",)


class NewEquipment(PropertyRef):
    equipmentType: Id
    description: Description


class EquipmentRef(PropertyRef):
    equipmentId: Id


@websocket_query("add-equipment", NewEquipment, allow=Allow.OWNER, aliases=("add-equipment-property",),
                 target="propertyId", mutates=True, emits=CHANGE)
def add_equipment(req, data: NewEquipment):
    if db.session.get(EquipmentType, data.equipmentType) is None:
        raise ValidationFailed.on("equipmentType", f"there is no equipment type {data.equipmentType}")
    item = Equipment(property_id=req.target.id, type_id=data.equipmentType,
                     description=data.description)
    db.session.add(item)
    db.session.flush()
    req.emit(CHANGE[0], req.target, propertyId=req.target.id, equipmentId=item.id,
             equipmentType=item.type_id, description=item.description)
    return envelopes.data(message="equipment added", id=item.id)


@websocket_query("remove-equipment", EquipmentRef, allow=Allow.OWNER,
                 aliases=("remove-equipment-property",), target="propertyId", mutates=True,
                 emits=CHANGE)
def remove_equipment(req, data: EquipmentRef):
    item = db.session.get(Equipment, data.equipmentId, with_for_update=True)
    if item is None or item.property_id != req.target.id:
        raise NotFound(f"equipment {data.equipmentId} is not on property {req.target.id}")
    if item.dispatched:
        raise Conflict("this drone is out on a dispatch; recall it first")
    db.session.delete(item)
    req.emit(CHANGE[0], req.target, propertyId=req.target.id, equipmentId=data.equipmentId)
    return envelopes.success("equipment removed")


@websocket_query("get-equipment", PropertyRef, allow=Allow.OWNER, aliases=("get-equipment-property",),
                 target="propertyId")
def get_equipment(req, data: PropertyRef):
    items = db.session.scalars(select(Equipment).where(Equipment.property_id == req.target.id)
                               .order_by(Equipment.id))
    return envelopes.data(equipment=[item.to_dict() for item in items])


@websocket_query("get-equipment-types", allow=Allow.ANYONE)
def get_equipment_types(req, data):
    types = db.session.scalars(select(EquipmentType).order_by(EquipmentType.id))
    return envelopes.data(equipmentTypes=[{"id": t.id, "name": t.name} for t in types])
