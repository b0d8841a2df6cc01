"""Folding SQLite's write-ahead log back into the database file, off the request path.

By default SQLite does this inside whichever commit pushes the log past 1,000 pages: every
couple of hundred writes, one request paid for copying the log into the database file and
syncing it (a seventh of a write's cost on average, docs/performance.md). A server process
on SQLite instead turns that off for its connections (`ON` below, read by the engine's
connect hook in database.py) and runs a passive checkpoint once a second from this worker.
A passive checkpoint never waits for readers or writers; what it cannot copy now it copies
next time. Commands (seed-demo, prune-events) keep SQLite's own checkpointing.

What it guarantees: under a steady write load the log file stays a second or two of writes
long. SQLite starts the log over at its beginning only when a transaction begins after a
checkpoint has copied every frame, and a checkpoint that runs beside the writers never
catches up with them: the log grew by every write (tens of megabytes a second, gigabytes
over a busy hour) until the load stopped. So each run ends with a short second pass taken
in the writers' turn (`group_commit.TURN`), when no request of this process is writing:
it copies the few frames written during the first pass, and the next commit rewinds the
log (docs/performance.md, W33)."""
from __future__ import annotations

from ..extensions import db
from ..protocol import group_commit
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
        off_loop(_passive, pooled.dbapi_connection)  # the bulk, beside the writers
        with group_commit.TURN:  # the rest, while this process's requests wait to write
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
