"""Alerts raised at a property, and staff acknowledging them."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy import select, update

from .. import sql
from ..extensions import db
from ..models import Alert
from ..models._common import utcnow
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import Conflict, NotFound
from ..protocol.registry import websocket_query
from ..protocol.schemas import Id, Int, Payload, PropertyRef, Reason, UserId

RecentLimit = Annotated[Int, Field(ge=1, le=1000)]


class AlertsQuery(PropertyRef):
    limit: RecentLimit = 100


class NewAlert(PropertyRef):
    userId: UserId
    reason: Reason = ""


class AlertRef(Payload):
    alertId: Id


_NEW_ALERT = sql.inserting(Alert.__table__, "property_id", "user_id", "reason", "timestamp")


def raise_alert(req, user_id: str, reason: str) -> int:
    """Store an alert on the target property and announce it; add-auth-entry shares this.
    Returns the alert's id."""
    alert_id = _NEW_ALERT.scalar(sql.in_transaction(), property_id=req.target.id,
                                 user_id=user_id, reason=reason, timestamp=utcnow())
    req.emit("events.alerts", req.target, propertyId=req.target.id, user=user_id,
             alertId=alert_id, reason=reason)
    return alert_id


def alert_property(data: AlertRef) -> int:
    property_id = db.session.scalar(select(Alert.property_id).where(Alert.id == data.alertId))
    if property_id is None:
        raise NotFound(f"alert {data.alertId} not found")
    return property_id


def newest_first(model, req, data: AlertsQuery) -> list[dict]:
    """The target property's latest rows of a log table (alerts, entries), newest first."""
    rows = db.session.scalars(select(model).where(model.property_id == req.target.id)
                              .order_by(model.id.desc()).limit(data.limit))
    return [row.to_dict() for row in rows]


@websocket_query("get-alerts", AlertsQuery, allow=Allow.OWNER, target="propertyId")
def get_alerts(req, data: AlertsQuery):
    return envelopes.data(alerts=newest_first(Alert, req, data))


@websocket_query("add-alert", NewAlert, allow=Allow.OWNER, target="propertyId", mutates=True,
                 emits=("events.alerts",), prepared=True)
def add_alert(req, data: NewAlert):
    return envelopes.success("alert raised", id=raise_alert(req, data.userId, data.reason))


@websocket_query("acknowledge-alert", AlertRef, allow=Allow.STAFF, target=alert_property,
                 mutates=True, emits=("events.alert-acknowledged",))
def acknowledge_alert(req, data: AlertRef):
    result = db.session.execute(
        update(Alert).where(Alert.id == data.alertId, Alert.acknowledged_by.is_(None))
        .values(acknowledged_by=req.user.id, acknowledged_at=utcnow()))
    if result.rowcount != 1:
        raise Conflict(f"alert {data.alertId} was already acknowledged")
    req.emit("events.alert-acknowledged", req.target, propertyId=req.target.id,
             alertId=data.alertId, user=req.user.id)
    return envelopes.success("alert acknowledged")
