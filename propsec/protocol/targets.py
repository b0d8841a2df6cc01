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

import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields

from sqlalchemy import bindparam, literal_column, select, text

from .. import sql
from ..models import Property
from ..models.properties import PropertyShape
from ..sql import Prepared, autocommit
from . import target_memory


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


# PostgreSQL's group commit reads the targets (and lookups) of a whole group at once
# (`prefetch`); a member's own reads then take their rows from here.
_PREFETCHED: ContextVar[tuple | None] = ContextVar("propsec_prefetched_target", default=None)
_LOOKED_UP: ContextVar[dict | None] = ContextVar("propsec_prefetched_lookups", default=None)


@contextmanager
def prefetched(found: tuple | None):
    """The block's request finds its target and its lookups in `found` (a `prefetch`
    result), not in the database."""
    token = _PREFETCHED.set(None if found is None else found[:3])
    looked_up = _LOOKED_UP.set(None if found is None else found[3])
    try:
        yield
    finally:
        _PREFETCHED.reset(token)
        _LOOKED_UP.reset(looked_up)


class Lookup:
    """A read of at most one row that a prepared changing query makes beside its target, by
    the target's id and one field of its payload (is this camera the property's? may this
    person come in?). `query(property_id, value)` builds it from two column expressions:
    with bound values it is the lookup's own prepared statement; in a PostgreSQL group it
    becomes part of the group's `prefetch`, so it costs no round trip of its own. A
    declaration names its lookups (`looks_up`); the handler calls `first`."""

    def __init__(self, name: str, field: str, sql_type: str, query):
        self.name, self.field, self.sql_type = name, field, sql_type
        self._query = query
        self._alone = Prepared(query(bindparam("property_id"), bindparam("value")))
        self.width = len(self._alone.statement.selected_columns)

    def first(self, cursor, property_id: int, value):
        """The row (or None) for the target `property_id` and `value`."""
        looked_up = _LOOKED_UP.get()
        if looked_up is not None and self.name in looked_up:
            asked, row = looked_up[self.name]
            if asked == value:
                return row
        return self._alone.first(cursor, property_id=property_id, value=value)

    def lateral(self, engine, value_column: str) -> str:
        """The lookup as SQL over the prefetch's `m.id` and `m.<value_column>`, with a last
        column that is true when there is a row."""
        statement = self._query(literal_column("m.id"), literal_column(f"m.{value_column}"))
        statement = statement.add_columns(literal_column("true")).limit(1)
        compiled = str(statement.compile(dialect=engine.dialect,
                                         compile_kwargs={"literal_binds": True}))
        return _NOT_A_BIND.sub(r"\\:", compiled)  # (it goes into a text() statement)

    def row(self, engine, values: tuple):
        """One prefetched row in the form `first` gives it (the statement's own result
        processing), or None."""
        if values[-1] is None:
            return None
        return self._alone.compiled(engine).rows([values[:-1]])[0]


_NOT_A_BIND = re.compile(r"(?<!:):(?!:)")
Wanted = tuple  # (property id, reserved tables, ((Lookup, value), ...)) of one request
_PREFETCH: dict[tuple, Prepared] = {}


def prefetch(cursor, wanted: list[Wanted | None], recall: bool = True) -> tuple[list, bool]:
    """The targets of several requests, the ids they reserve and their lookups (PostgreSQL):
    for each (property id, tables, lookups) in `wanted`, (property id, snapshot or None,
    {table name: new id}, {lookup name: (value, row or None)}), in the same order; None where
    nothing was wanted. And whether they came from the process's memory.

    From memory (`target_memory`) when `recall` and every one of them is remembered: no
    round trip (but a refill of reserved ids now and then), and the statement that has the
    database confirm them is queued for the group's COMMIT. Otherwise in one statement, one
    round trip sent ahead of the transaction (`sql.Prepared.all_ahead`: `nextval` may take a
    transaction id), remembered for next time. An id is taken only for a property that exists,
    as `in_transaction` takes it. A row read here and not locked is as current as the same
    SELECT inside the transaction: under READ COMMITTED each statement sees what was
    committed when it began, so only queries whose declarations do not `lock` their target
    are read this way."""
    asked = [w for w in wanted if w is not None]
    if not asked:
        return [None] * len(wanted), False
    lookups = sorted({lookup for *_, pairs in asked for lookup, _ in pairs},
                     key=lambda lookup: lookup.name)
    memory = target_memory.of(cursor.engine)
    recalled = memory.recall(asked) if recall else None
    if recalled is not None:
        found = _from_memory(cursor, memory, asked, recalled)
        target_memory.confirm(cursor, recalled)
    else:
        found = _read(cursor, memory, asked, lookups)
    out, each = [], iter(found)
    for want in wanted:
        out.append(None if want is None else next(each))
    return out, recalled is not None


