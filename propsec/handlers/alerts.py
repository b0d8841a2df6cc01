"""Alerts raised at a property and their way to resolution (contract section 13):
severity, acknowledge, assign, resolve, and the queue of open alerts."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from sqlalchemy import func, select, update

from .. import sql
from ..extensions import db
from ..models import (ACKNOWLEDGED, OPEN, REMOVED, RESOLVED, SEVERITIES, Alert, Property,
                      User)
from ..models._common import utcnow
from ..protocol import envelopes
from ..protocol.access import STAFF_ROLES, Allow
from ..protocol.errors import Conflict, NotFound, ValidationFailed
from ..protocol.registry import websocket_query
from ..protocol.schemas import Id, Int, Limit, Offset, Payload, PropertyRef, Reason, UserId, text

RecentLimit = Annotated[Int, Field(ge=1, le=1000)]
Severity = Literal["low", "medium", "high", "critical"]
HIGH = SEVERITIES.index("high")


class AlertsQuery(PropertyRef):
    limit: RecentLimit = 100


class NewAlert(PropertyRef):
    userId: UserId
    reason: Reason = ""
    severity: Severity = "high"


class AlertRef(Payload):
    alertId: Id


class Assignment(AlertRef):
    userId: UserId


class Resolution(AlertRef):
    note: text(1, 2000)


class OpenAlertsQuery(Payload):
    limit: Limit = 100
    offset: Offset = 0
    minSeverity: Severity | None = None


_NEW_ALERT = sql.NewRow(Alert.__table__, "property_id", "user_id", "reason", "timestamp",
                        "severity")


def raise_alert(req, user_id: str, reason: str, severity: int = HIGH) -> int:
    """Store an open alert on the target property and announce it; add-auth-entry shares
    this. Returns the alert's id."""
    alert_id = _NEW_ALERT.add(req.reserved, property_id=req.target.id, user_id=user_id,
                              reason=reason, timestamp=utcnow(), severity=severity)
    req.emit("events.alerts", req.target, propertyId=req.target.id, user=user_id,
             alertId=alert_id, reason=reason, severity=SEVERITIES[severity])
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


def change_alert(data: AlertRef, allowed_states: tuple[str, ...], refusal: str, **values) -> None:
    """Update the alert if it is in one of `allowed_states` (one conditional UPDATE, so two
    staff acting at once cannot both succeed); `conflict` otherwise."""
    result = db.session.execute(update(Alert).where(
        Alert.id == data.alertId, Alert.state.in_(allowed_states)).values(**values))
    if result.rowcount != 1:
        raise Conflict(f"alert {data.alertId} {refusal}")


@websocket_query("get-alerts", AlertsQuery, allow=Allow.OWNER, target="propertyId")
def get_alerts(req, data: AlertsQuery):
    return envelopes.data(alerts=newest_first(Alert, req, data))


@websocket_query("add-alert", NewAlert, allow=Allow.OWNER, target="propertyId", mutates=True,
                 emits=("events.alerts",), prepared=True, reserves=(Alert.__table__,))
def add_alert(req, data: NewAlert):
    alert_id = raise_alert(req, data.userId, data.reason, SEVERITIES.index(data.severity))
    return envelopes.success("alert raised", id=alert_id)


@websocket_query("acknowledge-alert", AlertRef, allow=Allow.STAFF, target=alert_property,
                 mutates=True, emits=("events.alert-acknowledged",))
def acknowledge_alert(req, data: AlertRef):
    change_alert(data, (OPEN,), "is not open", state=ACKNOWLEDGED, acknowledged_by=req.user.id,
                 acknowledged_at=utcnow())
    req.emit("events.alert-acknowledged", req.target, propertyId=req.target.id,
             alertId=data.alertId, user=req.user.id)
    return envelopes.success("alert acknowledged")


@websocket_query("assign-alert", Assignment, allow=Allow.STAFF, target=alert_property,
                 mutates=True, emits=("events.alert-assigned",))
def assign_alert(req, data: Assignment):
    assignee = db.session.get(User, data.userId)
    if assignee is None or assignee.role not in STAFF_ROLES:
        raise ValidationFailed.on("userId", "must be a staff or admin user")
    change_alert(data, (OPEN, ACKNOWLEDGED), "is already resolved", assignee=assignee.id)
    req.emit("events.alert-assigned", req.target, propertyId=req.target.id,
             alertId=data.alertId, user=req.user.id, assignee=assignee.id)
    return envelopes.success(f"alert assigned to {assignee.id}")


@websocket_query("resolve-alert", Resolution, allow=Allow.STAFF, target=alert_property,
                 mutates=True, emits=("events.alert-resolved",))
def resolve_alert(req, data: Resolution):
    now = utcnow()
    # An open alert resolved at once is acknowledged by the same user at the same time.
    change_alert(data, (OPEN, ACKNOWLEDGED), "is already resolved", state=RESOLVED,
                 resolved_by=req.user.id, resolved_at=now, note=data.note,
                 acknowledged_by=func.coalesce(Alert.acknowledged_by, req.user.id),
                 acknowledged_at=func.coalesce(Alert.acknowledged_at, now))
    req.emit("events.alert-resolved", req.target, propertyId=req.target.id,
             alertId=data.alertId, user=req.user.id, note=data.note)
    return envelopes.success("alert resolved")


@websocket_query("get-open-alerts", OpenAlertsQuery, allow=Allow.ANYONE)
def get_open_alerts(req, data: OpenAlertsQuery):
    """Every unresolved alert the caller may see, highest severity first, then oldest."""
    query = (select(Alert).join(Property, Property.id == Alert.property_id)
             .where(Alert.state != RESOLVED, Property.status != REMOVED))
    if not req.user.is_staff:
        query = query.where(Property.owner_id == req.user.id)
    if data.minSeverity is not None:
        query = query.where(Alert.severity >= SEVERITIES.index(data.minSeverity))
    rows = db.session.scalars(query.order_by(Alert.severity.desc(), Alert.timestamp, Alert.id)
                              .limit(data.limit).offset(data.offset))
    return envelopes.data(alerts=[row.to_dict() for row in rows])
