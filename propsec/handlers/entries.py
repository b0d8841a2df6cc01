"""Door scanners: who came in, and whether they were allowed to."""
from __future__ import annotations

from ..extensions import db
from ..models import AllowedUser, AuthEntry
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.registry import websocket_query
from ..protocol.schemas import PropertyRef, UserId
from .alerts import AlertsQuery, newest_first, raise_alert

UNAUTHORIZED = "unauthorized-entry"


class NewEntry(PropertyRef):
    userId: UserId


@websocket_query("get-auth-entries", AlertsQuery, allow=Allow.OWNER, target="propertyId")
def get_auth_entries(req, data: AlertsQuery):
    return envelopes.data(authEntries=newest_first(AuthEntry, req, data))


@websocket_query("add-auth-entry", NewEntry, allow=Allow.STAFF, target="propertyId", mutates=True,
                 emits=("events.auth-entries", "events.alerts"))
def add_auth_entry(req, data: NewEntry):
    prop = req.target
    authorized = (data.userId == prop.owner_id
                  or db.session.get(AllowedUser, (prop.id, data.userId)) is not None)
    entry = AuthEntry(property_id=prop.id, user_id=data.userId, authorized=authorized)
    db.session.add(entry)
    db.session.flush()
    req.emit("events.auth-entries", prop, propertyId=prop.id, clientId=data.userId,
             authorized=authorized)
    extra = {} if authorized else {"alertId": raise_alert(req, data.userId, UNAUTHORIZED).id}
    return envelopes.success("entry recorded" if authorized else "unauthorized entry: alert raised",
                             authorized=authorized, id=entry.id, **extra)
