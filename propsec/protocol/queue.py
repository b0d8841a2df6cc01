"""The message queue between server processes, with a barrier that keeps events in order.

With several processes, an event caused on process B reaches A's clients through Redis and
A's listener thread, a moment after B committed and published it. Two things must not
overtake such an event while it is still on its way:

- an event A causes itself (A pushes its own events to its clients directly), and
- a replay: `subscribe` with `since` joins the room, then sends the log from `since`; an
  event in flight would arrive live *and* in the replay, out of order.

So whoever holds the publish lock first calls `sync()`: it publishes a marker on the channel
and waits until A's own listener has handled it. Redis delivers a channel's messages in
order, and every earlier event was published before the lock was taken, so by then all of
them have been handled here."""
from __future__ import annotations

import logging
import threading
import time
import uuid

import socketio

log = logging.getLogger("propsec.queue")
SYNC_TIMEOUT = 2.0
LISTEN_RETRY_SECONDS = 1.0


class OrderedRedisManager(socketio.RedisManager):
    """Flask-SocketIO's Redis manager plus `sync()`. The marker travels as a `callback`
    message, which every python-socketio process handles and ignores unless it is
    addressed to its own host id."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._markers: dict[str, threading.Event] = {}

    def sync(self, timeout: float = SYNC_TIMEOUT) -> bool:
        """Wait until this process has handled every message published before the call."""
        if getattr(self, "thread", None) is None:
            return True  # not listening (no client has connected yet): nothing can be in flight
        marker = uuid.uuid4().hex
        self._markers[marker] = seen = threading.Event()
        try:
            receivers = self._publish({"method": "callback", "host_id": self.host_id,
                                       "propsec_marker": marker})
            if not receivers:  # Redis unreachable, or no listener subscribed: do not wait
                return False
            if seen.wait(timeout):
                return True
            log.warning("message queue listener did not catch up within %.1f s", timeout)
            return False
        finally:
            self._markers.pop(marker, None)

    def _redis_listen_with_retries(self):
        """python-socketio's listener loop with a fixed one-second retry: upstream doubles
        the wait after every failed attempt (up to 60 s), so after a Redis restart
        cross-process delivery could stay off for up to a minute."""
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    self.pubsub.subscribe(self.channel)
                    subscribed = True
                yield from self.pubsub.listen()
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect and go on
                log.warning("cannot receive from the message queue (%s); retrying in %.0f s",
                            type(exc).__name__, LISTEN_RETRY_SECONDS)
                subscribed = False
                time.sleep(LISTEN_RETRY_SECONDS)

    def _handle_callback(self, message):
        marker = message.get("propsec_marker")
        if marker is None:
            return super()._handle_callback(message)
        if message.get("host_id") == self.host_id and marker in self._markers:
            self._markers[marker].set()
        return None


def queue_options(url: str | None, channel: str) -> dict:
    """Keyword arguments for `socketio.init_app`: the ordered manager for Redis, Flask-SocketIO's
    own choice for other queues (no barrier), and none at all without a queue."""
    if not url:
        return {"message_queue": None, "client_manager": None}
    if url.startswith(("redis://", "rediss://")):
        return {"message_queue": url, "client_manager": OrderedRedisManager(url, channel=channel)}
    return {"message_queue": url, "channel": channel}


def sync_queue(server) -> None:
    """Let the queue catch up, if the Socket.IO server's manager can (see the module doc)."""
    sync = getattr(getattr(server, "manager", None), "sync", None)
    if sync is not None:
        sync()
