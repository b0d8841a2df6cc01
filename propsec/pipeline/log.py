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

from sqlalchemy import Select, func, insert, literal_column, select

from ..extensions import db
from ..models import EventRecord
from ..models._common import utcnow

ORDINAL_BITS = 16
_T = EventRecord.__table__
_COLUMNS = (_T.c.id, _T.c.name, _T.c.owner_id, _T.c.payload, _T.c.created_at)
_APPEND = insert(_T)
# Evaluated once per statement (an InitPlan), in the statement's own snapshot.
_PG_HORIZON = literal_column(
    f"(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {ORDINAL_BITS})")


def _horizon(dialect_name: str):
    return _PG_HORIZON if dialect_name == "postgresql" else None


def append(pending) -> None:
    """Insert the request's events in its own transaction (ids from the database)."""
    now = utcnow()
    rows = [{"name": e.name, "property_id": e.property_id, "owner_id": e.owner_id,
             "payload": e.payload, "created_at": now} for e in pending]
    db.session.execute(_APPEND, rows if len(rows) > 1 else rows[0])


def read_final(connection, after: int, limit: int) -> tuple[list, bool]:
    """Final rows with id > `after`, oldest first, at most `limit`; and whether a committed
    row past the horizon was seen (a transaction still running holds it back)."""
    horizon = _horizon(connection.dialect.name)
    query = select(*_COLUMNS).where(_T.c.id > after).order_by(_T.c.id).limit(limit)
    if horizon is None:
        return list(connection.execute(query)), False
    rows = list(connection.execute(query.add_columns(horizon.label("horizon"))))
    if not rows:
        return [], False
    limit_id = rows[0].horizon
    final = [r for r in rows if r.id < limit_id]
    return final, len(final) < len(rows)


def final_max(connection) -> int:
    """The largest final id (0 for an empty log): where a new tailer starts."""
    query = select(func.coalesce(func.max(_T.c.id), 0))
    horizon = _horizon(connection.dialect.name)
    if horizon is not None:
        query = query.where(_T.c.id < horizon)
    return connection.execute(query).scalar_one()


def newest_id(connection) -> int:
    return connection.execute(select(func.coalesce(func.max(_T.c.id), 0))).scalar_one()


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
        horizon = _horizon(db.engine.dialect.name)
        if horizon is not None:
            query = query.where(_T.c.id < horizon)
    query = named(event, all_name, visible_to(user, query))
    return list(db.session.execute(query.order_by(_T.c.id).limit(limit)))


def last_visible(user, event: str, all_name: str, upto: int) -> int:
    query = named(event, all_name, visible_to(
        user, select(func.max(_T.c.id)).where(_T.c.id <= upto)))
    return db.session.scalar(query) or 0
