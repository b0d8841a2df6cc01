"""The background loop every job shares (propsec/background): a step runs at once when
woken, and a deferred step waits for the next wake-up or its deadline, whichever comes
first. The event tailer defers after a PostgreSQL group's commit and is woken when the
next group sends its COMMIT; a deferral that nothing follows must still run on time, or
events would wait for the poll interval."""
from __future__ import annotations

import threading
import time

from propsec.background import Worker

POLL = 60.0  # long enough that no step in these tests comes from the poll


class Steps:
    """A worker whose steps are counted; `wait_for(n)` waits until n have started."""

    def __init__(self, app):
        self.count = 0
        self._changed = threading.Condition()
        self.worker = Worker("test steps", self._step, POLL)
        self.worker.start(app)
        assert self.wait_for(1), "the first step runs as the worker starts"

    def _step(self):
        with self._changed:
            self.count += 1
            self._changed.notify_all()
        return None

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.count >= n, timeout)


def test_a_wake_up_runs_a_step_at_once(app):
    steps = Steps(app)
    steps.worker.wake()
    assert steps.wait_for(2, timeout=2.0)


def test_a_deferred_step_runs_at_its_deadline_when_nothing_wakes_the_worker(app):
    steps = Steps(app)
    asked = time.monotonic()
    steps.worker.defer(0.5)
    assert not steps.wait_for(2, timeout=0.3), "ran before its deadline"
    assert steps.wait_for(2, timeout=5.0), "a deferred step must not wait for the poll"
    assert time.monotonic() - asked >= 0.5


def test_a_deferred_step_runs_as_soon_as_the_worker_is_woken(app):
    steps = Steps(app)
    steps.worker.defer(30.0)
    assert not steps.wait_for(2, timeout=0.2)
    steps.worker.wake_if_deferred()
    assert steps.wait_for(2, timeout=2.0)


def test_an_earlier_deadline_wins_and_nothing_deferred_wakes_nothing(app):
    steps = Steps(app)
    steps.worker.wake_if_deferred()  # nothing owed: no step
    assert not steps.wait_for(2, timeout=0.3)
    steps.worker.defer(30.0)
    steps.worker.defer(0.2)  # the sooner of the two
    assert steps.wait_for(2, timeout=5.0)
    # that step took in what was owed: nothing is left to run early
    steps.worker.wake_if_deferred()
    assert not steps.wait_for(3, timeout=0.3)
