"""Folding SQLite's write-ahead log back into the database file, off the request path.

By default SQLite does this inside whichever commit pushes the log past 1,000 pages: every
couple of hundred writes, one request paid for copying the log into the database file and
syncing it (a seventh of a write's cost on average, docs/performance.md). A server process
on SQLite instead turns that off for its connections (`ON` below, read by the engine's
connect hook in database.py) and runs a passive checkpoint once a second from this worker.
A passive checkpoint never waits for readers or writers; what it cannot copy now it copies
next time. Commands (seed-demo, prune-events) keep SQLite's own checkpointing."""
from __future__ import annotations

from ..extensions import db
from ..security import off_loop
from . import Worker

ON = {"background": False}
INTERVAL_SECONDS = 1.0


def _checkpoint() -> None:
    """Copying the pages takes milliseconds under a write load; the driver lets go of the
    interpreter meanwhile, so it runs on a native thread and the requests go on (on the
    event loop it held every request up for its whole length: the ack p99 of a busy
    process was the checkpoint's)."""
    pooled = db.engine.raw_connection()
    try:
        off_loop(_passive, pooled.dbapi_connection)
    finally:
        pooled.close()


def _passive(connection) -> None:
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


checkpointer = Worker("SQLite checkpoint", _checkpoint, INTERVAL_SECONDS)


def start(app) -> None:
    """Take checkpoints over from the commits of this process (SQLite only)."""
    if db.engine.dialect.name != "sqlite" or checkpointer.running:
        return
    ON["background"] = True
    db.engine.dispose()  # connections opened from now on leave checkpoints to the worker
    checkpointer.start(app)
