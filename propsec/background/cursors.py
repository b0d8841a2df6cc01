"""Durable read positions of background consumers (`log_cursors`): the notification fan-out
over the event log, the audit seal over the audit trail.

`claim()` is how a step takes its cursor: one process at a time (FOR UPDATE SKIP LOCKED on
PostgreSQL; SQLite has one writer), the others see None and move on. A cursor that does not
exist yet is created at the consumer's starting point, committed, and reported as such."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import select

from ..extensions import db
from ..models import LogCursor


def claim(name: str, start_at: Callable[[], int]) -> tuple[LogCursor | None, bool]:
    """(the locked cursor, or None when another process holds it or it was just created;
    whether it was just created)."""
    query = select(LogCursor).where(LogCursor.name == name)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    cursor = db.session.scalar(query)
    if cursor is not None:
        return cursor, False
    if db.session.get(LogCursor, name) is not None:
        return None, False  # held by another process
    db.session.add(LogCursor(name=name, last_id=start_at()))
    db.session.commit()
    return None, True
