"""The list of people (besides the owner) whose entries count as authorized."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import AllowedUser, User
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import NotFound
from ..protocol.registry import websocket_query
from ..protocol.schemas import PropertyRef, UserId
from ._shared import existing_user


class AllowedUserRef(PropertyRef):
    userId: UserId


@websocket_query("get-allowed-users", PropertyRef, allow=Allow.OWNER, target="propertyId")
def get_allowed_users(req, data: PropertyRef):
    rows = db.session.execute(
        select(User.id, User.full_name).join(AllowedUser, AllowedUser.user_id == User.id)
        .where(AllowedUser.property_id == req.target.id).order_by(User.id))
    return envelopes.data(allowedUsers={r.id: r.full_name for r in rows})


@websocket_query("add-allowed-user", AllowedUserRef, allow=Allow.OWNER, target="propertyId",
                 mutates=True)
def add_allowed_user(req, data: AllowedUserRef):
    existing_user(data.userId)
    if db.session.get(AllowedUser, (req.target.id, data.userId)) is None:
        db.session.add(AllowedUser(property_id=req.target.id, user_id=data.userId))
    return envelopes.success(f"{data.userId} may now enter property {req.target.id}")


@websocket_query("remove-allowed-user", AllowedUserRef, allow=Allow.OWNER, target="propertyId",
                 mutates=True)
def remove_allowed_user(req, data: AllowedUserRef):
    entry = db.session.get(AllowedUser, (req.target.id, data.userId))
    if entry is None:
        raise NotFound(f"{data.userId} is not on the allowed list")
    db.session.delete(entry)
    return envelopes.success(f"{data.userId} removed from the allowed list")
