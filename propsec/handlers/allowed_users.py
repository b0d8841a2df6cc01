"""The list of people (besides the owner) whose entries count as authorized, each with an
optional weekly schedule and end date (contract section 14, `schedules.py`)."""
from __future__ import annotations

from flask import current_app
from pydantic import field_validator
from sqlalchemy import select

from .. import schedules
from ..extensions import db
from ..models import AllowedUser, User
from ..models._common import iso
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import NotFound
from ..protocol.registry import websocket_query
from ..protocol.schemas import PropertyRef, UserId
from ._shared import existing_user


class AllowedUserRef(PropertyRef):
    userId: UserId


class NewAllowedUser(AllowedUserRef):
    schedule: schedules.Schedule | None = None
    validUntil: schedules.ValidUntil | None = None

    @field_validator("validUntil")
    @classmethod
    def _moment(cls, text: str | None) -> str | None:
        if text is not None:
            schedules.parse_valid_until(text, schedules.site_zone("UTC"))  # the form only
        return text


@websocket_query("get-allowed-users", PropertyRef, allow=Allow.OWNER, target="propertyId")
def get_allowed_users(req, data: PropertyRef):
    rows = db.session.execute(
        select(User.id, User.full_name, AllowedUser.schedule, AllowedUser.valid_until)
        .join(AllowedUser, AllowedUser.user_id == User.id)
        .where(AllowedUser.property_id == req.target.id).order_by(User.id)).all()
    details = [{"userId": r.id, "fullName": r.full_name,
                "schedule": [w.to_dict() for w in schedules.load(r.schedule) or []] or None,
                "validUntil": iso(r.valid_until)} for r in rows]
    return envelopes.data(allowedUsers={r.id: r.full_name for r in rows},
                          allowedUserDetails=details)


@websocket_query("add-allowed-user", NewAllowedUser, allow=Allow.OWNER, target="propertyId",
                 mutates=True)
def add_allowed_user(req, data: NewAllowedUser):
    existing_user(data.userId)
    zone = schedules.site_zone(current_app.config["PROPSEC_TIMEZONE"])
    limits = {"schedule": schedules.dump(data.schedule),
              "valid_until": (None if data.validUntil is None
                              else schedules.parse_valid_until(data.validUntil, zone))}
    entry = db.session.get(AllowedUser, (req.target.id, data.userId))
    if entry is None:
        db.session.add(AllowedUser(property_id=req.target.id, user_id=data.userId, **limits))
    else:  # adding again replaces the limits
        entry.schedule, entry.valid_until = limits["schedule"], limits["valid_until"]
    return envelopes.success(f"{data.userId} may now enter property {req.target.id}")


@websocket_query("remove-allowed-user", AllowedUserRef, allow=Allow.OWNER, target="propertyId",
                 mutates=True)
def remove_allowed_user(req, data: AllowedUserRef):
    entry = db.session.get(AllowedUser, (req.target.id, data.userId))
    if entry is None:
        raise NotFound(f"{data.userId} is not on the allowed list")
    db.session.delete(entry)
    return envelopes.success(f"{data.userId} removed from the allowed list")
