"""The durable event log: every pushed event is a row here first."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._common import BigId, utcnow


class EventRecord(db.Model):
    __tablename__ = "event_log"
    __table_args__ = (
        Index("ix_event_log_owner_id", "owner_id", "id"),
        Index("ix_event_log_name_id", "name", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    property_id: Mapped[int]
    owner_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
