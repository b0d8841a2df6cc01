"""Durable read positions of background consumers (`log_cursors`): the notification fan-out
over the event log, the audit seal over the audit trail.

A step reads where its cursor stands and what follows it without a lock, works out what to
write, and then `advance()`s: the cursor moves from where it was read to the last row the
step took in, together with the step's writes, all or nothing. When another process moved
the cursor first, nothing is written and the step leaves the rows to that process; so each
row is taken in once, in order, whichever process does it.

Why not lock the cursor first. Any transaction that writes in a PostgreSQL cluster holds
back the event horizon (pipeline/log.py) from its first write to its end, and under load a
busy process takes milliseconds to come back to a transaction between two round trips: a
step that locked its cursor, then wrote, then committed held every tailer's delivery back
for 20-50 ms each time (docs/performance.md, W36). On PostgreSQL `advance()` is one
statement in autocommit: `propsec_advance_cursor()` moves the cursor and runs the step's
writes (written out as SQL, the driver quoting the values) only if the cursor was still
where the step read it, and answers whether it did; the transaction id lives only while
the database runs it, and a lost race is an answer, not an error in the server's log.
SQLite has one writer and no horizon: there the step checks and moves the cursor in the
session's transaction.

A cursor that does not exist yet is made by `create()` at the consumer's starting point."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import IntegrityError

from .. import sql
from ..extensions import db
from ..models import LogCursor

_T = LogCursor.__table__
_POSITION = sql.Prepared(select(_T.c.last_id).where(_T.c.name == bindparam("name")))
_ADVANCE = sql.Prepared(text(
    "SELECT propsec_advance_cursor(:name, CAST(:from_id AS bigint), CAST(:to_id AS bigint), "
    "CAST(:writes AS text[]))"))


class _Written:
    """Stands in for a cursor: what runs on it is written out as SQL, for
    propsec_advance_cursor() to run on the server."""

    def __init__(self, cursor):
        self.engine = cursor.engine
        self._cursor = cursor
        self.statements: list[str] = []

    def run(self, compiled, params, fetch: bool) -> list:
        if fetch:
            raise RuntimeError("a step's writes read nothing back")
        self.statements.append(self._cursor.as_text(compiled, params))
        return []

    def run_many(self, compiled, params: list) -> None:
        for one in params:
            self.run(compiled, one, False)


def position(name: str) -> int | None:
    """Where the cursor stands, read without a lock (None: it does not exist yet)."""
    with sql.autocommit() as cursor:
        return _POSITION.scalar(cursor, name=name)


def advance(name: str, from_id: int, to_id: int, writes: Callable[[object], None]) -> bool:
    """Move the cursor from `from_id` to `to_id` and run `writes(cursor)` (prepared
    statements, no answers read) in one transaction; False, with nothing written, when the
    cursor was no longer at `from_id`. Ends whatever the ORM session had begun."""
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
    with sql.autocommit() as cursor:
        written = _Written(cursor)
        writes(written)
        return bool(_ADVANCE.scalar(cursor, name=name, from_id=from_id, to_id=to_id,
                                    writes=written.statements))


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
