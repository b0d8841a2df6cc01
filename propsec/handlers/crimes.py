"""Crimes reported on the site, and how many happened around a point lately."""
from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated

from pydantic import Field, model_validator
from sqlalchemy import select

from ..extensions import db
from ..models import Crime, Property
from ..models._common import utcnow
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import NotFound, ValidationFailed
from ..protocol.registry import websocket_query
from ..protocol.schemas import Coordinate, Description, Id, Int, Payload, PropertyRef, UserId

DEFAULT_RADIUS = 1000
DAY = timedelta(days=1)


class AreaQuery(Payload):
    propertyId: Id | None = None
    x: Coordinate | None = None
    y: Coordinate | None = None
    radius: Annotated[Int, Field(ge=1, le=10_000_000)] | None = None
    days: Annotated[Int, Field(ge=1, le=30)] = 3

    @model_validator(mode="after")
    def _whole_point(self):
        if (self.x is None) != (self.y is None):
            raise ValidationFailed.on("y" if self.y is None else "x", "give both x and y, or neither")
        return self


class NewCrime(PropertyRef):
    clientId: UserId | None = None
    description: Description = ""


def _centre(data: AreaQuery) -> tuple[float, float] | None:
    if data.propertyId is not None:
        prop = db.session.get(Property, data.propertyId)
        if prop is None:
            raise NotFound(f"property {data.propertyId} not found")
        return prop.centre
    if data.x is not None:
        return float(data.x), float(data.y)
    return None


@websocket_query("get-crimes-in-area", AreaQuery, allow=Allow.ANYONE)
def get_crimes_in_area(req, data: AreaQuery):
    """Day k counts the crimes of the 24 hours that ended k-1 days before now."""
    now = utcnow()
    query = select(Crime.timestamp, Crime.x, Crime.y).where(Crime.timestamp > now - data.days * DAY)
    centre = _centre(data)
    radius = data.radius or DEFAULT_RADIUS
    if centre is not None:
        cx, cy = centre
        query = query.where(Crime.x.between(cx - radius, cx + radius),
                            Crime.y.between(cy - radius, cy + radius))
    counts = [0] * data.days
    for when, x, y in db.session.execute(query):
        if centre is not None and math.hypot(x - centre[0], y - centre[1]) > radius:
            continue
        index = int((now - when) / DAY)
        if 0 <= index < data.days:
            counts[index] += 1
    return envelopes.data(crimes=[{"day": k + 1, "count": n} for k, n in enumerate(counts)])


@websocket_query("add-crime", NewCrime, allow=Allow.STAFF, target="propertyId", mutates=True,
                 emits=("events.crimes",))
def add_crime(req, data: NewCrime):
    reporter = data.clientId or req.user.id
    cx, cy = req.target.centre
    crime = Crime(property_id=req.target.id, reporter_id=reporter, description=data.description,
                  x=cx, y=cy)
    db.session.add(crime)
    db.session.flush()
    req.emit("events.crimes", req.target, propertyId=req.target.id, clientId=reporter,
             crimeId=crime.id)
    return envelopes.success("crime recorded", id=crime.id)
