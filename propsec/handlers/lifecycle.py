"""A property's way through approval and removal, the staff queues that follow it, and its
arming mode."""
from __future__ import annotations

from typing import Literal

from ..models import PENDING, REMOVAL_REQUESTED, REMOVED, Property
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import Conflict
from ..protocol.registry import websocket_query
from ..protocol.schemas import Page, PropertyRef
from ._shared import PROPERTY_COLUMNS, page, property_rows, update_property, with_status


def _set_status(req, status: str, *events: str) -> dict:
    prop = req.target
    update_property(prop.id, status=status)
    for event in events:
        req.emit(event, prop, propertyId=prop.id)
    return envelopes.success(f"property {prop.id} is now {status}")


class Arming(PropertyRef):
    mode: Literal["disarmed", "home", "away"]


@websocket_query("set-arming", Arming, allow=Allow.OWNER, target="propertyId", mutates=True,
                 emits=("events.arming-changed",))
def set_arming(req, data: Arming):
    """Owners arm their own properties, staff any (contract section 14)."""
    update_property(req.target.id, armed=data.mode)
    req.emit("events.arming-changed", req.target, propertyId=req.target.id, mode=data.mode,
             user=req.user.id)
    return envelopes.success(f"property {req.target.id} is now {data.mode}")


@websocket_query("remove-property", PropertyRef, allow=Allow.ADMIN, target="propertyId",
                 mutates=True, lock=True, emits=("events.property-removed",))
def remove_property(req, data: PropertyRef):
    return _set_status(req, REMOVED, "events.property-removed")


@websocket_query("request-remove-property", PropertyRef, allow=Allow.OWNER, target="propertyId",
                 mutates=True, lock=True, emits=("events.requested-remove-property",))
def request_remove_property(req, data: PropertyRef):
    if req.target.status == REMOVAL_REQUESTED:
        raise Conflict("removal has already been requested")
    return _set_status(req, REMOVAL_REQUESTED, "events.requested-remove-property")


@websocket_query("approve-remove-property", PropertyRef, allow=Allow.ADMIN, target="propertyId",
                 mutates=True, lock=True,
                 emits=("events.approved-remove-property", "events.property-removed"))
def approve_remove_property(req, data: PropertyRef):
    if req.target.status != REMOVAL_REQUESTED:
        raise Conflict("removal of this property has not been requested")
    return _set_status(req, REMOVED, "events.approved-remove-property", "events.property-removed")


@websocket_query("get-pending-properties", allow=Allow.STAFF)
def get_pending_properties(req, data):
    return envelopes.data(properties=property_rows(with_status(PENDING).order_by(Property.id)))


@websocket_query("search-pending-properties", Page, allow=Allow.STAFF)
def search_pending_properties(req, data: Page):
    return envelopes.data(properties=property_rows(page(with_status(PENDING), data,
                                                        Property.location)))


@websocket_query("search-removal-properties", Page, allow=Allow.STAFF)
def search_removal_properties(req, data: Page):
    return envelopes.data(properties=property_rows(page(with_status(REMOVAL_REQUESTED), data,
                                                        Property.location)))


@websocket_query("get-requested-remove-properties", allow=Allow.STAFF)
def get_requested_remove_properties(req, data):
    query = with_status(REMOVAL_REQUESTED, *PROPERTY_COLUMNS, Property.owner_id.label("clientId"))
    return envelopes.data(properties=property_rows(query.order_by(Property.id)))
