"""Query-building pieces that several handler modules use."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Select, or_, select, update

from ..extensions import db
from ..models import REMOVED, Property, User
from ..models._common import utcnow
from ..protocol.access import Principal
from ..protocol.errors import NotFound
from ..protocol.schemas import Page

# Plain columns are much cheaper to list than ORM objects (get-map draws 10,000 of them).
PROPERTY_COLUMNS = (Property.id, Property.location, Property.tier_id.label("tier"), Property.x,
                    Property.y, Property.width, Property.height, Property.status,
                    Property.description, Property.armed)


def property_rows(query: Select) -> list[dict]:
    """The rows as dicts, through the session's connection as plain Core rows: the ORM's
    result machinery and Row._asdict() cost twice as much per row (docs/performance.md)."""
    db.session.flush()  # what the session's autoflush would have done
    result = db.session.connection().execute(query)
    keys = tuple(result.keys())
    return [dict(zip(keys, row)) for row in result]


def update_property(property_id: int, **columns) -> None:
    """Change columns of a query's target (the target itself is a read-only snapshot)."""
    db.session.execute(update(Property).where(Property.id == property_id).values(**columns))


def visible_properties(user: Principal | None = None, *columns) -> Select:
    """Every property but REMOVED ones; an owner sees only their own."""
    query = select(*(columns or PROPERTY_COLUMNS)).where(Property.status != REMOVED)
    if user is not None and not user.is_staff:
        query = query.where(Property.owner_id == user.id)
    return query


def with_status(status: str, *columns) -> Select:
    return select(*(columns or PROPERTY_COLUMNS)).where(Property.status == status)


def page(query: Select, paging: Page, *search_columns) -> Select:
    """Apply a case-insensitive substring search over the columns, then limit/offset by id."""
    if paging.search and search_columns:
        query = query.where(or_(*(c.icontains(paging.search, autoescape=True)
                                  for c in search_columns)))
    order = query.selected_columns[0]
    return query.order_by(order).limit(paging.limit).offset(paging.offset)


def existing_user(user_id: str) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id!r} not found")
    return user


def days_ago(days: int):
    return utcnow() - timedelta(days=days)
