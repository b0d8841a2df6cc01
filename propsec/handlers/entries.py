"""Door scanners: who came in, and whether they were allowed to."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from .. import schedules, sql
from ..models import AWAY, DISARMED, HOME, SEVERITIES, Alert, AllowedUser, AuthEntry
from ..models._common import utcnow
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.registry import websocket_query
from ..protocol.targets import Lookup
from ..protocol.schemas import PropertyRef, UserId
from .alerts import AlertsQuery, newest_first, raise_alert

ALLOWED_AT_TARGET = Lookup("allowed", "userId", "text", lambda property_id, user_id: select(
    AllowedUser.schedule, AllowedUser.valid_until).where(AllowedUser.property_id == property_id,
                                                         AllowedUser.user_id == user_id))
_NEW_ENTRY = sql.NewRow(AuthEntry.__table__, "property_id", "user_id", "authorized", "timestamp")
# An unauthorized entry's alert is as severe as the property is armed (contract section 14).
ENTRY_SEVERITY = {AWAY: SEVERITIES.index("critical"), HOME: SEVERITIES.index("high"),
                  DISARMED: SEVERITIES.index("medium")}


def entry_refusal(cursor, prop, user_id: str, now) -> str | None:
    """Why `user_id` may not come in at `now`, as an alert reason, or None when they may:
    the owner always may, an allowed user inside their schedule and before its end."""
    if user_id == prop.owner_id:
        return None
    listed = ALLOWED_AT_TARGET.first(cursor, prop.id, user_id)
    if listed is None:
        return schedules.UNAUTHORIZED
    zone = schedules.site_zone(current_app.config["PROPSEC_TIMEZONE"])
    return schedules.refusal(listed[0], listed[1], now, zone)


class NewEntry(PropertyRef):
    userId: UserId


@websocket_query("get-auth-entries", AlertsQuery, allow=Allow.OWNER, target="propertyId")
def get_auth_entries(req, data: AlertsQuery):
    return envelopes.data(authEntries=newest_first(AuthEntry, req, data))


@websocket_query("add-auth-entry", NewEntry, allow=Allow.STAFF, target="propertyId", mutates=True,
                 emits=("events.auth-entries", "events.alerts"), prepared=True,
                 reserves=(AuthEntry.__table__, Alert.__table__), looks_up=(ALLOWED_AT_TARGET,))
def add_auth_entry(req, data: NewEntry):
    prop, now = req.target, utcnow()
    cursor = sql.in_transaction()
    refusal = entry_refusal(cursor, prop, data.userId, now)
    authorized = refusal is None
    entry_id = _NEW_ENTRY.add(req.reserved, property_id=prop.id, user_id=data.userId,
                              authorized=authorized, timestamp=now)
    req.emit("events.auth-entries", prop, propertyId=prop.id, clientId=data.userId,
             authorized=authorized)
    extra = {} if authorized else {
        "alertId": raise_alert(req, data.userId, refusal, ENTRY_SEVERITY[prop.armed])}
    return envelopes.success("entry recorded" if authorized else "unauthorized entry: alert raised",
                             authorized=authorized, id=entry_id, **extra)
