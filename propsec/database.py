"""Database set-up: engine tuning, schema upgrades through the migrations, reference data."""
from __future__ import annotations

import logging

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
    continue_event_ids()
    for ident, name in TIERS.items():
        db.session.merge(Tier(id=ident, name=name))
    for ident, name in EQUIPMENT_TYPES.items():
        db.session.merge(EquipmentType(id=ident, name=name))
    db.session.commit()


def continue_event_ids() -> None:
    """PostgreSQL: make the next event ids larger than every stored one.

    Event ids derive from transaction ids (pipeline/log.py). A database moved to another
    cluster by a logical dump and restore keeps its events but meets transaction ids that
    start again, so new events would get smaller ids than old ones (clients' `since` and
    the tailer's order would break). Then the id offset is raised past the stored ids."""
    if db.engine.dialect.name != "postgresql":
        return
    # (audit entries take their ids from the same function)
    stored, offset, current = db.session.execute(text(
        "SELECT greatest(coalesce((SELECT max(id) FROM event_log), 0), "
        "coalesce((SELECT max(id) FROM audit_log), 0)), propsec_event_id_offset(), "
        "pg_current_xact_id()::text::bigint")).one()
    if stored < (current + offset) << 16:
        db.session.commit()
        return
    raised = (stored >> 16) - current + 1_000
    db.session.execute(text(
        "CREATE OR REPLACE FUNCTION propsec_event_id_offset() RETURNS bigint "
        f"LANGUAGE sql STABLE AS 'SELECT {int(raised)}::bigint'"))
    db.session.commit()
    logging.getLogger("propsec.database").warning(
        "stored event ids were ahead of this cluster's transaction ids (a restore?): "
        "new event ids continue after them")


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
