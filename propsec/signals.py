"""One-shot signals between green threads, in the server's own async mode.

A request that joins a commit group waits until the group's leader has committed (or failed)
and wakes it (protocol/group_commit.py). Under eventlet a monkey-patched `threading.Event` is
a condition over patched locks: building, waiting on and setting one cost ~40 µs per
request on our machines, a tenth of the CPU a grouped write takes; eventlet's own Event
costs less than half. Under gevent and threading `threading.Event` is already the right
thing (gevent's patched one is its own)."""
from __future__ import annotations

import threading

from .extensions import socketio

_KINDS: dict[str, type] = {}


def _eventlet_kind() -> type:
    from eventlet.event import Event

    class Signal(Event):
        """`set()` and `wait()` as threading.Event has them, for green threads of one hub."""

        def set(self) -> None:
            if not self.ready():
                self.send()

    return Signal


def signal():
    """A new unset signal with `set()` and `wait()`, of the kind the running mode wants."""
    mode = socketio.server.eio.async_mode
    kind = _KINDS.get(mode)
    if kind is None:
        kind = _KINDS[mode] = _eventlet_kind() if mode == "eventlet" else threading.Event
    return kind()
