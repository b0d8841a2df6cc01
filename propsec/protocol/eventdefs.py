"""One declaration per event: its name, what causes it and its payload schema (contract
section 12). The AsyncAPI document, the TypeScript types and the tests read these; handlers
name the events they emit in their query declarations (`emits`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from .events import ALL, EVENT_NAMES

Severity = Literal["low", "medium", "high", "critical"]


class EventPayload(BaseModel):
    """Every event carries its id in the log and when it was committed."""

    model_config = ConfigDict(extra="allow")
    eventId: int = Field(description="increasing across the system; use it as `since`")
    timestamp: str = Field(description="commit time, ISO 8601 UTC with milliseconds and Z")


class OnProperty(EventPayload):
    propertyId: int


class Alerts(OnProperty):
    user: str = Field(description="who raised it, or who entered unauthorized")
    alertId: int
    reason: str
    severity: Severity


class AlertAcknowledged(OnProperty):
    alertId: int
    user: str = Field(description="who acknowledged")


class AlertAssigned(OnProperty):
    alertId: int
    user: str = Field(description="who assigned")
    assignee: str


class AlertResolved(OnProperty):
    alertId: int
    user: str = Field(description="who resolved")
    note: str


class AlertEscalated(OnProperty):
    alertId: int
    level: int = Field(ge=1, le=3)
    severity: Severity


class ArmingChanged(OnProperty):
    mode: Literal["disarmed", "home", "away"]
    user: str


class Visits(OnProperty):
    clientId: str = Field(description="the visitor")


class Scanned(Visits):
    cameraId: int


class Crimes(OnProperty):
    clientId: str = Field(description="the reporter")
    crimeId: int


class AuthEntries(OnProperty):
    clientId: str = Field(description="who entered")
    authorized: bool


class PropertyAdded(EventPayload):
    id: int
    owner: str
    location: str
    tier: int
    x: int
    y: int
    width: int
    height: int
    status: str
    description: str
    clientId: str
    armed: Optional[str] = None


class StatusChange(OnProperty):
    status: str


class EquipmentChange(OnProperty):
    equipmentId: int
    equipmentType: Optional[int] = Field(None, description="on add only")
    description: Optional[str] = Field(None, description="on add only")


class Drone(OnProperty):
    droneId: int


class CoordinatesChanged(OnProperty):
    x: int
    y: int


class SizeChanged(OnProperty):
    width: int
    height: int
    size: int = Field(description="width × height")


class TierChanged(OnProperty):
    tier: int


class AnyEvent(EventPayload):
    event: str = Field(description="the event's own name")


@dataclass(frozen=True)
class EventDef:
    name: str
    payload: type[EventPayload]
    caused_by: str


EVENTS: dict[str, EventDef] = {d.name: d for d in (
    EventDef(ALL, AnyEvent, "every event below, with `event` added"),
    EventDef("events.alerts", Alerts, "add-alert, an unauthorized add-auth-entry, visitor-while-armed"),
    EventDef("events.alert-acknowledged", AlertAcknowledged, "acknowledge-alert"),
    EventDef("events.alert-assigned", AlertAssigned, "assign-alert"),
    EventDef("events.alert-resolved", AlertResolved, "resolve-alert"),
    EventDef("events.alert-escalated", AlertEscalated, "an alert left open"),
    EventDef("events.arming-changed", ArmingChanged, "set-arming"),
    EventDef("events.visits", Visits, "add-visitor"),
    EventDef("events.scanned", Scanned, "add-visitor"),
    EventDef("events.crimes", Crimes, "add-crime"),
    EventDef("events.auth-entries", AuthEntries, "add-auth-entry"),
    EventDef("events.property-added", PropertyAdded, "add-property"),
    EventDef("events.property-removed", OnProperty, "remove-property, approve-remove-property"),
    EventDef("events.property-status-change", StatusChange, "change-property-status"),
    EventDef("events.property-equipment-change", EquipmentChange, "add-equipment, remove-equipment"),
    EventDef("events.requested-remove-property", OnProperty, "request-remove-property"),
    EventDef("events.approved-remove-property", OnProperty, "approve-remove-property"),
    EventDef("events.drone-dispatched", Drone, "dispatch-drone"),
    EventDef("events.drone-recalled", Drone, "recall-drone"),
    EventDef("events.property-coordinates-changed", CoordinatesChanged, "change-property-coordinates"),
    EventDef("events.property-size-changed", SizeChanged, "change-property-size"),
    EventDef("events.property-tier-changed", TierChanged, "change-property-tier"),
)}

assert set(EVENTS) == set(EVENT_NAMES), "every event name needs its declaration here"
