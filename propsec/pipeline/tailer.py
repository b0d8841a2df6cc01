"""The per-process tailer: the one place that pushes events to this process's clients.

It keeps `cursor`, the last id it delivered, reads the final rows after it (log.py), pushes
each to its rooms on this process only (never through the message queue: every process
tails the shared log itself), and moves the cursor. Reading and pushing a batch, and a
`subscribe` joining a room and replaying up to the cursor, hold one process-local lock, so
a subscriber gets the replay (since, cursor] and then the live rows after the cursor:
every event once, in id order. Nothing here is shared between processes or requests."""
from __future__ import annotations

import logging
import threading
import time
from datetime import timezone

from ..extensions import db, socketio
from ..ops import metrics
from ..sql import Held, autocommit
from ..protocol.events import ALL, NAMESPACE, room, rooms, wire_payload
from . import log as event_log

logger = logging.getLogger("propsec.pipeline")

BATCH = 500
# A row held back by a transaction still running: look again soon, then less and less often.
FIRST_RETRY = 0.002
# How long `subscribe` waits for this process to reach a `since` delivered by another one.
CATCH_UP_SECONDS = 3.0


class Tailer:
    def __init__(self, poll: float, hold_connection: bool = True):
        self.cursor: int | None = None
        self.poll = poll
        self._lock = threading.RLock()
        self._retry = FIRST_RETRY
        # The background pump keeps a connection; inline delivery (tests) takes one each time.
        self._held = Held() if hold_connection else None

    def _ensure_cursor(self, reader) -> int:
        if self.cursor is None:
            # A new process starts at the present: older events are history (replay).
            self.cursor = event_log.final_max(reader)
        return self.cursor

    def start(self) -> None:
        with self._lock, autocommit() as reader:
            self._ensure_cursor(reader)

    def step(self) -> float | None:
        """One wake-up of the background worker; returns how soon to look again."""
        blocked = self.pump()
        if not blocked:
            self._retry = FIRST_RETRY
            return None
        wait, self._retry = self._retry, min(self._retry * 2, self.poll)
        return wait

    def pump(self) -> bool:
        """Deliver every final row after the cursor; True when a committed row is still
        held back behind a running transaction (PostgreSQL)."""
        with self._lock, (self._held.cursor() if self._held else autocommit()) as reader:
            after = self._ensure_cursor(reader)
            while True:
                rows, blocked = event_log.read_final(reader, after, BATCH)
                for row in rows:
                    self._push(row)
                    after = self.cursor = row.id  # row by row: a failure re-sends nothing
                if blocked or len(rows) < BATCH:
                    return blocked

    @staticmethod
    def _push(row) -> None:
        try:
            metrics.child(metrics.events, row.name).inc()
            metrics.delivery_lag.observe(max(0.0, time.time() - row.created_at.replace(
                tzinfo=timezone.utc).timestamp()))
            server = socketio.server
            occupied = server.manager.rooms.get(NAMESPACE, {})
            payload = None
            for name in (row.name, ALL):
                # An emit encodes its packet before it looks for recipients: skip rooms
                # nobody is in (most events have no `events.<name>` subscriber, or none on
                # this process).
                to = [r for r in rooms(name, row.owner_id) if occupied.get(r)]
                if to:
                    payload = payload or wire_payload(row)
                    if name == ALL:
                        payload = {**payload, "event": row.name}
                    server.emit(name, payload, to=to, namespace=NAMESPACE, ignore_queue=True)
        except Exception as exc:  # noqa: BLE001 - one row must not stop the pipeline
            logger.error("event %s could not be pushed (%s); skipped", row.id,
                         type(exc).__name__)

    def catch_up(self, target: int, kick) -> bool:
        """Wait (briefly) until the cursor reaches `target`, an id some client already got
        from another process; `kick` makes the tailer look now. False if it did not."""
        with autocommit() as reader:
            if target > event_log.newest_id(reader):
                return True  # no such event (yet): nothing to wait for
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while (self.cursor or 0) < target and time.monotonic() < deadline:
            kick()
            socketio.sleep(0.005)
        return (self.cursor or 0) >= target

    def subscribe(self, connection, user, event: str, since: int | None) -> tuple[int, int]:
        """Join the room and replay (since, cursor]; returns (replayed count, newest eventId
        of this name the user may see). The bulk of a replay is sent before joining, outside
        the lock (the pushes go on meanwhile); joining and replaying what came since then
        is one step against the pushes, so every event arrives once, in order."""
        if self.cursor is None:
            self.start()
        replayed, since = 0, since
        if since is not None:
            upto = self.cursor
            if since < upto:
                replayed += self._replay(connection.sid, user, event, since, upto)
                since = upto
        db.session.connection()  # the request's connection, before queueing for the lock
        with self._lock:
            connection.join(room(event, user))
            try:
                upto = self.cursor
                if since is not None and since < upto:
                    replayed += self._replay(connection.sid, user, event, since, upto)
                last = event_log.last_visible(user, event, ALL, upto)
            except BaseException:
                connection.leave(room(event, user))
                raise
        return replayed, last

    @staticmethod
    def _replay(sid: str, user, event: str, since: int, upto: int) -> int:
        count = 0
        while True:
            batch = event_log.history(user, since, BATCH, event, ALL, upto=upto)
            for row in batch:
                name = ALL if event == ALL else row.name
                socketio.server.emit(name, wire_payload(row, with_name=event == ALL), to=sid,
                                     namespace=NAMESPACE, ignore_queue=True)
            count += len(batch)
            if len(batch) < BATCH:
                return count
            since = batch[-1].id