def _from_memory(cursor, memory, asked: list, recalled: list) -> list[tuple]:
    needs: dict[str, int] = {}
    for _, reserves, _ in asked:
        for table in reserves:
            needs[table.name] = needs.get(table.name, 0) + 1
    ids = {name: iter(block) for name, block in memory.take_ids(cursor, needs).items()}
    return [(want[0], known.snapshot, {t.name: next(ids[t.name]) for t in want[1]},
             known.looked_up) for want, known in zip(asked, recalled)]


def _read(cursor, memory, asked: list, lookups: list) -> list[tuple]:
    tables = sorted({t.name for _, reserves, _ in asked for t in reserves})
    values = {"ids": [property_id for property_id, _, _ in asked]}
    for n, table in enumerate(tables):
        values[f"r{n}"] = [any(t.name == table for t in reserves) for _, reserves, _ in asked]
    for n, lookup in enumerate(lookups):
        values[f"l{n}"] = [dict(pairs).get(lookup) for *_, pairs in asked]
    engine = cursor.engine
    rows = _prefetching(engine, tuple(tables), tuple(lookups)).all_ahead(cursor, **values)
    width = len(_FIELDS)
    out: list[tuple] = []
    for want, row in zip(asked, rows):
        found = row[1]
        snapshot = PropertySnapshot(*row[2:2 + width]) if found else None
        at = 2 + width + len(tables)
        reserved = ({name: new_id for name, new_id in zip(tables, row[2 + width:at])
                     if new_id is not None} if found else {})
        mine, looked_up, remembered = dict(want[2]), {}, {}
        for lookup in lookups:  # (every lookup has its columns in every row)
            span = lookup.width + 1
            if lookup in mine:
                looked_up[lookup.name] = (mine[lookup], lookup.row(engine, row[at:at + span]))
                remembered[(lookup.name, mine[lookup])] = looked_up[lookup.name][1]
            at += span
        if found:
            memory.remember(want[0], snapshot, row[-1], remembered)
        else:
            memory.forget([want[0]])  # (gone: what was remembered of it is no use)
        out.append((want[0], snapshot, reserved, looked_up))
    memory.drop_ids(tables)
    return out


def _prefetching(engine, tables: tuple[str, ...], lookups: tuple[Lookup, ...]) -> Prepared:
    """The SELECT of `prefetch` for requests reserving ids of `tables` and reading
    `lookups`: the requested property ids (per table whether to reserve, per lookup its
    value) unnested in order, each joined to its property and to each lookup's row, with
    nextval of each table's sequence where asked."""
    key = (tables, tuple(lookup.name for lookup in lookups))
    found = _PREFETCH.get(key)
    if found is None:
        table = Property.__table__
        columns = ", ".join(f"p.{table.c[f.name].name}" for f in _FIELDS)
        reserving = "".join(f", CASE WHEN m.r{n} AND p.id IS NOT NULL "
                            f"THEN nextval('{name}_id_seq') END" for n, name in enumerate(tables))
        looking = "".join(f", x{n}.*" for n in range(len(lookups)))
        arrays = ", ".join(["CAST(:ids AS bigint[])",
                            *(f"CAST(:r{n} AS boolean[])" for n in range(len(tables))),
                            *(f"CAST(:l{n} AS {lookup.sql_type}[])"
                              for n, lookup in enumerate(lookups))])
        names = ", ".join(["id", *(f"r{n}" for n in range(len(tables))),
                           *(f"l{n}" for n in range(len(lookups))), "ord"])
        statement = text(
            f"SELECT m.ord, p.id IS NOT NULL, {columns}{reserving}{looking}, "
            f"{target_memory.TARGET_VERSION} "
            f"FROM unnest({arrays}) WITH ORDINALITY AS m({names}) "
            f"LEFT JOIN {table.name} p ON p.id = m.id"
            f"{target_memory.lookup_joins(engine, lookups)} ORDER BY m.ord")
        found = _PREFETCH[key] = Prepared(statement)
    return found
