"""Loading a request's target property as a `PropertySnapshot`: its columns, read with one
prepared SELECT (propsec/sql.py).

A query that only reads gets it from a pooled connection outside any transaction; a query
that changes something reads it inside its own transaction (FOR UPDATE where its
declaration says `lock`) and changes the property, if at all, with an UPDATE. Going through
the ORM session for that one row cost about ten times as much (session, identity map, row
processing and its teardown): most of what a `get-property` cost the server
(docs/performance.md, fix 5), and a fifth of what a write cost (issue 10). The snapshot
offers the model's attributes and methods (`PropertyShape`)."""
from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import bindparam, literal_column, select

from .. import sql
from ..models import Property
from ..models.properties import PropertyShape
from ..sql import Prepared, autocommit


@dataclass(frozen=True, slots=True)
class PropertySnapshot(PropertyShape):
    """A read-only copy of a property's row: its columns but created_at (which no reader
    of a target needs), named as on the model; the SELECT below reads these fields."""

    id: int
    owner_id: str
    location: str
    tier_id: int
    x: int
    y: int
    width: int
    height: int
    status: str
    description: str
    armed: str


_SNAPSHOT = (select(*(Property.__table__.c[f.name] for f in fields(PropertySnapshot)))
             .where(Property.__table__.c.id == bindparam("property_id")))
_READ = Prepared(_SNAPSHOT)
_READ_FOR_UPDATE = Prepared(_SNAPSHOT.with_for_update())


def snapshot(property_id: int) -> PropertySnapshot | None:
    """A reading query's target: one SELECT on a pooled connection, outside any transaction."""
    with autocommit() as cursor:
        row = _READ.first(cursor, property_id=property_id)
    return None if row is None else PropertySnapshot(*row)


def in_transaction(property_id: int, for_update: bool,
                   reserves: tuple = ()) -> tuple[PropertySnapshot | None, dict[str, int]]:
    """A changing query's target, read in its transaction (row-locked when `for_update`),
    and on PostgreSQL the next id of each table in `reserves` (by table name), taken in the
    same statement. Handlers change a property with UPDATE statements, not through this
    copy."""
    cursor = sql.in_transaction()
    if not reserves or cursor.engine.dialect.name != "postgresql":
        row = (_READ_FOR_UPDATE if for_update else _READ).first(cursor, property_id=property_id)
        return (None if row is None else PropertySnapshot(*row)), {}
    row = _reserving(for_update, reserves).first(cursor, property_id=property_id)
    if row is None:
        return None, {}
    width = len(_FIELDS)
    return PropertySnapshot(*row[:width]), {t.name: new_id for t, new_id in
                                            zip(reserves, row[width:])}


_FIELDS = fields(PropertySnapshot)
_RESERVING: dict[tuple, Prepared] = {}


def _reserving(for_update: bool, reserves: tuple) -> Prepared:
    """The target's SELECT with `nextval` of each table's id sequence (PostgreSQL's
    `<table>_id_seq`, as its serial columns name them) beside the columns. No row, no id
    taken."""
    key = (for_update, tuple(t.name for t in reserves))
    found = _RESERVING.get(key)
    if found is None:
        statement = _SNAPSHOT.add_columns(*(literal_column(f"nextval('{t.name}_id_seq')")
                                            for t in reserves))
        found = _RESERVING[key] = Prepared(statement.with_for_update() if for_update
                                           else statement)
    return found
