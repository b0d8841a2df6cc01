"""Equipment installed on properties; drones are equipment of type Drone."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db

CAMERA, DRONE, SCANNER, ALARM, MOTION_SENSOR = 1, 2, 3, 4, 5
EQUIPMENT_TYPES = {CAMERA: "Camera", DRONE: "Drone", SCANNER: "Scanner", ALARM: "Alarm",
                   MOTION_SENSOR: "Motion sensor"}


class EquipmentType(db.Model):
    __tablename__ = "equipment_types"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(50))


class Equipment(db.Model):
    __tablename__ = "equipment"

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("equipment_types.id"))
    description: Mapped[str] = mapped_column(Text, default="")
    dispatched: Mapped[bool] = mapped_column(default=False, index=True)
    dispatched_at: Mapped[datetime | None]

    type = relationship("EquipmentType", lazy="joined", innerjoin=True)

    def to_dict(self) -> dict:
        return {"id": self.id, "type": self.type_id, "description": self.description,
                "name": self.type.name}

    def drone_dict(self) -> dict:
        return {"id": self.id, "description": self.description, "propertyId": self.property_id}
