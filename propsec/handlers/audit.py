"""Reading the audit trail (contract section 16); writing it is the dispatcher's and
propsec/audit's business."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sqlalchemy import select

from ..audit import as_wire
from ..extensions import db
from ..models import AuditEntry
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.registry import websocket_query
from ..protocol.schemas import Cursor, Id, Int, Payload, text

AuditLimit = Annotated[Int, Field(ge=1, le=1000)]


class AuditQuery(Payload):
    since: Cursor = 0
    # (propsec's addition) entries with a smaller id; the page is then the `limit` entries
    # just below it, still oldest first: how a console pages back from the newest.
    before: Cursor | None = None
    limit: AuditLimit = 100
    actor: text(1, 64) | None = None
    propertyId: Id | None = None
    action: text(1, 80) | None = None


@websocket_query("get-audit", AuditQuery, allow=Allow.ADMIN)
def get_audit(req, data: AuditQuery):
    query = select(AuditEntry).where(AuditEntry.id > data.since)
    if data.actor is not None:
        query = query.where(AuditEntry.actor == data.actor)
    if data.propertyId is not None:
        query = query.where(AuditEntry.property_id == data.propertyId)
    if data.action is not None:
        query = query.where(AuditEntry.action == data.action)
    if data.before is None:
        rows = list(db.session.scalars(query.order_by(AuditEntry.id).limit(data.limit)))
    else:
        query = query.where(AuditEntry.id < data.before)
        rows = list(db.session.scalars(query.order_by(AuditEntry.id.desc()).limit(data.limit)))
        rows.reverse()
    return envelopes.data(entries=[as_wire(r) for r in rows])
