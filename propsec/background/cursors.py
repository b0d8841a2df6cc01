"""Durable read positions of background consumers (`log_cursors`): the notification fan-out
over the event log, the audit seal over the audit trail.

A step reads where its cursor stands and what follows it without a lock, works out what to
write, and then `advance()`s: the cursor moves from where it was read to the last row the
step took in, together with the step's writes, all or nothing. When another process moved
the cursor first, nothing is written and the step starts over; so each row is taken in
once, in order, whichever process does it.

Why not lock the cursor first. Any transaction that writes in a PostgreSQL cluster holds
back the event horizon (pipeline/log.py) from its first write to its end, and under load a
busy process takes several milliseconds to come back to a transaction between two round
trips: a step that locked its cursor, then wrote, then committed held every tailer's
delivery back for 20-50 ms each time (docs/performance.md, W36). On PostgreSQL `advance()`
is one round trip: BEGIN, `propsec_move_cursor()` (which raises SQLSTATE PS410 when the
cursor is no longer where the step read it), the writes and COMMIT travel together, so the
transaction id is held only while the database runs them. SQLite has one writer and no
horizon: there the step checks and moves the cursor in the session's transaction.

A cursor that does not exist yet is made by `create()` at the consumer's starting point."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from .. import sql
from ..extensions import db
from ..models import LogCursor

MOVED = "PS410"  # SQLSTATE of propsec_move_cursor() when another process moved it first
_T = LogCursor.__table__
_POSITION = sql.Prepared(select(_T.c.last_id).where(_T.c.name == bindparam("name")))
_MOVE = sql.Prepared(select(func.propsec_move_cursor(
    bindparam("name", type_=_T.c.name.type), bindparam("from_id", type_=_T.c.last_id.type),
    bindparam("to_id", type_=_T.c.last_id.type))))


def position(name: str) -> int | None:
    """Where the cursor stands, read without a lock (None: it does not exist yet)."""
    with sql.autocommit() as cursor:
        return _POSITION.scalar(cursor, name=name)


def advance(name: str, from_id: int, to_id: int,
            writes: Callable[[sql._Cursor], None]) -> bool:
    """Move the cursor from `from_id` to `to_id` and run `writes(cursor)` (prepared
    statements, no answers read) in one transaction; False, with nothing written, when the
    cursor was no longer at `from_id`. The ORM session must hold no transaction."""
    db.session.rollback()
    if not sql.batches(db.engine):
        moved = db.session.execute(update(LogCursor).where(
            LogCursor.name == name, LogCursor.last_id == from_id).values(last_id=to_id)).rowcount
        if moved != 1:
            db.session.rollback()
            return False
        writes(sql.in_transaction())
        db.session.commit()
        return True
    tx = sql.OwnTransaction(db.engine)
    try:
        _MOVE.run(tx.cursor, name=name, from_id=from_id, to_id=to_id)
        writes(tx.cursor)
        tx.cursor.commit()  # (the one round trip)
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) == MOVED:
            return False
        raise
    finally:
        tx.close()
    return True


def create(name: str, start_at: Callable[[], int]) -> None:
    """Create the cursor at `start_at()` unless it exists (when two processes create it at
    once, the first one's stays)."""
    if db.session.get(LogCursor, name) is None:
        db.session.add(LogCursor(name=name, last_id=start_at()))
        try:
            db.session.commit()
            return
        except IntegrityError:
            pass
    db.session.rollback()
