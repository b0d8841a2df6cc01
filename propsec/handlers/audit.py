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
    rows = db.session.scalars(query.order_by(AuditEntry.id).limit(data.limit))
    return envelopes.data(entries=[as_wire(r) for r in rows])
