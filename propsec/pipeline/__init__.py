"""The event pipeline: from a request's transaction to every subscriber, in order.

What it guarantees (contract section 8):
- an event is a row of `event_log` written in the transaction of the change it reports;
  nothing is pushed before that transaction commits, and a rolled-back request pushes
  nothing;
- each process's tailer pushes the *final* rows (log.py) in id order to its own clients,
  so every connection receives increasing eventIds with no gaps, whichever process wrote
  them, and `subscribe` with `since` replays exactly what a client missed;
- nothing system-wide is locked per request: writers only insert their rows; the database
  orders them. A queue outage costs latency, never events: hints only wake the tailers,
  which also poll.

Flow: dispatcher → `record()` (insert, in the request's transaction) → commit →
`committed()` (wake this process's tailer; after a PostgreSQL commit group, when the next
group sends its COMMIT, 4 ms later at most) → the tailer's read → a hint to the other
processes (hints.py)."""
from __future__ import annotations

import time

from flask import Flask, current_app

from ..background import Worker, checkpoint, escalation
from .. import notify
from ..audit import seal
from ..extensions import socketio
from ..protocol.errors import InternalError
from ..protocol.events import ALL
from . import log as event_log
from .hints import HeardHints, HintSender
from .tailer import Tailer

POLL_SECONDS = 0.5
INLINE_WAIT_SECONDS = 2.0
# Under load the tailer reads the log at most every 2 ms, so one read carries the rows of
# several commits; alone, a commit is still pushed at once (a PostgreSQL group's within
# FOLLOW_SECONDS).
GAP_SECONDS = 0.002
# Under load a process sends the others a hint at most every 10 ms: a busy process reads the
# log after each of its own commits anyway, and with a hint every 2 ms sending and hearing
# them took ~8 % of two processes' writes a second (docs/performance.md, W40). A process
# that commits nothing itself hears of the others' events up to 10 ms later under load;
# the first hint after a quiet spell still goes out at once.
HINT_GAP_SECONDS = 0.010
# After a PostgreSQL group's commit the tailer waits for the next group to send its COMMIT,
# and reads and pushes while the process waits for that round trip, rather than while the
# group's writers send their next requests; this long at most (docs/performance.md, W37).
FOLLOW_SECONDS = 0.004
EXTENSION = "propsec_pipeline"


class Pipeline:
    def __init__(self, app: Flask):
        poll = app.config.get("PROPSEC_EVENT_POLL_SECONDS", POLL_SECONDS)
        # In-process tests deliver in the committing request itself (no background task).
        self.inline = bool(app.config.get("PROPSEC_DELIVERY_INLINE"))
        self.tailer = Tailer(poll, hold_connection=not self.inline)
        self.tail_worker = Worker("event tailer", self._tail, poll, GAP_SECONDS)
        self.hints = HintSender(app.config.get("PROPSEC_MESSAGE_QUEUE"),
                                app.config.get("PROPSEC_MESSAGE_QUEUE_CHANNEL") or "flask-socketio",
                                lambda: getattr(socketio.server.manager, "host_id", ""))
        self.hint_worker = Worker("wake-up hints", self.hints.step, 60.0, HINT_GAP_SECONDS)
        self.heard_worker = Worker("heard hints", lambda: self.heard.step(), 60.0)
        self.heard = HeardHints(lambda: self.tailer.cursor, self.tail_worker.wake,
                                self.heard_worker.wake)
        self._app = app

    def start(self) -> None:
        """At the first connection: fix the starting cursor, start this process's workers
        (the tailer, the hint sender and the check of heard hints, alert escalation,
        notifications, the audit seal, and on SQLite the checkpointer)."""
        if self.tailer.cursor is None:
            self.tailer.start()
        if self.inline:
            return
        checkpoint.start(self._app)
        escalation.escalator.start(self._app)
        notify.start(self._app)
        seal.worker.start(self._app)
        self.tail_worker.start(self._app)
        if self.hints.enabled:
            self.hint_worker.start(self._app)
        manager = socketio.server.manager
        if hasattr(manager, "on_hint"):
            self.heard_worker.start(self._app)
            manager.on_hint = self.heard.heard

    def _tail(self) -> float | None:
        """One step of the tailer; then, if rows this process committed went out, a hint
        owed to the others."""
        if not self.hints.enabled:
            return self.tailer.step()
        commits = self.hints.before_read()
        wait = self.tailer.step()
        if self.hints.after_read(commits, self.tailer.cursor or 0, blocked=wait is not None):
            self.hint_worker.wake()
        return wait

    def record(self, pending) -> None:
        if pending:
            event_log.append(pending)

    def committed(self, in_group: bool = False) -> None:
        """A transaction with events has committed; `in_group`: a PostgreSQL commit group's
        (whose process is likely to send another group's COMMIT shortly)."""
        if self.inline:
            self._pump_inline()  # (tests: delivered before the acknowledgement)
            return
        self.hints.committed()
        if in_group:
            self.tail_worker.defer(FOLLOW_SECONDS)
        else:
            self.tail_worker.wake()
        notify.wake()

    def commit_sent(self) -> None:
        """A PostgreSQL commit group is about to wait for its COMMIT: the tailer's deferred
        step runs meanwhile."""
        self.tail_worker.wake_if_deferred()

    def _pump_inline(self) -> None:
        """Deliver now; rows held back by a transaction still running elsewhere (PostgreSQL)
        are waited for a little, as the background tailer would."""
        deadline = time.monotonic() + INLINE_WAIT_SECONDS
        while self.tailer.pump() and time.monotonic() < deadline:
            time.sleep(0.01)

    def kick(self) -> None:
        if self.inline:
            self._pump_inline()
        else:
            self.tail_worker.wake()

    def subscribe(self, connection, user, event: str, since: int | None) -> tuple[int, int]:
        if since is not None and since > (self.tailer.cursor or 0):
            if not self.tailer.catch_up(since, self.kick):
                # Joining now would push again what the client already has: it asks again.
                raise InternalError(f"events up to {since} have not reached this server yet;"
                                    " subscribe again shortly")
        return self.tailer.subscribe(connection, user, event, since)

    @staticmethod
    def history(user, since: int, limit: int, event: str | None) -> list:
        return event_log.history(user, since, limit, event, ALL)


def init_app(app: Flask) -> Pipeline:
    pipeline = app.extensions[EXTENSION] = Pipeline(app)
    return pipeline


def pipeline() -> Pipeline:
    return current_app.extensions[EXTENSION]


__all__ = ["Pipeline", "init_app", "pipeline"]
