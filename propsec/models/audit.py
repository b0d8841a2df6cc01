"""The audit trail (contract section 16): who changed what, when, from where."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, select
from sqlalchemy.orm import Mapped, column_property, mapped_column

from ..extensions import db
from ._common import BigId, utcnow


class AuditSeal(db.Model):
    """An entry's link in the hash chain, written once by the seal after the entry's commit.

    Kept apart from the entry so that both tables only ever grow: an entry is written once
    and never updated. (Filling in a column of the entry instead made PostgreSQL write
    each entry a second time, a new row version on another page with all four index
    entries again, about a fifth of the write path's log volume: docs/performance.md,
    W38.)"""

    __tablename__ = "audit_seals"

    # the entry's id (no sequence of its own)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))


class AuditEntry(db.Model):
    """One change or security event. On PostgreSQL the id comes from
    propsec_next_event_id() (as event ids do), so ids below the horizon are final and the
    seal can chain them in id order (propsec/audit). `hash` is its seal's (None until
    sealed)."""

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


AuditEntry.hash = column_property(
    select(AuditSeal.hash).where(AuditSeal.id == AuditEntry.id).scalar_subquery())
