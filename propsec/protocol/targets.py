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

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields

from sqlalchemy import bindparam, literal_column, select, text

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
    ready = _PREFETCHED.get()
    if ready is not None and ready[0] == property_id and not for_update:
        _PREFETCHED.set(None)  # (one use: a second read of the target goes to the database)
        return ready[1], ready[2]
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


# PostgreSQL's group commit reads the targets of a whole group at once (`prefetch`); a
# member's own read then takes its row from here.
_PREFETCHED: ContextVar[tuple | None] = ContextVar("propsec_prefetched_target", default=None)


@contextmanager
def prefetched(found: tuple | None):
    """The block's request finds its target in `found` (a `prefetch` result), not in the
    database."""
    token = _PREFETCHED.set(found)
    try:
        yield
    finally:
        _PREFETCHED.reset(token)


Wanted = tuple  # (property id, tables whose next id to reserve) of one request
_PREFETCH: dict[tuple, Prepared] = {}


def prefetch(cursor, wanted: list[Wanted | None]) -> list[tuple | None]:
    """The targets of several requests and the ids they reserve, in one statement (one round
    trip, PostgreSQL): for each (property id, tables) in `wanted`, (property id, snapshot or
    None, {table name: new id}), in the same order; None where nothing was wanted. An id is
    taken only for a property that exists, as `in_transaction` takes it. A row read here and
    not locked is as current as the same SELECT inside the transaction: under READ
    COMMITTED each statement sees what was committed when it began, so only queries whose
    declarations do not `lock` their target are read this way."""
    asked = [w for w in wanted if w is not None]
    if not asked:
        return [None] * len(wanted)
    tables = sorted({t.name for _, reserves in asked for t in reserves})
    values = {"ids": [property_id for property_id, _ in asked]}
    for n, table in enumerate(tables):
        values[f"r{n}"] = [any(t.name == table for t in reserves) for _, reserves in asked]
    rows = iter(_prefetching(tuple(tables)).all(cursor, **values))
    width = len(_FIELDS)
    out: list[tuple | None] = []
    for want in wanted:
        if want is None:
            out.append(None)
            continue
        row = next(rows)
        found = row[1]
        snapshot = PropertySnapshot(*row[2:2 + width]) if found else None
        reserved = ({name: new_id for name, new_id in zip(tables, row[2 + width:])
                     if new_id is not None} if found else {})
        out.append((want[0], snapshot, reserved))
    return out


def _prefetching(tables: tuple[str, ...]) -> Prepared:
    """The SELECT of `prefetch` for requests reserving ids of `tables`: the requested
    property ids (and, per table, whether to reserve) unnested in order, each joined to its
    property, with nextval of each table's sequence where asked."""
    found = _PREFETCH.get(tables)
    if found is None:
        table = Property.__table__
        columns = ", ".join(f"p.{table.c[f.name].name}" for f in _FIELDS)
        reserving = "".join(f", CASE WHEN m.r{n} AND p.id IS NOT NULL "
                            f"THEN nextval('{name}_id_seq') END" for n, name in enumerate(tables))
        arrays = ", ".join(["CAST(:ids AS bigint[])",
                            *(f"CAST(:r{n} AS boolean[])" for n in range(len(tables)))])
        names = ", ".join(["id", *(f"r{n}" for n in range(len(tables))), "ord"])
        statement = text(
            f"SELECT m.ord, p.id IS NOT NULL, {columns}{reserving} "
            f"FROM unnest({arrays}) WITH ORDINALITY AS m({names}) "
            f"LEFT JOIN {table.name} p ON p.id = m.id ORDER BY m.ord")
        found = _PREFETCH[tables] = Prepared(statement)
    return found
