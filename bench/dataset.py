"""Bulk-load a benchmark site: `python -m bench.dataset --database-url URL --properties N
--visits N --alerts N`. Progress goes to stderr; the last stdout line is JSON with the API
tokens, a sample of property ids and the site's extent.

Like `propsec/cli/seed.py` it inserts whole batches with SQLAlchemy Core (one executemany
per batch, one commit per batch) instead of ORM objects; unlike the demo seed it is shaped
for measuring: a square site of lots 30 m apart, `Mill Lane` on every eighth lot, one
camera per property, visits and alerts spread at random over the properties and the last
90 days. The database must be empty (the harness makes a fresh one)."""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import random
import sys
import time
from datetime import timedelta

from sqlalchemy import insert, text

BATCH = 20_000
LOT = 30  # metres between lots, both ways
STREETS = ["Harbour Road", "Mill Lane", "Station Street", "Orchard Way", "Quarry Close",
           "Beacon Hill", "Foundry Row", "Canal Walk"]
SEARCH = "mill lane"  # matches one lot in eight at every size: the result, not the table
HISTORY_DAYS = 90
SAMPLE = 50
PROPERTY_COLUMNS = ("id", "owner_id", "location", "tier_id", "x", "y", "width", "height",
                    "status", "description", "created_at")
EQUIPMENT_COLUMNS = ("id", "property_id", "type_id", "description", "dispatched")  # property ids handed to the queries, spread over the whole id range


def site_side(properties: int) -> int:
    return max(1, math.ceil(math.sqrt(properties)))


def status_of(i: int) -> str:
    roll = i % 100  # 90% ACTIVE (the first lots of any site among them)
    return ("ACTIVE" if roll < 90 else "PENDING" if roll < 95 else "INACTIVE" if roll < 97
            else "REMOVED")


def _batches(total: int, label: str):
    """Batch bounds, with a progress line on stderr every tenth (a terminal or a log)."""
    started, shown = time.monotonic(), 0
    for first in range(0, total, BATCH):
        size = min(BATCH, total - first)
        yield first, size
        done = first + size
        if done * 10 // total > shown or done == total:
            shown = done * 10 // total
            rate = done / max(time.monotonic() - started, 1e-9)
            print(f"  {label:<11} {done:>10,}/{total:,} {100 * done // total:3d}% "
                  f"({rate:,.0f} rows/s)", file=sys.stderr, flush=True)


def _timestamp(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S.%f}"


def _bulk(session, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows the fastest way the driver has: executemany on SQLite, COPY on PostgreSQL."""
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        if connection.dialect.name == "postgresql":
            buffer = io.StringIO()
            csv.writer(buffer).writerows(rows)
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)",
                               buffer)
        else:
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
    finally:
        cursor.close()


def load(database_url: str, properties: int, visits: int, alerts: int, seed: int = 5) -> dict:
    from propsec import create_app
    from propsec.database import init_db
    from propsec.extensions import db
    from propsec.models import CAMERA, Property, User
    from propsec.models._common import utcnow
    from propsec.security import issue_token

    rng = random.Random(seed)
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        init_db(app)
        if db.engine.dialect.name == "sqlite":
            # The loader's own connection only: a big page cache and no fsync while loading.
            db.session.execute(text("PRAGMA cache_size=-1000000"))
            db.session.execute(text("PRAGMA synchronous=OFF"))
        if db.session.query(Property.id).first() is not None:
            raise SystemExit("bench.dataset needs an empty database")
        owners = [f"owner{k}" for k in range(max(1, properties // 100))]
        users = [{"id": "bench-staff", "full_name": "Bench Staff", "role": "staff"},
                 {"id": "bench-admin", "full_name": "Bench Admin", "role": "admin"}]
        users += [{"id": o, "full_name": f"Owner {o[5:]}", "role": "owner"} for o in owners]
        db.session.execute(insert(User), users)
        db.session.commit()
        tokens = {"staff": issue_token("bench-staff"), "admin": issue_token("bench-admin")}

        side = site_side(properties)
        now = utcnow()
        created = _timestamp(now)
        for first, size in _batches(properties, "properties"):
            rows = [(i + 1, owners[i % len(owners)], f"{i % 97 + 1} {STREETS[i % len(STREETS)]}",
                     i % 3 + 1, (i % side) * LOT, (i // side) * LOT, 20 + i % 5, 18 + i % 7,
                     status_of(i), f"Bench property {i + 1}", created)
                    for i in range(first, first + size)]
            _bulk(db.session, "properties", PROPERTY_COLUMNS, rows)
            _bulk(db.session, "equipment", EQUIPMENT_COLUMNS,
                  [(i + 1, i + 1, CAMERA, "Gate camera", False) for i in range(first, first + size)])
            db.session.commit()
        span = HISTORY_DAYS * 86400
        for first, size in _batches(visits, "visits"):
            rows = []
            for _ in range(size):
                pid = rng.randrange(properties) + 1
                rows.append((pid, pid, f"visitor{rng.randrange(500)}",
                             _timestamp(now - timedelta(seconds=rng.randrange(span)))))
            _bulk(db.session, "visits", ("property_id", "camera_id", "user_id", "timestamp"), rows)
            db.session.commit()
        for first, size in _batches(alerts, "alerts"):
            rows = [(rng.randrange(properties) + 1, "bench-staff", "motion at night",
                     _timestamp(now - timedelta(seconds=rng.randrange(span))))
                    for _ in range(size)]
            _bulk(db.session, "alerts", ("property_id", "user_id", "reason", "timestamp"), rows)
            db.session.commit()
        if db.engine.dialect.name == "postgresql":
            for table in ("properties", "equipment", "visits", "alerts"):
                db.session.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))
            db.session.commit()
            # What autovacuum would soon do on a live database.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        active = [i + 1 for i in range(properties) if status_of(i) == "ACTIVE"]
        step = max(1, len(active) // SAMPLE)
        sample = active[::step][:SAMPLE]
        db.session.remove()
        db.engine.dispose()
    rows_count = math.ceil(properties / side)
    return {"tokens": tokens, "property_ids": sample, "search": SEARCH,
            "site": {"width": side * LOT, "height": rows_count * LOT},
            "sizes": {"properties": properties, "visits": visits, "alerts": alerts}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--properties", type=int, required=True)
    parser.add_argument("--visits", type=int, required=True)
    parser.add_argument("--alerts", type=int, required=True)
    args = parser.parse_args(argv)
    result = load(args.database_url, args.properties, args.visits, args.alerts)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
