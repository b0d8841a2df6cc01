"""The event log table: appending in a request's transaction, and reading what is final.

An event row is *final* once no row with a smaller id can ever become visible. Only final
rows are delivered or replayed, so a connection never receives id N and later a smaller one.

- SQLite has one writer at a time and assigns the rowid inside the write transaction, so
  the committed rows are always a prefix of the id order: every committed row is final.
- PostgreSQL: a sequence hands out ids at insert time, but transactions commit in any
  order, so a committed id 11 may be followed by a late commit of id 10. Here the id says
  which transaction wrote it: `propsec_next_event_id()` (the column's default, see the
  migration 7c4e2f1a9b30) returns `xid8 << 16 | n`, the writing transaction's id and the row's
  ordinal within it. Transaction ids are handed out in increasing order, so in any
  snapshot every transaction below `pg_snapshot_xmin` has ended (committed or rolled back)
  and every one that has not ended, or has not started, is at or above it. Rows below
  `xmin << 16` (the *horizon*) are therefore final: a row that becomes visible later has a
  larger id than every row below the horizon of any earlier read. docs/architecture.md
  gives the whole argument."""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Select, bindparam, func, literal_column, select

from .. import sql
from ..extensions import db
from ..models import EventRecord
from ..models._common import utcnow

ORDINAL_BITS = 16
_T = EventRecord.__table__
_COLUMNS = (_T.c.id, _T.c.name, _T.c.owner_id, _T.c.payload, _T.c.created_at)
# Evaluated once per statement (an InitPlan), in the statement's own snapshot: the oldest
# running transaction's id (plus the offset, see the migration) << ORDINAL_BITS.
_PG_HORIZON = literal_column("(SELECT propsec_event_horizon())")
_APPEND = sql.inserting(_T, "name", "property_id", "owner_id", "payload", "created_at",
                        returning_id=False, appends=True)
_AFTER = select(*_COLUMNS).where(_T.c.id > bindparam("after")).order_by(_T.c.id).limit(
    bindparam("limit"))
_READ = {"postgresql": sql.Prepared(_AFTER.add_columns(_PG_HORIZON.label("horizon"))),
         "sqlite": sql.Prepared(_AFTER)}
_FINAL_MAX = {"postgresql": sql.Prepared(select(func.coalesce(func.max(_T.c.id), 0))
                                         .where(_T.c.id < _PG_HORIZON)),
              "sqlite": sql.Prepared(select(func.coalesce(func.max(_T.c.id), 0)))}
_NEWEST = sql.Prepared(select(func.coalesce(func.max(_T.c.id), 0)))


class LogRow(NamedTuple):
    id: int
    name: str
    owner_id: str
    payload: dict
    created_at: datetime


def final_only(query: Select, column, dialect: str | None = None) -> Select:
    """`query` limited to final rows: `column` (an id from `propsec_next_event_id()`) below
    the horizon on PostgreSQL; unchanged on SQLite, where every committed row is final."""
    on_postgresql = (dialect or db.engine.dialect.name) == "postgresql"
    return query.where(column < _PG_HORIZON) if on_postgresql else query


def append(pending) -> None:
    """Insert the request's events in its own transaction (ids from the database)."""
    now = utcnow()
    _APPEND.run_many(sql.in_transaction(), [
        {"name": e.name, "property_id": e.property_id, "owner_id": e.owner_id,
         "payload": e.payload, "created_at": now} for e in pending])


def read_final(cursor, after: int, limit: int) -> tuple[list[LogRow], bool]:
    """Final rows with id > `after`, oldest first, at most `limit`; and whether a committed
    row past the horizon was seen (a transaction still running holds it back)."""
    rows = _READ[cursor.engine.dialect.name].all(cursor, after=after, limit=limit)
    if not rows or len(rows[0]) == len(_COLUMNS):  # SQLite: every committed row is final
        return [LogRow(*r) for r in rows], False
    below = rows[0][-1]
    final = [LogRow(*r[:-1]) for r in rows if r[0] < below]
    return final, len(final) < len(rows)


def final_max(cursor) -> int:
    """The largest final id (0 for an empty log): where a new tailer starts."""
    return _FINAL_MAX[cursor.engine.dialect.name].scalar(cursor)


def newest_id(cursor) -> int:
    return _NEWEST.scalar(cursor)


def visible_to(user, query: Select) -> Select:
    return query if user.is_staff else query.where(_T.c.owner_id == user.id)


def named(event: str | None, all_name: str, query: Select) -> Select:
    return query if not event or event == all_name else query.where(_T.c.name == event)


def history(user, since: int, limit: int, event: str | None, all_name: str,
            upto: int | None = None) -> list:
    """Final rows after `since` that `user` may see, oldest first (up to `upto` if given)."""
    query = select(*_COLUMNS).where(_T.c.id > since)
    if upto is not None:
        query = query.where(_T.c.id <= upto)
    else:
        query = final_only(query, _T.c.id)
    query = named(event, all_name, visible_to(user, query))
    return list(db.session.execute(query.order_by(_T.c.id).limit(limit)))


def last_visible(user, event: str, all_name: str, upto: int) -> int:
    query = named(event, all_name, visible_to(
        user, select(func.max(_T.c.id)).where(_T.c.id <= upto)))
    return db.session.scalar(query) or 0
