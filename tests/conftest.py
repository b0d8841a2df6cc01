"""Shared fixtures: a fresh app and database per test, users of every role, and
Socket.IO test clients authenticated with real API tokens."""
from __future__ import annotations

import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from propsec import create_app
from propsec.database import init_db
from propsec.extensions import db, socketio
from propsec.models import ACTIVE, CAMERA, DRONE, Equipment, Property, User
from propsec.protocol.events import NAMESPACE
from propsec.security import hash_password, issue_token

sys.path.insert(0, str(Path(__file__).parent))

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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """Migrating once and copying the file keeps per-test databases cheap on SQLite."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    prepare_database(make_app(f"sqlite:///{path}"))
    return path


@pytest.fixture
def app(tmp_path, sqlite_template):
    url = database_url(tmp_path)
    if url.startswith("sqlite"):
        shutil.copy(sqlite_template, tmp_path / "test.sqlite")
        app = make_app(url)
    else:
        app = make_app(url)
        prepare_database(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def tokens(app):
    with app.app_context():
        return {user_id: issue_token(user_id) for user_id in ROLES}


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


@pytest.fixture
def connect(app, tokens):
    clients = []

    def make(user_id):
        client = Client(app, tokens[user_id])
        assert client.sio.is_connected(NAMESPACE)
        clients.append(client)
        return client

    yield make
    for client in clients:
        if client.sio.is_connected(NAMESPACE):
            client.sio.disconnect(NAMESPACE)


@pytest.fixture
def site(app):
    """Two ACTIVE properties: P1 of `owner` (camera + two drones), P2 of `neighbour`."""
    with app.app_context():
        p1 = Property(owner_id="owner", location="1 Harbour Road", tier_id=2, x=0, y=0,
                      width=20, height=20, status=ACTIVE, description="home")
        p2 = Property(owner_id="neighbour", location="2 Harbour Road", tier_id=1, x=100, y=0,
                      width=20, height=20, status=ACTIVE, description="next door")
        db.session.add_all([p1, p2])
        db.session.flush()
        camera = Equipment(property_id=p1.id, type_id=CAMERA, description="gate camera")
        drones = [Equipment(property_id=p1.id, type_id=DRONE, description=f"drone {n}")
                  for n in (1, 2)]
        other_camera = Equipment(property_id=p2.id, type_id=CAMERA, description="their camera")
        db.session.add_all([camera, *drones, other_camera])
        db.session.commit()
        return {"p1": p1.id, "p2": p2.id, "camera": camera.id, "drones": [d.id for d in drones],
                "other_camera": other_camera.id}


@pytest.fixture
def live_server(tmp_path):
    """A real `python app.py` process (eventlet by default) with an initialised database."""
    from live import LiveServer

    server = LiveServer(tmp_path)
    server.init_db()
    with server:
        yield server
