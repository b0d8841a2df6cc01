"""Shared fixtures: a fresh app and database per test, users of every role, and
Socket.IO test clients authenticated with real API tokens."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from propsec.extensions import db  # noqa: E402
from propsec.models import ACTIVE, CAMERA, DRONE, Equipment, Property  # noqa: E402
from propsec.protocol.events import NAMESPACE  # noqa: E402
from propsec.security import issue_token  # noqa: E402
from support import (PASSWORD, ROLES, Client, database_url, make_app,  # noqa: E402,F401
                     prepare_database, reset_database, test_backends)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """Migrating once and copying the file keeps per-test databases cheap on SQLite."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    prepare_database(make_app(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_suite_url():
    """One scratch PostgreSQL database for the whole run, migrated once."""
    import os

    from services import postgres_database

    given = os.environ.get("PROPSEC_TEST_DATABASE_URL", "")
    if given.startswith("postgresql"):
        prepare_database(make_app(given))
        yield given
        return
    with postgres_database("suite") as url:
        prepare_database(make_app(url))
        yield url


@pytest.fixture(params=test_backends())
def backend(request):
    return request.param


@pytest.fixture
def app(request, backend, tmp_path, sqlite_template):
    if backend == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "test.sqlite")
        app = make_app(database_url(tmp_path))
    else:
        app = make_app(request.getfixturevalue("postgres_suite_url"))
        reset_database(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def tokens(app):
    with app.app_context():
        return {user_id: issue_token(user_id) for user_id in ROLES}


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
