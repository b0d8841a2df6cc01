"""Internal events: session, subscribe, unsubscribe; and the event history query."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import Forbidden, ValidationFailed
from ..pipeline import pipeline
from ..protocol.events import EVENT_NAMES, room, wire_payload
from ..protocol.registry import websocket_query
from ..protocol.schemas import Cursor, Int, Payload, UserId, text


class SessionData(Payload):
    id: UserId | None = None


class SubscriptionData(Payload):
    id: text(max_length=64)
    clientId: UserId | None = None
    since: Cursor | None = None


class EventsQuery(Payload):
    since: Cursor = 0
    limit: Annotated[Int, Field(ge=1, le=1000)] = 50
    event: text(max_length=64) | None = None


def _checked(req, data) -> str:
    if data.clientId is not None and data.clientId != req.user.id:
        raise Forbidden("clientId must be your own id")
    if data.id not in EVENT_NAMES:
        raise ValidationFailed.on("id", "unknown event name")
    return data.id


@websocket_query("session", SessionData, allow=Allow.ANYONE, internal=True)
def session(req, data: SessionData):
    if data.id is not None and data.id != req.user.id:
        raise Forbidden("id must be your own id")
    return envelopes.status("session started", user=req.user.brief())


@websocket_query("subscribe", SubscriptionData, allow=Allow.ANYONE, internal=True)
def subscribe(req, data: SubscriptionData):
    event = _checked(req, data)
    # Joined and replayed in one step against this process's tailer (pipeline/tailer.py).
    req.settled = True  # a replay may send events before a failure: never run it twice
    replayed, last = pipeline().subscribe(req.connection, req.user, event, data.since)
    getattr(req.connection, "subscriptions", set()).add(event)
    return envelopes.status(f"subscribed to {event}", replayed=replayed, lastEventId=last)


@websocket_query("unsubscribe", SubscriptionData, allow=Allow.ANYONE, internal=True)
def unsubscribe(req, data: SubscriptionData):
    event = _checked(req, data)
    req.connection.leave(room(event, req.user))
    getattr(req.connection, "subscriptions", set()).discard(event)
    return envelopes.status(f"unsubscribed from {event}")


@websocket_query("get-events", EventsQuery, allow=Allow.ANYONE)
def get_events(req, data: EventsQuery):
    if data.event is not None and data.event not in EVENT_NAMES:
        raise ValidationFailed.on("event", "unknown event name")
    records = pipeline().history(req.user, data.since, data.limit, data.event)
    return envelopes.data(events=[wire_payload(r, with_name=True) for r in records])
