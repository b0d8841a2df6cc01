"""The schema comes only from the migrations: after upgrading, the models and the database
agree, every lookup the queries make has its index, and init-db can be run again."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from propsec.database import init_db
from propsec.extensions import db
from propsec.models import EquipmentType, Tier


def test_models_match_the_migrated_schema(app):
    with app.app_context(), db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert differences == []


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
