"""Background work: one wakeable loop per job, in every server process.

Every job that runs beside the requests (the event tailer, the wake-up hints to other
processes, and later escalation, webhook and mail delivery, the audit seal) has the same
shape: durable rows in the database say what is to be done; any process may do it; doing it
twice must be harmless; a process that dies leaves the rows for another. The code here is
the part they share: a loop that sleeps until it is woken (by a commit in this process, a
hint from another, or the poll interval running out), runs its job's `step()` in an
application context, and survives every failure of a step with a one-line warning and a
short pause. A step reports how soon it wants to run again (0 for "more is waiting": it
runs again after one pass of the event loop, so what is ready, requests first, runs
between two steps).

What a `Worker` guarantees: after `wake()`, `step()` starts again at least once (a wake-up
during a running step is not lost), no sooner than `gap` seconds after the previous step
started; after `defer(s)`, the same at the next `wake()` or `s` seconds later, whichever
comes first; without wake-ups it runs at least every `poll` seconds; at most one step of a
worker runs at a time."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from ..extensions import socketio
from ..ops import logs

log = logging.getLogger("propsec.background")

FAILURE_PAUSE = 1.0


class Worker:
    """Runs `step()` whenever woken, or every `poll` seconds, in an app context."""

    def __init__(self, name: str, step: Callable[[], float | None], poll: float,
                 gap: float = 0.0):
        self.name = name
        self._step = step
        self.poll = poll
        # At least this long between the start of one step and the next: under load, one
        # step then takes in what several wake-ups would each have done alone.
        self.gap = gap
        self._app = None
        self._event = None
        self._started = False
        self._start_lock = threading.Lock()
        self.failures = 0
        self._woken = False  # a step is owed now
        self._due: float | None = None  # a step is owed by then (`defer`)
        self._waiting_until = 0.0  # when the current wait ends by itself

    @property
    def running(self) -> bool:
        return self._started

    def start(self, app) -> None:
        """Start the loop once per process (later calls only update the app)."""
        self._app = app
        with self._start_lock:
            if self._started:
                return
            self._started = True
            self._event = socketio.server.eio.create_event()
            socketio.start_background_task(self._run)

    def wake(self) -> None:
        self._woken = True
        self._signal()

    def defer(self, seconds: float) -> None:
        """A step is owed, but not at once: at the next `wake()` or after `seconds`."""
        due = time.monotonic() + seconds
        if self._due is None or due < self._due:
            self._due = due
            if due < self._waiting_until:
                self._signal()  # (the loop then waits again, until the new time)

    def wake_if_deferred(self) -> None:
        """Run the step a `defer` owes now rather than later."""
        if self._due is not None:
            self.wake()

    def _signal(self) -> None:
        event = self._event
        # (most wake-ups under load find it already set: a read is cheaper than setting it
        # again, which takes the event's lock)
        if event is not None and not event.is_set():
            event.set()

    def _sleep(self, delay: float) -> None:
        """Wait `delay` seconds, less when woken or when a deferred step falls due."""
        if delay <= 0:
            socketio.sleep(0)  # (back to back: a step on SQLite blocks while it runs)
            return
        until = time.monotonic() + delay
        while not self._woken:
            self._waiting_until = until  # (before reading `_due`: `defer` reads it after)
            due = self._due
            end = until if due is None else min(until, due)
            wait = end - time.monotonic()
            if wait <= 0:
                break
            self._event.wait(wait)
            self._event.clear()  # (the state is in `_woken` and `_due`)
        self._waiting_until = 0.0

    def _run(self) -> None:
        delay = 0.0
        started = 0.0
        while True:
            self._sleep(delay)
            pause = started + self.gap - time.monotonic()
            if pause > 0:
                socketio.sleep(pause)
            self._woken, self._due = False, None
            started = time.monotonic()
            try:
                with self._app.app_context():
                    wanted = self._step()
                delay = self.poll if wanted is None else min(wanted, self.poll)
                self.failures = 0
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one failure
                self.failures += 1
                if self.failures == 1 or self.failures % 60 == 0:
                    log.warning("%s: %s (retrying every %.0f s)", self.name,
                                logs.failure_kind(exc), FAILURE_PAUSE)
                delay = FAILURE_PAUSE
