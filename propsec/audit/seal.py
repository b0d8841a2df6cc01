"""Sealing the audit trail: filling in each entry's `hash`, in id order, after commit.

One cursor row (`log_cursors`, name "audit-seal") holds the id of the last sealed entry. A
step claims it (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite has one writer), reads the next
*final* unsealed entries (on PostgreSQL, ids below the horizon, as for the event log: no
smaller id can commit later), chains them onto the last sealed hash, and moves the cursor,
all in one transaction. Any process may do it; each entry is sealed once, in order."""
from __future__ import annotations

from sqlalchemy import func, select, update

from ..background import Worker, cursors
from ..pipeline import log as event_log
from ..extensions import db
from ..models import AuditEntry, LogCursor
from . import ZERO, as_wire, chained

CURSOR = "audit-seal"
BATCH = 500


def _final(query):
    """Only entries no smaller id can join later (the event log's horizon, pipeline/log.py)."""
    horizon = event_log.horizon(db.engine.dialect.name)
    return query if horizon is None else query.where(AuditEntry.id < horizon)


def _pending() -> bool:
    """Anything final past the cursor? Asked without a lock, so an idle step takes no
    transaction id (an open one would hold back the event horizon of the whole cluster)."""
    last = select(LogCursor.last_id).where(LogCursor.name == CURSOR).scalar_subquery()
    query = _final(select(AuditEntry.id).where(AuditEntry.id > func.coalesce(last, 0)))
    found = db.session.scalar(query.limit(1)) is not None
    db.session.rollback()
    return found


def step() -> float | None:
    if not _pending():
        return None
    cursor, created = cursors.claim(CURSOR, lambda: 0)
    if cursor is None:
        if created:
            return 0
        db.session.rollback()  # another process is sealing
        return None
    rows = _final(select(AuditEntry).where(AuditEntry.id > cursor.last_id))
    entries = db.session.scalars(rows.order_by(AuditEntry.id).limit(BATCH)).all()
    if not entries:
        db.session.rollback()
        return None
    previous = (db.session.scalar(select(AuditEntry.hash).where(AuditEntry.id == cursor.last_id))
                if cursor.last_id else None) or ZERO
    for entry in entries:
        previous = chained(previous, as_wire(entry))
        db.session.execute(update(AuditEntry).where(AuditEntry.id == entry.id).values(hash=previous))
    cursor.last_id = entries[-1].id
    db.session.commit()
    return 0 if len(entries) == BATCH else None


# Every 2 s, not at every commit: a sealing step writes, and a writing transaction anywhere
# holds back the cluster's event horizon for its few milliseconds ("within 5 s" suffices).
worker = Worker("audit seal", lambda: step(), 2.0, 0.05)


def seal_all() -> None:
    """Seal everything final now (the CLI, before verifying)."""
    while step() == 0:
        pass


def verify() -> tuple[bool, int, str]:
    """Recompute the chain over the sealed entries: (ok, how many, what is wrong)."""
    previous, count = ZERO, 0
    for entry in db.session.scalars(select(AuditEntry).where(AuditEntry.hash.is_not(None))
                                    .order_by(AuditEntry.id)).yield_per(1000):
        expected = chained(previous, as_wire(entry))
        if entry.hash != expected:
            return False, count, (f"entry {entry.id} does not verify: it was altered, or an entry "
                                  "before it was removed or moved")
        previous, count = entry.hash, count + 1
    last = db.session.get(LogCursor, CURSOR)
    if last is not None and last.last_id and (count == 0 or previous != db.session.scalar(
            select(AuditEntry.hash).where(AuditEntry.id == last.last_id))):
        return False, count, f"the last sealed entry ({last.last_id}) is missing or was altered"
    return True, count, ""
