"""What happens at a property: alerts, camera visits, door entries and crimes.

`user_id` on these rows is whoever a device saw or reported; it need not be a
registered user (an unknown badge at the door must still be logged)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._common import BigId, iso, utcnow


SEVERITIES = ("low", "medium", "high", "critical")  # in rising order
OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
MAX_ESCALATION = 3


# The index of alerts escalation may still raise, by when they were raised or last
# escalated (then id): the escalation worker reads only the due ones, longest waiting first,
# however many alerts stay open (background/escalation.py writes its query to match, with
# the same literals). `table` qualifies the columns for a query that joins.
def escalation_due(table: str = "") -> str:
    p = f"{table}." if table else ""
    return f'coalesce({p}escalated_at, {p}"timestamp")'


def escalation_pending(table: str = "") -> str:
    p = f"{table}." if table else ""
    return f"{p}state = '{OPEN}' AND {p}escalation_level < {MAX_ESCALATION}"


class Alert(db.Model):
    """An alert's way: open → acknowledged → resolved (or open → resolved at once)."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_property_timestamp", "property_id", "timestamp"),
                      Index("ix_alerts_state_property", "state", "property_id"),
                      Index("ix_alerts_escalation_due", text(escalation_due()), "id",
                            sqlite_where=text(escalation_pending()),
                            postgresql_where=text(escalation_pending())))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    user_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200), default="")
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None]
    # 0 low .. 3 critical (SEVERITIES), so that "highest first" is an ORDER BY
    # (server-side defaults only: prepared INSERTs name just the columns they set)
    severity: Mapped[int] = mapped_column(server_default="2")
    state: Mapped[str] = mapped_column(String(16), server_default=OPEN)
    assignee: Mapped[str | None] = mapped_column(String(64))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    escalation_level: Mapped[int] = mapped_column(server_default="0")
    escalated_at: Mapped[datetime | None]  # the last escalation (background/escalation.py)

    def to_dict(self) -> dict:
        return {"id": self.id, "userId": self.user_id, "timestamp": iso(self.timestamp),
                "reason": self.reason, "acknowledgedBy": self.acknowledged_by,
                "acknowledgedAt": iso(self.acknowledged_at), "propertyId": self.property_id,
                "severity": SEVERITIES[self.severity], "state": self.state,
                "assignee": self.assignee, "resolvedBy": self.resolved_by,
                "resolvedAt": iso(self.resolved_at), "note": self.note,
                "escalationLevel": self.escalation_level}


class Visit(db.Model):
    __tablename__ = "visits"
    __table_args__ = (Index("ix_visits_property_timestamp", "property_id", "timestamp"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    # No foreign key: a camera may be removed later, and its visits stay in the history.
    camera_id: Mapped[int]
    user_id: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)


class AuthEntry(db.Model):
    __tablename__ = "auth_entries"
    __table_args__ = (Index("ix_auth_entries_property_timestamp", "property_id", "timestamp"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    user_id: Mapped[str] = mapped_column(String(64))
    authorized: Mapped[bool]
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)

    def to_dict(self) -> dict:
        return {"user_id": self.user_id, "timestamp": iso(self.timestamp),
                "authorized": self.authorized}


class Crime(db.Model):
    """A reported crime, placed at its property's centre when reported."""

    __tablename__ = "crimes"
    __table_args__ = (Index("ix_crimes_property_timestamp", "property_id", "timestamp"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    reporter_id: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    x: Mapped[float]
    y: Mapped[float]
    timestamp: Mapped[datetime] = mapped_column(default=utcnow, index=True)
