"""Visitors seen by a property's cameras."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from pydantic import Field, model_validator
from sqlalchemy import func, select

from .. import sql
from ..extensions import db
from ..models import AWAY, CAMERA, SEVERITIES, Equipment, Visit
from ..models._common import utcnow
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import ValidationFailed
from ..protocol.registry import websocket_query
from ..protocol.targets import Lookup
from ..protocol.schemas import Day, Id, PropertyRef, UserId
from ._shared import days_ago
from .alerts import raise_alert
from .entries import ALLOWED_AT_TARGET, entry_refusal

MAX_RANGE_DAYS = 365
CAMERA_AT_TARGET = Lookup("camera", "cameraId", "bigint", lambda property_id, camera_id: select(
    Equipment.id).where(Equipment.id == camera_id, Equipment.property_id == property_id,
                        Equipment.type_id == CAMERA))
_NEW_VISIT = sql.NewRow(Visit.__table__, "property_id", "camera_id", "user_id", "timestamp")


class NewVisit(PropertyRef):
    userId: UserId
    cameraId: Id


class DayRange(PropertyRef):
    start: Day = Field(alias="from")
    end: Day = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self):
        if self.end < self.start:
            raise ValidationFailed.on("to", "must not be before 'from'")
        if (self.end - self.start).days > MAX_RANGE_DAYS:
            raise ValidationFailed.on("to", f"at most {MAX_RANGE_DAYS} days after 'from'")
        return self


@websocket_query("add-visitor", NewVisit, allow=Allow.STAFF, target="propertyId", mutates=True,
                 emits=("events.visits", "events.scanned", "events.alerts"), prepared=True,
                 reserves=(Visit.__table__,), looks_up=(CAMERA_AT_TARGET, ALLOWED_AT_TARGET))
def add_visitor(req, data: NewVisit):
    cursor, now = sql.in_transaction(), utcnow()
    if CAMERA_AT_TARGET.first(cursor, req.target.id, data.cameraId) is None:
        raise ValidationFailed.on("cameraId", "is not a camera of this property")
    visit_id = _NEW_VISIT.add(req.reserved, property_id=req.target.id, camera_id=data.cameraId,
                              user_id=data.userId, timestamp=now)
    req.emit("events.visits", req.target, propertyId=req.target.id, clientId=data.userId)
    req.emit("events.scanned", req.target, propertyId=req.target.id, clientId=data.userId,
             cameraId=data.cameraId)
    if (req.target.armed == AWAY
            and entry_refusal(cursor, req.target, data.userId, now) is not None):
        # Armed away, someone who may not come in at the door (contract section 14).
        raise_alert(req, data.userId, "visitor-while-armed", SEVERITIES.index("high"))
    return envelopes.success("visit recorded", id=visit_id)


@websocket_query("get-weekly-visitors", PropertyRef, allow=Allow.OWNER, target="propertyId")
def get_weekly_visitors(req, data: PropertyRef):
    last_seen, last_id = func.max(Visit.timestamp), func.max(Visit.id)
    rows = db.session.execute(
        select(Visit.user_id, last_seen, last_id)
        .where(Visit.property_id == req.target.id, Visit.timestamp >= days_ago(7))
        .group_by(Visit.user_id).order_by(last_seen.desc(), last_id.desc()))
    return envelopes.data(visitors=[r.user_id for r in rows])


@websocket_query("get-scanned-visitors", DayRange, allow=Allow.OWNER, target="propertyId")
def get_scanned_visitors(req, data: DayRange):
    day = func.date(Visit.timestamp)
    rows = db.session.execute(
        select(day, func.count()).where(
            Visit.property_id == req.target.id,
            Visit.timestamp >= datetime.combine(data.start, time.min),
            Visit.timestamp <= datetime.combine(data.end, time.max))  # no overflow at 9999-12-31
        .group_by(day))
    counts = {str(d): n for d, n in rows}
    span = (data.end - data.start).days + 1
    days = (data.start + timedelta(days=i) for i in range(span))
    return envelopes.data(visitors=[{"day": d.isoformat(), "count": counts.get(d.isoformat(), 0)}
                                    for d in days])
