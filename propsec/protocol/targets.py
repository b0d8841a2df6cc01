"""Loading a request's target property: the ORM row for writers, a snapshot for readers.

A query that changes something gets the ORM row inside the request's transaction (FOR
UPDATE where its declaration says `lock`), so the handler can edit it. A query that only
reads gets a `PropertySnapshot`: the same columns, read with one precompiled SELECT on a
pooled DBAPI connection. Going through the ORM session for that one row cost about ten
times as much (session, identity map, row processing and its teardown) and was most of
what a `get-property` cost the server (docs/performance.md, fix 5). Both kinds of target
offer the same attributes and methods (`PropertyShape`)."""
from __future__ import annotations

import weakref
from dataclasses import dataclass, fields

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..extensions import db
from ..models import Property
from ..models.properties import PropertyShape

# Built once: Session.get() builds, annotates and cache-keys a fresh SELECT on every call
# (docs/performance.md, fix 1).
_ROW = select(Property).where(Property.id == bindparam("property_id"))
_ROW_FOR_UPDATE = _ROW.with_for_update()


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


_SNAPSHOT = (select(*(Property.__table__.c[f.name] for f in fields(PropertySnapshot)))
             .where(Property.__table__.c.id == bindparam("property_id")))


class _CompiledRead:
    """`_SNAPSHOT` compiled once for one engine's dialect, run straight on the driver."""

    def __init__(self, engine: Engine):
        dialect = engine.dialect
        for column in _SNAPSHOT.selected_columns:
            # Every selected column must come back from the driver as its Python value.
            if column.type.dialect_impl(dialect).result_processor(dialect, None) is not None:
                raise RuntimeError(f"properties.{column.name} needs conversion; "
                                   "a snapshot cannot hold it")
        compiled = _SNAPSHOT.compile(dialect=dialect)
        self.sql = str(compiled)
        # Its one bound value: a 1-tuple for a positional driver (SQLite), else by name.
        if dialect.positional:
            if list(compiled.positiontup) != ["property_id"]:
                raise RuntimeError("the snapshot SELECT must bind property_id alone")
            self.params = lambda property_id: (property_id,)
        else:
            self.params = lambda property_id: {"property_id": property_id}
        self.engine = engine
        # On PostgreSQL the one SELECT runs in autocommit: otherwise psycopg2 sends BEGIN
        # before it and the pool a ROLLBACK after it, two more round trips to the server
        # for a read that is atomic on its own. (SQLite's driver opens no transaction for
        # a SELECT.)
        self.autocommit = dialect.driver == "psycopg2"

    def fetch(self, property_id: int) -> PropertySnapshot | None:
        params = self.params(property_id)
        dialect = self.engine.dialect
        connection = None
        try:
            connection = self.engine.raw_connection()  # from the pool; back to it below
            driver_connection = connection.dbapi_connection
            if self.autocommit:
                driver_connection.autocommit = True
            cursor = connection.cursor()
            try:
                cursor.execute(self.sql, params)
                row = cursor.fetchone()
            finally:
                cursor.close()
                if self.autocommit:
                    driver_connection.autocommit = False
        except dialect.loaded_dbapi.Error as exc:
            # Unlike a Session, the raw pool hands out the driver's own errors. A connection
            # that failed may be broken (server restarted): drop it rather than pool it, and
            # raise what the ORM path would have raised, so the dispatcher gives the same
            # envelope.
            if connection is not None:
                connection.invalidate(exc)
            raise DBAPIError.instance(self.sql, None, exc, dialect.loaded_dbapi.Error,
                                      hide_parameters=True, dialect=dialect) from None
        finally:
            if connection is not None:
                connection.close()
        return None if row is None else PropertySnapshot(*row)


_compiled: weakref.WeakKeyDictionary[Engine, _CompiledRead] = weakref.WeakKeyDictionary()


def snapshot(property_id: int) -> PropertySnapshot | None:
    engine = db.engine
    read = _compiled.get(engine)
    if read is None:
        read = _compiled[engine] = _CompiledRead(engine)
    return read.fetch(property_id)


def row(property_id: int, for_update: bool) -> Property | None:
    statement = _ROW_FOR_UPDATE if for_update else _ROW
    return db.session.execute(statement, {"property_id": property_id}).scalar_one_or_none()
