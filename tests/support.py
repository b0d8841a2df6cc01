"""Test building blocks shared by the fixtures and by tests that need them directly."""
from __future__ import annotations

import os
import time
from functools import lru_cache

from sqlalchemy.exc import OperationalError

from propsec import create_app
from propsec.database import init_db, init_fresh_db
from propsec.extensions import db, socketio
from propsec.models import User
from propsec.protocol.events import NAMESPACE
from propsec.security import hash_password

PASSWORD = "correct horse"
ROLES = {"owner": "owner", "neighbour": "owner", "staff": "staff", "admin": "admin"}


def test_backends() -> list[str]:
    """Databases the in-process suite runs on: PROPSEC_TEST_BACKENDS (e.g. `sqlite,postgresql`,
    as CI sets it), or PostgreSQL alone when PROPSEC_TEST_DATABASE_URL names one."""
    if os.environ.get("PROPSEC_TEST_DATABASE_URL", "").startswith("postgresql"):
        return ["postgresql"]
    names = os.environ.get("PROPSEC_TEST_BACKENDS") or "sqlite"
    return [n.strip() for n in names.split(",") if n.strip()]


def database_url(tmp_path) -> str:
    """The SQLite file of one test (PostgreSQL runs get their URL from the `app` fixture)."""
    return f"sqlite:///{tmp_path / 'test.sqlite'}"


@lru_cache(maxsize=1)
def password_hash() -> str:
    return hash_password(PASSWORD)


def make_app(url: str):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                       "PROPSEC_RATE_LIMIT": (10_000, 10_000.0),
                       "PROPSEC_ASYNC_MODE": "threading",
                       # delivered before the acknowledgement, so tests can look at once
                       "PROPSEC_DELIVERY_INLINE": True})


def add_test_users() -> None:
    for user_id, role in ROLES.items():
        db.session.add(User(id=user_id, full_name=user_id.title() + " Person", role=role,
                            password_hash=password_hash()))
    db.session.commit()


def prepare_database(app) -> None:
    """Schema through the migrations, reference data, and one user of each kind."""
    with app.app_context():
        init_fresh_db(app)
        add_test_users()
        db.engine.dispose()


def reset_database(app) -> None:
    """Empty an already migrated PostgreSQL database (ids restart) and refill the basics:
    much cheaper than migrating again for every test."""
    with app.app_context():
        tables = ", ".join(t.name for t in db.metadata.sorted_tables)
        for attempt in range(5):
            try:
                db.session.execute(db.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                db.session.commit()
                break
            except OperationalError:
                # a background thread of an earlier test's app (its credential sweeper)
                # may read a table at that moment: PostgreSQL picks one of the two to fail
                db.session.rollback()
                if attempt == 4:
                    raise
                time.sleep(0.2)
        init_db(app)
        add_test_users()


class Client:
    """A Socket.IO test client with a `call` that returns the acknowledgement envelope."""

    def __init__(self, app, token):
        self.sio = socketio.test_client(app, namespace=NAMESPACE, auth={"token": token})

    def call(self, name, data=None, **fields):
        payload = dict(data or {}, **fields) if data is None or isinstance(data, dict) else data
        if not name.startswith(("queries.", "session", "subscribe", "unsubscribe")):
            name = "queries." + name
        return self.sio.emit(name, payload, namespace=NAMESPACE, callback=True)

    def ok(self, name, data=None, **fields):
        envelope = self.call(name, data, **fields)
        assert envelope["type"] != "error", envelope
        return envelope["data"]

    def events(self, name=None):
        received = self.sio.get_received(NAMESPACE)
        return [(r["name"], r["args"][0]) for r in received if name in (None, r["name"])]


