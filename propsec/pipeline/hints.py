"""Wake-up hints between processes: "new events were committed here, look at the log".

A hint carries no event. It travels on the message queue's channel (Redis) as a
python-socketio `callback` message that every process's listener hands to
`queue.HintingRedisManager`, which wakes that process's tailer. A lost hint costs latency
only: every tailer also polls the log. Hints are sent by a background worker with a Redis
client of its own that gives up after a second, so a slow or dead Redis never holds up a
request or the tailer."""
from __future__ import annotations

import logging

from ..protocol import wirejson

log = logging.getLogger("propsec.pipeline")

TIMEOUT_SECONDS = 1.0


class HintSender:
    def __init__(self, url: str | None, channel: str, host_id_of):
        self._url = url
        self._channel = channel
        self._host_id_of = host_id_of  # the manager's host id, read when sending
        self._client = None
        self._owed = False
        self._failing = False

    @property
    def enabled(self) -> bool:
        return bool(self._url and self._url.startswith(("redis://", "rediss://")))

    def owe(self) -> None:
        self._owed = True

    def step(self) -> None:
        if not self._owed:
            return None
        self._owed = False
        try:
            self._publish()
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

    def _publish(self) -> None:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self._url, socket_timeout=TIMEOUT_SECONDS,
                                                socket_connect_timeout=TIMEOUT_SECONDS)
        message = {"method": "callback", "host_id": self._host_id_of(), "propsec_hint": 1}
        self._client.publish(self._channel, wirejson.dumps(message))
