"""Properties on the site plan, their tiers and the people allowed in."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._common import utcnow

PENDING, ACTIVE, INACTIVE, REJECTED = "PENDING", "ACTIVE", "INACTIVE", "REJECTED"
REMOVAL_REQUESTED, REMOVED = "REMOVAL_REQUESTED", "REMOVED"
STATUSES = (PENDING, ACTIVE, INACTIVE, REJECTED, REMOVAL_REQUESTED, REMOVED)
SETTABLE_STATUSES = (PENDING, ACTIVE, INACTIVE, REJECTED)
DISARMED, HOME, AWAY = "disarmed", "home", "away"
ARMING_MODES = (DISARMED, HOME, AWAY)


class Tier(db.Model):
    __tablename__ = "tiers"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(50))


class PropertyShape:
    """What a property offers its readers, whether it is the ORM row or the read-only
    snapshot a reading query gets (`protocol/targets.PropertySnapshot`): both carry the
    columns these methods read as attributes of the same names."""

    __slots__ = ()

    @property
    def removed(self) -> bool:
        return self.status == REMOVED

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "location": self.location,
            "tier": self.tier_id,
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "status": self.status,
            "description": self.description,
            "armed": self.armed,
        }


class Property(PropertyShape, db.Model):
    __tablename__ = "properties"
    __table_args__ = (Index("ix_properties_status_x_y", "status", "x", "y"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    location: Mapped[str] = mapped_column(String(200))
    tier_id: Mapped[int] = mapped_column(ForeignKey("tiers.id"))
    x: Mapped[int]
    y: Mapped[int]
    # Indexed for get-map: MAX(width) and MAX(height) bound its index search.
    width: Mapped[int] = mapped_column(default=20, index=True)
    height: Mapped[int] = mapped_column(default=20, index=True)
    status: Mapped[str] = mapped_column(String(20), default=PENDING, index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    armed: Mapped[str] = mapped_column(String(16), default=DISARMED, server_default=DISARMED)

    owner = relationship("User")
    tier = relationship("Tier")


class AllowedUser(db.Model):
    """People (besides the owner) whose entries count as authorized."""

    __tablename__ = "allowed_users"

    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    # Weekly windows as JSON (schedules.py) and an end in naive UTC; None: no limit.
    schedule: Mapped[str | None] = mapped_column(Text, nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(nullable=True)
    user = relationship("User")
