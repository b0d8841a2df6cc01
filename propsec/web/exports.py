"""CSV exports and the printable incident page (contract section 17).

`GET /export/<kind>.csv` streams: rows are read from the database in batches and written out
as they come, so memory stays flat however many there are. The caller is the session's user
or the owner of an `Authorization: Bearer` API token, and the rules are the matching
queries' (an owner names one of their properties; staff and admins may take the whole site;
the audit trail is for admins)."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta

from flask import Blueprint, Response, abort, render_template, request, stream_with_context
from flask_login import current_user
from sqlalchemy import select

from .. import audit
from ..extensions import db
from ..models import AuditEntry, Alert, AuthEntry, Crime, EventRecord, Property, User, Visit
from ..models._common import iso
from ..protocol.access import Principal
from ..protocol.schemas import iso_day
from ..security import user_for_token

exports = Blueprint("exports", __name__)

BATCH = 2000
# A spreadsheet runs a cell that starts with one of these as a formula: such text gets a
# leading apostrophe (OWASP's advice for CSV injection). Numbers are left alone.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


ALERT_COLUMNS = ["id", "userId", "timestamp", "reason", "acknowledgedBy", "acknowledgedAt",
                 "propertyId", "severity", "state", "assignee", "resolvedBy", "resolvedAt", "note",
                 "escalationLevel"]


KINDS = {
    # kind: (model, time column, header, row function, admins only)
    "alerts": (Alert, Alert.timestamp, ALERT_COLUMNS, Alert.to_dict, False),
    "visits": (Visit, Visit.timestamp, ["id", "propertyId", "userId", "cameraId", "timestamp"],
               lambda v: {"id": v.id, "propertyId": v.property_id, "userId": v.user_id,
                          "cameraId": v.camera_id, "timestamp": iso(v.timestamp)}, False),
    "entries": (AuthEntry, AuthEntry.timestamp, ["id", "propertyId", "userId", "authorized", "timestamp"],
                lambda e: {"id": e.id, "propertyId": e.property_id, "userId": e.user_id,
                           "authorized": e.authorized, "timestamp": iso(e.timestamp)}, False),
    "crimes": (Crime, Crime.timestamp, ["id", "propertyId", "clientId", "description", "timestamp"],
               lambda c: {"id": c.id, "propertyId": c.property_id, "clientId": c.reporter_id,
                          "description": c.description, "timestamp": iso(c.timestamp)}, False),
    "audit": (AuditEntry, AuditEntry.at, ["id", "at", "actor", "action", "target", "propertyId",
                                          "detail", "address", "hash"],
              lambda e: {**audit.as_wire(e), "detail": json.dumps(e.detail, sort_keys=True,
                                                                  ensure_ascii=False)}, True),
}


def caller() -> Principal | None:
    """The session's user, or the owner of a bearer token; None when neither."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        user = user_for_token(header[len("Bearer "):].strip())
    elif current_user.is_authenticated:
        user = db.session.get(User, current_user.get_id())
    else:
        user = None
    return None if user is None else Principal(user.id, user.full_name, user.role)


def _day(name: str) -> date | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    try:
        return iso_day(value)
    except ValueError:
        abort(400, description=f"{name} must be a date as YYYY-MM-DD")


def _property_rule(user: Principal, kind: str) -> int | None:
    """The property to export (None: the whole site), or the HTTP refusal."""
    raw = request.args.get("propertyId")
    if raw in (None, ""):
        if not user.is_staff:
            abort(403, description="owners export one of their properties: give propertyId")
        return None
    if not raw.isdigit() or len(raw) > 18:
        abort(400, description="propertyId must be a property id")
    prop = db.session.get(Property, int(raw))
    if prop is None:
        abort(404, description=f"property {raw} not found")
    if not user.is_staff and prop.owner_id != user.id:
        abort(403, description="this property is not yours")
    return prop.id


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


@exports.get("/export/<kind>.csv")
def export(kind: str):
    if kind not in KINDS:
        abort(404)
    user = caller()
    if user is None:
        abort(401, description="log in, or send Authorization: Bearer <API token>")
    model, moment, header, row_of, admins_only = KINDS[kind]
    if admins_only and not user.is_admin:
        abort(403, description="the audit trail is for administrators")
    property_id = None if admins_only and "propertyId" not in request.args else _property_rule(user, kind)
    start, end = _day("from"), _day("to")
    query = select(model)
    if property_id is not None:
        query = query.where(model.property_id == property_id)
    if start is not None:
        query = query.where(moment >= datetime.combine(start, time.min))
    if end is not None:
        query = query.where(moment <= datetime.combine(end, time.max))
    query = query.order_by(model.id).execution_options(yield_per=BATCH)
    db.session.remove()

    def rows():
        buffer = io.StringIO()
        out = csv.writer(buffer)
        out.writerow(header)
        try:
            for partition in db.session.execute(query).scalars().partitions():
                for item in partition:
                    record = row_of(item)
                    out.writerow([_cell(record[c]) for c in header])
                # (the session's identity map holds rows weakly: a written batch is freed)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            yield buffer.getvalue()
        finally:
            db.session.remove()

    name = f"propsec-{kind}{'-' + str(property_id) if property_id else ''}.csv"
    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


@exports.get("/incident/<int:alert_id>")
def incident(alert_id: int):
    user = caller()
    if user is None:
        abort(401, description="log in to see incidents")
    alert = db.session.get(Alert, alert_id)
    if alert is None:
        abort(404, description=f"alert {alert_id} not found")
    prop = db.session.get(Property, alert.property_id)
    if not user.is_staff and prop.owner_id != user.id:
        abort(403, description="this alert is not on your property")
    window = (alert.timestamp - timedelta(hours=1), alert.timestamp + timedelta(hours=1))
    events = db.session.execute(
        select(EventRecord.id, EventRecord.name, EventRecord.payload, EventRecord.created_at)
        .where(EventRecord.property_id == prop.id, EventRecord.created_at >= window[0],
               EventRecord.created_at <= window[1])
        .order_by(EventRecord.id)).all()
    return render_template("incident.html", alert=alert.to_dict(), prop=prop, events=events,
                           window=[iso(w) for w in window], viewer=user)
