"""Writers hold a PostgreSQL transaction id only while the database runs their write, never
across a wait for their own process (docs/architecture.md, "Transactions that wait on their
process"): any open writing transaction holds back every tailer's delivery. That holds for
the requests' groups and for the background steps that write (the audit seal, the
notification fan-out, escalation). And a step whose cursor another process moved first
writes nothing."""
from __future__ import annotations

import select
import threading
import time

import psycopg2
import psycopg2.extensions
import pytest
from helpers import ago, expect, insert
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)
from sqlalchemy import func, select as select_rows

from propsec.audit import seal
from propsec.background import cursors
from propsec.background.escalation import escalate_due
from propsec.extensions import db
from propsec.models import Alert, AuditEntry, LogCursor, Webhook, WebhookDelivery
from propsec.notify import fanout

# How much longer each round trip takes under `busy_process`.
BUSY_SECONDS = 0.04
_HELD = ("SELECT pid, left(query, 80) FROM pg_stat_activity WHERE datname = current_database()"
         " AND backend_xid IS NOT NULL AND state LIKE 'idle in transaction%'"
         " AND pid <> pg_backend_pid()")


class HeldTransactions:
    """Watches the database, every millisecond or so, for a session that holds a transaction
    id while it waits for its client (`idle in transaction`)."""

    def __init__(self, url: str):
        self.connection = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
        self.connection.autocommit = True
        self.seen: list[tuple] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with self.connection.cursor() as cursor:
            while not self._stop.is_set():
                cursor.execute(_HELD)
                self.seen.extend(cursor.fetchall())
                self.samples += 1
                time.sleep(0.001)

    def __enter__(self) -> "HeldTransactions":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.connection.close()


@pytest.fixture
def busy_process(app):
    """Every round trip of the app's PostgreSQL connections returns 40 ms late, as in a
    server process too busy to come back to a connection at once (psycopg2's wait callback,
    which eventlet's and gevent's patches use the same way). The watcher is not slowed."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("PostgreSQL only: SQLite has one writer and no event horizon")
    watcher = HeldTransactions(app.config["SQLALCHEMY_DATABASE_URI"])

    def late(conn):
        while True:
            state = conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                break
            if state == psycopg2.extensions.POLL_READ:
                select.select([conn.fileno()], [], [])
            else:
                select.select([], [conn.fileno()], [])
        if conn is not watcher.connection:
            time.sleep(BUSY_SECONDS)

    with app.app_context():
        db.engine.dispose()
    psycopg2.extensions.set_wait_callback(late)
    try:
        yield watcher
    finally:
        psycopg2.extensions.set_wait_callback(None)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_writers_never_wait_on_their_process_holding_a_transaction_id(
        app, clients, site, busy_process):
    staff = clients["staff"]
    with app.app_context():
        db.session.add(Webhook(user_id="owner", url="https://hooks.example.net/x",
                               events=["events.all"], secret="(sealed)"))
        db.session.commit()
        for name in (seal.CURSOR, fanout.CURSOR):  # both start before the alerts below
            cursors.create(name, lambda: 0)
    alerts = [expect(staff.call("add-alert", propertyId=site["p1"], userId=f"badge-{n}"),
                     "success")["id"] for n in range(3)]
    app.config["PROPSEC_ESCALATION_SECONDS"] = 60
    [due] = insert(app, Alert(property_id=site["p1"], user_id="owner", reason="door",
                              timestamp=ago(seconds=61)))
    with busy_process as watcher:
        # requests: a group's read (which reserves ids), a refill of reserved ids
        for n in range(3):
            expect(staff.call("add-visitor", propertyId=site["p1"], cameraId=site["camera"],
                              userId=f"visitor-{n}"), "success")
        expect(staff.call("add-auth-entry", propertyId=site["p1"], userId="stranger"),
               "success")
        with app.app_context():
            while seal.step() == 0:
                pass
            while fanout.step() == 0:
                pass
            escalated = escalate_due()
            db.session.remove()
    assert watcher.samples > 50
    assert watcher.seen == []
    # ...and the work was done
    with app.app_context():
        assert db.session.scalar(select_rows(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.hash.is_(None))) == 0
        delivered = db.session.scalars(select_rows(WebhookDelivery.event)).all()
        assert delivered.count("events.alerts") == len(alerts) + 1  # (the stranger's)
        assert delivered.count("events.visits") == 3
        assert escalated == 1 and db.session.get(Alert, due).escalation_level == 1


def test_a_step_whose_cursor_moved_meanwhile_writes_nothing(app, site):
    hook_row = {"webhook_id": None, "event_id": 7, "event": "events.alerts", "body": "{}",
                "state": "pending", "attempts": 0, "due_at": ago(seconds=0)}
    with app.app_context():
        hook = Webhook(user_id="owner", url="https://hooks.example.net/x", events=["events.all"],
                       secret="(sealed)")
        db.session.add_all([hook, LogCursor(name="test-cursor", last_id=5)])
        db.session.commit()
        hook_row["webhook_id"] = hook.id

        def deliver(cursor):
            fanout._DELIVERY.run_many(cursor, [hook_row])

        # another process moved it from 4 to 5 first
        assert cursors.advance("test-cursor", 4, 9, deliver) is False
        assert cursors.position("test-cursor") == 5
        assert db.session.scalar(select_rows(func.count()).select_from(WebhookDelivery)) == 0
        assert cursors.advance("test-cursor", 5, 9, deliver) is True
        assert cursors.position("test-cursor") == 9
        assert db.session.scalar(select_rows(func.count()).select_from(WebhookDelivery)) == 1
        db.session.remove()


def test_a_seal_that_lost_the_race_writes_nothing_and_the_chain_still_verifies(
        app, clients, site):
    staff = clients["staff"]
    for n in range(2):
        expect(staff.call("add-alert", propertyId=site["p1"], userId=f"badge-{n}"), "success")
    with app.app_context():
        cursors.create(seal.CURSOR, lambda: 0)
        hashes = seal._chain_next(0)
        first = hashes[0]["entry_id"]
        # another process sealed the first entry meanwhile
        assert cursors.advance(seal.CURSOR, 0, first, lambda c: seal._store(c, hashes[:1]))
        assert not cursors.advance(seal.CURSOR, 0, hashes[-1]["entry_id"],
                                   lambda c: seal._store(c, hashes))
        sealed = db.session.scalars(select_rows(AuditEntry.id).where(
            AuditEntry.hash.is_not(None))).all()
        assert sealed == [first]
        seal.seal_all()
        assert seal.verify()[0]
        db.session.remove()


def test_a_step_writes_text_right_whatever_the_connection_encoding(app, site, monkeypatch):
    """PostgreSQL: the writes travel written out as SQL text; a connection whose client
    encoding is not UTF-8 still stores the text it was given."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("PostgreSQL's client encodings")
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")
    body = '{"location": "Hôtel de l\'Été"}'
    with app.app_context():
        db.engine.dispose()
        hook = Webhook(user_id="owner", url="https://hooks.example.net/x", events=["events.all"],
                       secret="(sealed)")
        db.session.add_all([hook, LogCursor(name="test-cursor", last_id=0)])
        db.session.commit()
        row = {"webhook_id": hook.id, "event_id": 1, "event": "events.alerts", "body": body,
               "state": "pending", "attempts": 0, "due_at": ago(seconds=0)}
        assert cursors.advance("test-cursor", 0, 1,
                               lambda cursor: fanout._DELIVERY.run_many(cursor, [row]))
        assert db.session.scalar(select_rows(WebhookDelivery.body)) == body
        db.session.remove()
        db.engine.dispose()
