"""The schema comes only from the migrations: after upgrading, the models and the database
agree, every lookup the queries make has its index, and init-db can be run again."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from propsec.database import init_db
from propsec.extensions import db
from propsec.models import EquipmentType, Tier


# The partial expression index of due alerts (ix_alerts_escalation_due) cannot be reflected
# or compared by SQLAlchemy on SQLite; tests/test_escalation.py checks that it is used.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_models_match_the_migrated_schema(app):
    with app.app_context(), db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert differences == []


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_lookups_are_indexed(app):
    with app.app_context():
        inspector = inspect(db.engine)
        indexed = {table: [tuple(ix["column_names"]) for ix in inspector.get_indexes(table)]
                   for table in ("properties", "alerts", "visits", "auth_entries", "crimes",
                                 "event_log", "equipment")}
    assert ("status",) in indexed["properties"] and ("owner_id",) in indexed["properties"]
    for table in ("alerts", "visits", "auth_entries", "crimes"):
        assert ("property_id", "timestamp") in indexed[table], table
    assert ("owner_id", "id") in indexed["event_log"] and ("name", "id") in indexed["event_log"]
    assert ("property_id",) in indexed["equipment"]


def test_init_db_is_idempotent_and_brings_reference_data(app):
    with app.app_context():
        init_db(app)
        init_db(app)
        assert [(t.id, t.name) for t in db.session.query(Tier).order_by(Tier.id)] == [
            (1, "Basic"), (2, "Standard"), (3, "Premium")]
        assert [t.name for t in db.session.query(EquipmentType).order_by(EquipmentType.id)] == [
            "Camera", "Drone", "Scanner", "Alarm", "Motion sensor"]


def test_existing_alerts_become_high_and_acknowledged_where_they_were(tmp_path):
    """The alert-lifecycle migration (9d2a6b3c1e55) on a database with alerts from before."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from support import make_app

    app = make_app(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with app.app_context():
        directory = app.extensions["migrate"].directory
        upgrade(directory=directory, revision="7c4e2f1a9b30")
        db.session.execute(text(
            "INSERT INTO users (id, full_name, role, created_at) VALUES "
            "('o', 'O', 'owner', CURRENT_TIMESTAMP)"))
        db.session.execute(text("INSERT INTO tiers (id, name) VALUES (1, 'Basic')"))
        db.session.execute(text(
            "INSERT INTO properties (id, owner_id, location, tier_id, x, y, width, height, "
            "status, description, created_at) VALUES (1, 'o', 'l', 1, 0, 0, 1, 1, 'ACTIVE', "
            "'', CURRENT_TIMESTAMP)"))
        db.session.execute(text(
            "INSERT INTO alerts (id, property_id, user_id, reason, timestamp, acknowledged_by, "
            "acknowledged_at) VALUES (1, 1, 'o', 'old open', CURRENT_TIMESTAMP, NULL, NULL), "
            "(2, 1, 'o', 'old seen', CURRENT_TIMESTAMP, 'staff', CURRENT_TIMESTAMP)"))
        db.session.commit()
        upgrade(directory=directory)
        rows = db.session.execute(text(
            "SELECT id, severity, state, escalation_level FROM alerts ORDER BY id")).all()
        db.session.remove()
        db.engine.dispose()
    assert [tuple(r) for r in rows] == [(1, 2, "open", 0), (2, 2, "acknowledged", 0)]


def test_hashes_sealed_before_the_audit_seals_table_move_into_it_and_still_verify(tmp_path):
    """The audit-seals migration (b4f6e2a9c831) on a trail sealed the old way, in the entry
    itself: the hashes move, the chain verifies, and the seal goes on from there."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from propsec import audit
    from propsec.audit import seal
    from support import make_app

    app = make_app(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with app.app_context():
        directory = app.extensions["migrate"].directory
        upgrade(directory=directory, revision="d8b3f5a1c726")
        previous = audit.ZERO
        for n in (1, 2, 3):
            entry = {"id": n, "at": f"2026-12-0{n}T10:00:00.000Z", "actor": "admin",
                     "action": "queries.add-alert", "target": None, "propertyId": None,
                     "detail": {"n": n}, "address": None}
            previous = audit.chained(previous, entry)
            sealed = previous if n < 3 else None  # the last one not sealed yet
            db.session.execute(text(
                "INSERT INTO audit_log (id, at, actor, action, detail, hash) VALUES "
                "(:id, :at, 'admin', 'queries.add-alert', :detail, :hash)"),
                {"id": n, "at": f"2026-12-0{n} 10:00:00", "detail": f'{{"n": {n}}}',
                 "hash": sealed})
        db.session.execute(text("INSERT INTO log_cursors (name, last_id) VALUES ('audit-seal', 2)"))
        db.session.commit()
        upgrade(directory=directory)
        assert db.session.execute(text("SELECT id FROM audit_seals ORDER BY id")).scalars().all() == [1, 2]
        assert seal.verify() == (True, 2, "")
        seal.seal_all()
        assert seal.verify() == (True, 3, "")
        assert db.session.execute(text("SELECT hash FROM audit_seals WHERE id = 3")).scalar() == previous
        db.session.remove()
        db.engine.dispose()
