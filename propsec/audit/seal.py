"""Sealing the audit trail: each entry's `hash`, in id order, after its commit.

One cursor row (`log_cursors`, name "audit-seal") holds the id of the last sealed entry. A
step reads the next *final* unsealed entries (on PostgreSQL, ids below the horizon, as for
the event log: no smaller id can commit later) and chains them onto the last sealed hash
without any lock; then it stores the hashes (rows of `audit_seals`: the entries themselves
are never updated) and moves the cursor together, and only if the cursor has not moved
meanwhile (`cursors.advance`: on PostgreSQL one statement). Any process may do it; each
entry is sealed once, in order."""
from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, null, select, text

from .. import sql
from ..background import Worker, cursors
from ..pipeline import log as event_log
from ..extensions import db
from ..models import AuditEntry, AuditSeal, LogCursor
from . import ZERO, as_wire, chained

CURSOR = "audit-seal"
BATCH = 200
_TABLE = AuditEntry.__table__
_SEALS = AuditSeal.__table__
# A seal already there for an entry the cursor has not passed (a restored backup, a cursor
# reset by hand) is replaced, as the old UPDATE of the entry's column did: a conflict would
# stop the seal for good, and what counts is the chain that verify() recomputes.
_ADD_SEAL = sql.Prepared(text(
    "INSERT OR REPLACE INTO audit_seals (id, hash) VALUES (:entry_id, :entry_hash)"))
_ADD_SEALS = sql.Prepared(text(
    "INSERT INTO audit_seals (id, hash) SELECT * FROM unnest(CAST(:ids AS bigint[]), "
    "CAST(:hashes AS text[])) ON CONFLICT (id) DO UPDATE SET hash = EXCLUDED.hash"))


class _Entry(NamedTuple):
    """An audit_log row as as_wire() reads it."""
    id: int
    at: object
    actor: str | None
    action: str
    target: str | None
    property_id: int | None
    detail: dict
    address: str | None
    hash: str | None


# The reads run as prepared statements on a pooled connection outside any transaction (the
# ORM's per-row work cost more than the hashing).
_UNSEALED = {dialect: sql.Prepared(event_log.final_only(
    select(*(_TABLE.c[name] for name in _Entry._fields[:-1]), null())
    .where(_TABLE.c.id > bindparam("after")),
    _TABLE.c.id, dialect).order_by(_TABLE.c.id).limit(BATCH)) for dialect in ("postgresql", "sqlite")}
_HASH_OF = sql.Prepared(select(_SEALS.c.hash).where(_SEALS.c.id == bindparam("entry_id")))


def _chain_next(last_id: int) -> list[dict]:
    """Read the final unsealed entries after `last_id` and chain them, without taking a
    lock or a transaction id: the hashes to store (none: nothing to seal)."""
    with sql.autocommit() as cursor:
        entries = [_Entry(*row) for row in
                   _UNSEALED[cursor.engine.dialect.name].all(cursor, after=last_id)]
        if not entries:
            return []
        previous = (_HASH_OF.scalar(cursor, entry_id=last_id) if last_id else None) or ZERO
    hashes = []
    for entry in entries:
        previous = chained(previous, as_wire(entry))
        hashes.append({"entry_id": entry.id, "entry_hash": previous})
    return hashes


def step() -> float | None:
    """Seal the next batch. Everything but the write happens before it: the write (the
    hashes and the cursor's move) holds back the event horizon of the whole cluster while
    it runs. A cursor that moved meanwhile (another process sealed these entries) makes this
    step give way: that process goes on with the next ones."""
    last_id = cursors.position(CURSOR)
    if last_id is None:
        cursors.create(CURSOR, lambda: 0)
        return 0
    hashes = _chain_next(last_id)
    if not hashes:
        return None
    if not cursors.advance(CURSOR, last_id, hashes[-1]["entry_id"],
                           lambda cursor: _store(cursor, hashes)):
        return None  # another process sealed them, and goes on with what follows
    return 0 if len(hashes) == BATCH else None


def _store(cursor, hashes: list[dict]) -> None:
    """All of a batch's hashes in one statement on PostgreSQL."""
    if cursor.engine.dialect.name != "postgresql":
        _ADD_SEAL.run_many(cursor, hashes)
        return
    _ADD_SEALS.run(cursor, ids=[h["entry_id"] for h in hashes],
                   hashes=[h["entry_hash"] for h in hashes])


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
            select(AuditSeal.hash).join(AuditEntry, AuditEntry.id == AuditSeal.id)
            .where(AuditSeal.id == last.last_id))):
        return False, count, f"the last sealed entry ({last.last_id}) is missing or was altered"
    return True, count, ""
