"""The event log and its delivery: record inside the transaction, push after commit.

Every event is a row of `event_log` written in the request's own transaction. Pushes
happen only after the commit, and the span "insert rows, commit, push" is serialized
system-wide (a process lock, plus a PostgreSQL advisory lock across processes), so event
ids reach every connection in increasing order and `subscribe` with `since` can replay
from the log without gaps."""
from __future__ import annotations

import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from sqlalchemy import create_engine, func, select, text

from ..extensions import db, socketio
from ..models import EventRecord
from ..models._common import iso
from .access import Principal
from .queue import sync_queue

NAMESPACE = "/propsec"
ALL = "events.all"
EVENT_NAMES = (
    ALL, "events.alerts", "events.alert-acknowledged", "events.visits", "events.scanned",
    "events.crimes", "events.auth-entries", "events.property-added", "events.property-removed",
    "events.property-status-change", "events.property-equipment-change",
    "events.requested-remove-property", "events.approved-remove-property",
    "events.drone-dispatched", "events.drone-recalled", "events.property-coordinates-changed",
    "events.property-size-changed", "events.property-tier-changed",
)
REPLAY_BATCH = 500
# Arbitrary constant naming propsec's advisory lock on PostgreSQL.
PUBLISH_LOCK_KEY = 0x70726F7073656331


@dataclass(frozen=True)
class PendingEvent:
    name: str
    property_id: int
    owner_id: str
    payload: dict


def room(event_name: str, user: Principal) -> str:
    """Staff and admins share one room per event; each owner has their own."""
    return f"{event_name}|staff" if user.is_staff else f"{event_name}|owner:{user.id}"


def _rooms(event_name: str, owner_id: str) -> list[str]:
    return [f"{event_name}|staff", f"{event_name}|owner:{owner_id}"]


def wire_payload(record: EventRecord, with_name: bool = False) -> dict:
    body = {**record.payload, "eventId": record.id, "timestamp": iso(record.created_at)}
    if with_name:
        body["event"] = record.name
    return body


def visible_to(user: Principal, query):
    return query if user.is_staff else query.where(EventRecord.owner_id == user.id)


class EventBus:
    def __init__(self) -> None:
        self._local = threading.Lock()
        self._dialect = "sqlite"
        self._lock_engine = None

    def init_app(self, app) -> None:
        with app.app_context():
            self._dialect = db.engine.dialect.name
            if self._lock_engine is not None:
                self._lock_engine.dispose()
            # The advisory lock gets one connection of its own, outside the request pool: a
            # request that holds a pool connection must never wait for a second one (with
            # the pool exhausted by requests queued on the process lock, it would wait
            # until the pool timeout).
            self._lock_engine = (create_engine(db.engine.url, pool_size=1, max_overflow=0,
                                               pool_pre_ping=True)
                                 if self._dialect == "postgresql" else None)
        app.extensions["propsec_events"] = self

    @property
    def serializes_requests(self) -> bool:
        """SQLite has one writer: a whole request runs under the process lock there."""
        return self._dialect == "sqlite"

    def request_scope(self):
        return self._local if self.serializes_requests else nullcontext()

    @contextmanager
    def publish_scope(self):
        """Held while event rows are inserted, committed and pushed (or while replaying)."""
        if self.serializes_requests:  # the request scope already holds the process lock
            yield
            return
        db.session.connection()  # the request's own connection, before queueing for the lock
        with self._local, self._lock_engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PUBLISH_LOCK_KEY})
            try:
                sync_queue(socketio.server)  # events of other processes first (see queue.py)
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PUBLISH_LOCK_KEY})
                conn.commit()

    def commit(self, pending: list[PendingEvent]) -> None:
        """Commit the request's transaction with its events, then push them."""
        if not pending:
            if db.session.registry.has():  # a reading query may never have opened one
                db.session.commit()
            return
        with self.publish_scope():
            records = [EventRecord(name=e.name, property_id=e.property_id, owner_id=e.owner_id,
                                   payload=e.payload) for e in pending]
            db.session.add_all(records)
            db.session.flush()
            outgoing = [(r.name, r.owner_id, wire_payload(r)) for r in records]
            db.session.commit()
            for name, owner_id, payload in outgoing:
                self.push(name, owner_id, payload)

    @staticmethod
    def push(name: str, owner_id: str, payload: dict) -> None:
        socketio.emit(name, payload, to=_rooms(name, owner_id), namespace=NAMESPACE)
        socketio.emit(ALL, {**payload, "event": name}, to=_rooms(ALL, owner_id),
                      namespace=NAMESPACE)

    def history(self, user: Principal, since: int, limit: int, event: str | None = None):
        query = visible_to(user, select(EventRecord).where(EventRecord.id > since))
        if event and event != ALL:
            query = query.where(EventRecord.name == event)
        return db.session.scalars(query.order_by(EventRecord.id).limit(limit)).all()

    def last_id(self, user: Principal, event: str) -> int:
        """The newest eventId of this name that the user may see (0 when there is none)."""
        query = visible_to(user, select(func.max(EventRecord.id)))
        if event != ALL:
            query = query.where(EventRecord.name == event)
        return db.session.scalar(query) or 0

    def replay(self, sid: str, user: Principal, event: str, since: int) -> int:
        """Push to one connection every visible event after `since`, oldest first."""
        count = 0
        while True:
            batch = self.history(user, since, REPLAY_BATCH, event)
            for record in batch:
                name = ALL if event == ALL else record.name
                socketio.emit(name, wire_payload(record, with_name=event == ALL), to=sid,
                              namespace=NAMESPACE)
            count += len(batch)
            if len(batch) < REPLAY_BATCH:
                return count
            since = batch[-1].id


bus = EventBus()
