"""Looking people up."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import Property, User
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.registry import websocket_query
from ..protocol.schemas import Page, Payload, UserId
from ._shared import existing_user, page, property_rows, visible_properties


class UserRef(Payload):
    userId: UserId


@websocket_query("get-user", UserRef, allow=Allow.ANYONE)
def get_user(req, data: UserRef):
    return envelopes.data(**existing_user(data.userId).brief())


@websocket_query("get-users", Page, allow=Allow.ANYONE)
def get_users(req, data: Page):
    query = page(select(User.id, User.full_name), data, User.full_name, User.id)
    return envelopes.data(users=[{"id": r.id, "fullName": r.full_name}
                                 for r in db.session.execute(query)])


@websocket_query("get-user-properties", UserRef, allow=Allow.SELF)
def get_user_properties(req, data: UserRef):
    existing_user(data.userId)
    query = visible_properties().where(Property.owner_id == data.userId).order_by(Property.id)
    return envelopes.data(properties=[{**row, "name": row["location"]}
                                      for row in property_rows(query)])
