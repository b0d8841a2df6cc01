"""Wake-up hints between processes: "the log has events up to N, look if you are behind".

A hint carries no event, only a cursor: the id up to which the sending process's tailer has
pushed. It travels on the message queue's channel (Redis) as a python-socketio `callback`
message that every process's listener hands to `queue.HintingRedisManager`, and from there
to `HeardHints`. A lost hint costs latency only: every tailer also polls the log.

Sending. A process owes the others a hint once its tailer has pushed rows read after one of
its own commits (so the hint's cursor covers them), not at the commit itself: a receiver
that reads at once would often find the rows not final yet, or already read. Hints are sent
by a background worker with a Redis client of its own that gives up after a second, so a
slow or dead Redis never holds up a request or the tailer.

Receiving. A busy process reads the log after each of its own commits anyway, and those
reads take in what the others committed. So a hint whose cursor this process's tailer has
reached is dropped, and one beyond it wakes the tailer only if the tailer has not got there
by itself `DEFER_SECONDS` later. Measured with two processes (docs/performance.md, W31), the
earlier hints (one per commit, each followed by a read of the log) had cost between a tenth
and a third of the throughput."""
from __future__ import annotations

import logging
from typing import Callable

from ..extensions import socketio
from ..protocol import wirejson

log = logging.getLogger("propsec.pipeline")

TIMEOUT_SECONDS = 1.0
# How long a hint waits for the tailer to pass its cursor on its own before waking it.
DEFER_SECONDS = 0.005


class HintSender:
    def __init__(self, url: str | None, channel: str, host_id_of):
        self._url = url
        self._channel = channel
        self._host_id_of = host_id_of  # the manager's host id, read when sending
        self._client = None
        self._owed: int | None = None  # the cursor to announce, if a hint is owed
        self._failing = False
        # Commits of this process so far, and how many of them a hint has covered: a hint
        # is owed only for rows this process wrote (the others announce their own).
        self._commits = 0
        self._covered = 0

    @property
    def enabled(self) -> bool:
        return bool(self._url and self._url.startswith(("redis://", "rediss://")))

    def committed(self) -> None:
        # (not atomic under real threads: a lost count costs at most one hint, so latency)
        self._commits += 1

    def before_read(self) -> int:
        """Called as the tailer starts a read: the commits this read will take in."""
        return self._commits

    def after_read(self, commits: int, cursor: int, blocked: bool) -> bool:
        """After a read that started when `commits` commits had been made here: True when a
        hint with `cursor` is owed. A read held back by a running transaction may have left
        this process's own rows behind: those stay owed until a read that was not."""
        if commits <= self._covered:
            return False
        if not blocked:
            self._covered = commits
        self._owed = max(self._owed or 0, cursor)
        return True

    def step(self) -> None:
        if self._owed is None:
            return None
        owed, self._owed = self._owed, None
        try:
            self._publish(owed)
            if self._failing:
                log.info("wake-up hints reach the message queue again")
            self._failing = False
        except Exception as exc:  # noqa: BLE001 - the tailers' polling covers the gap
            if not self._failing:
                log.warning("cannot send wake-up hints (%s); other processes poll meanwhile",
                            type(exc).__name__)
            self._failing = True
            self._client = None
        return None

    def _publish(self, cursor: int) -> None:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self._url, socket_timeout=TIMEOUT_SECONDS,
                                                socket_connect_timeout=TIMEOUT_SECONDS)
        # (`propsec_hint` alone, from an older process, means "look now")
        message = {"method": "callback", "host_id": self._host_id_of(), "propsec_hint": 1,
                   "propsec_cursor": cursor}
        self._client.publish(self._channel, wirejson.dumps(message))


class HeardHints:
    """Hints from other processes, turned into reads of the log only where needed."""

    def __init__(self, cursor_of: Callable[[], int | None], wake_tailer: Callable[[], None],
                 wake_check: Callable[[], None]):
        self._cursor_of = cursor_of
        self._wake_tailer = wake_tailer
        self._wake_check = wake_check  # runs `step` (a worker of its own)
        self._wanted = 0

    def heard(self, cursor: int | None) -> None:
        """A hint (from the queue's listener): `cursor`, or None for "look now" (the
        listener reconnected, or an older process sent it)."""
        if cursor is None:
            self._wake_tailer()
        elif cursor > (self._cursor_of() or 0):
            self._wanted = max(self._wanted, cursor)
            self._wake_check()

    def step(self) -> None:
        """The deferred check: wake the tailer if it has not reached the hinted cursor."""
        socketio.sleep(DEFER_SECONDS)
        if self._wanted > (self._cursor_of() or 0):
            self._wake_tailer()
        return None
