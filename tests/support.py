"""Test building blocks shared by the fixtures and by tests that need them directly."""
from __future__ import annotations

import os
from functools import lru_cache

from propsec import create_app
from propsec.database import init_db
from propsec.extensions import db, socketio
from propsec.models import User
from propsec.protocol.events import NAMESPACE
from propsec.security import hash_password

PASSWORD = "correct horse"
ROLES = {"owner": "owner", "neighbour": "owner", "staff": "staff", "admin": "admin"}


def database_url(tmp_path) -> str:
    """SQLite per test by default; PROPSEC_TEST_DATABASE_URL runs the suite on PostgreSQL."""
    return os.environ.get("PROPSEC_TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'test.sqlite'}"


@lru_cache(maxsize=1)
def password_hash() -> str:
    return hash_password(PASSWORD)


def make_app(url: str):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                       "PROPSEC_RATE_LIMIT": (10_000, 10_000.0),
                       "PROPSEC_ASYNC_MODE": "threading"})


def prepare_database(app) -> None:
    """Schema through the migrations, reference data, and one user of each kind."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.drop_all()
            db.session.execute(db.text("DROP TABLE IF EXISTS alembic_version"))
            db.session.commit()
        init_db(app)
        for user_id, role in ROLES.items():
            db.session.add(User(id=user_id, full_name=user_id.title() + " Person", role=role,
                                password_hash=password_hash()))
        db.session.commit()
        db.engine.dispose()


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


