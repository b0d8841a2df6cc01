"""The audit trail (contract section 16): who changed what, when, from where."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._common import BigId, utcnow


class AuditEntry(db.Model):
    """One change or security event. On PostgreSQL the id comes from
    propsec_next_event_id() (as event ids do), so ids below the horizon are final and the
    seal can chain them in id order (propsec/audit)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_actor", "actor", "id"),
                      Index("ix_audit_log_property_id", "property_id", "id"),
                      Index("ix_audit_log_action", "action", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(80))
    target: Mapped[str | None] = mapped_column(String(200))
    property_id: Mapped[int | None]
    detail: Mapped[dict] = mapped_column(JSON)
    address: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
