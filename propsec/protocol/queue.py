"""The message queue between server processes (Redis).

Events do not travel on it: every process reads them from the shared log (propsec/pipeline).
The queue carries what python-socketio sends between processes (a disconnect of a revoked
connection on another process, for one) and the pipeline's wake-up hints, which this
manager hands to the process's tailer (`on_hint`)."""
from __future__ import annotations

import logging
import time

import socketio

log = logging.getLogger("propsec.queue")
LISTEN_RETRY_SECONDS = 1.0


class HintingRedisManager(socketio.RedisManager):
    """Flask-SocketIO's Redis manager, plus wake-up hints and a steady listener retry."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_hint = None  # set by the pipeline when it starts

    def _redis_listen_with_retries(self):
        """python-socketio's listener loop with a fixed one-second retry: upstream doubles
        the wait after every failed attempt (up to 60 s). After each reconnect the tailer is
        woken, in case hints were lost meanwhile."""
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    self.pubsub.subscribe(self.channel)
                    subscribed = True
                    self._hint(None)
                yield from self.pubsub.listen()
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect and go on
                log.warning("cannot receive from the message queue (%s); retrying in %.0f s",
                            type(exc).__name__, LISTEN_RETRY_SECONDS)
                subscribed = False
                time.sleep(LISTEN_RETRY_SECONDS)

    def _hint(self, cursor: int | None) -> None:
        if self.on_hint is not None:
            self.on_hint(cursor)

    def _handle_callback(self, message):
        # Hints travel as `callback` messages: every python-socketio process accepts those
        # and ignores the ones that are not addressed to it.
        if "propsec_hint" not in message:
            return super()._handle_callback(message)
        if message.get("host_id") != self.host_id:
            cursor = message.get("propsec_cursor")
            self._hint(cursor if type(cursor) is int else None)
        return None


def queue_options(url: str | None, channel: str) -> dict:
    """Keyword arguments for `socketio.init_app`: the hinting manager for Redis, Flask-SocketIO's
    own choice for other queues (no hints: their tailers poll), and none without a queue."""
    if not url:
        return {"message_queue": None, "client_manager": None}
    if url.startswith(("redis://", "rediss://")):
        return {"message_queue": url, "client_manager": HintingRedisManager(url, channel=channel)}
    return {"message_queue": url, "channel": channel}
