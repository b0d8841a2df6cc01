"""Database set-up: engine tuning, schema upgrades through the migrations, reference data."""
from __future__ import annotations

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import event, inspect, text

from .background import checkpoint
from .extensions import db
from .models import EQUIPMENT_TYPES, TIERS, EquipmentType, Tier, User


def configure_engine(app: Flask) -> None:
    """SQLite: WAL so readers never wait for the writer, and a busy timeout for other
    processes; in a server process, checkpoints are left to background/checkpoint.py."""
    with app.app_context():
        engine = db.engine
        if engine.dialect.name != "sqlite":
            return

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            if checkpoint.ON["background"]:  # a server process: a worker checkpoints
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()


def init_db(app: Flask) -> None:
    """Create or upgrade the schema and the reference data; safe to run again."""
    upgrade(directory=app.extensions["migrate"].directory)
    for ident, name in TIERS.items():
        db.session.merge(Tier(id=ident, name=name))
    for ident, name in EQUIPMENT_TYPES.items():
        db.session.merge(EquipmentType(id=ident, name=name))
    db.session.commit()


def init_fresh_db(app: Flask) -> None:
    """Start from nothing: on PostgreSQL drop every table first (a SQLite file is simply
    new), then migrate. For tests and benchmarks on scratch databases only."""
    if db.engine.dialect.name == "postgresql":
        db.drop_all()
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
    init_db(app)


def database_is_empty() -> bool:
    return not inspect(db.engine).has_table("users") or db.session.query(User.id).first() is None
