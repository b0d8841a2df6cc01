"""Events on the wire: their names, the rooms they go to, and their payload.

How an event gets there (written in the request's transaction, pushed by each process's
tailer once final) is the pipeline's business (propsec/pipeline)."""
from __future__ import annotations

from dataclasses import dataclass

from ..models._common import iso
from .access import Principal

NAMESPACE = "/propsec"
ALL = "events.all"
EVENT_NAMES = (
    ALL, "events.alerts", "events.alert-acknowledged", "events.visits", "events.scanned",
    "events.crimes", "events.auth-entries", "events.property-added", "events.property-removed",
    "events.property-status-change", "events.property-equipment-change",
    "events.requested-remove-property", "events.approved-remove-property",
    "events.drone-dispatched", "events.drone-recalled", "events.property-coordinates-changed",
    "events.property-size-changed", "events.property-tier-changed",
    "events.alert-assigned", "events.alert-resolved", "events.alert-escalated",
    "events.arming-changed",
)


@dataclass(frozen=True)
class PendingEvent:
    """An event a handler announced; it becomes a row of the log when the request commits."""

    name: str
    property_id: int
    owner_id: str
    payload: dict


def room(event_name: str, user: Principal) -> str:
    """Staff and admins share one room per event; each owner has their own."""
    return f"{event_name}|staff" if user.is_staff else f"{event_name}|owner:{user.id}"


def rooms(event_name: str, owner_id: str) -> list[str]:
    """Every room an event about a property of `owner_id` goes to."""
    return [f"{event_name}|staff", f"{event_name}|owner:{owner_id}"]


def wire_payload(row, with_name: bool = False) -> dict:
    """A log row as its subscribers receive it (`events.all` copies add the name)."""
    body = {**row.payload, "eventId": row.id, "timestamp": iso(row.created_at)}
    if with_name:
        body["event"] = row.name
    return body
