"""The login throttle: at most PROPSEC_LOGIN_ATTEMPTS failed logins per client address and
user id in a sliding five-minute window.

With a message queue configured (several processes), the count lives in Redis, so N
processes do not allow N times the guesses: one sorted set of failure times per key, trimmed
and given an expiry on every write, so nothing is kept past the window. Without Redis (one
process) it lives in memory, in a table with a fixed maximum size that forgets the stalest
keys first. Should Redis be unreachable, the process falls back to its own table until it is
back (logged once): logins keep working and stay limited per process."""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict, deque

import redis
from flask import current_app

log = logging.getLogger("propsec.web")

WINDOW_SECONDS = 300
MAX_KEYS = 50_000


class MemoryCounts:
    def __init__(self, max_keys: int = MAX_KEYS):
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque | None:
        attempts = self._failures.get(key)
        if attempts is None:
            return None
        while attempts and attempts[0] <= now - WINDOW_SECONDS:
            attempts.popleft()
        if not attempts:
            del self._failures[key]
            return None
        return attempts

    def count(self, key: str) -> int:
        with self._lock:
            attempts = self._recent(key, time.time())
            return len(attempts) if attempts else 0

    def add(self, key: str) -> None:
        now = time.time()
        with self._lock:
            attempts = self._recent(key, now) or deque()
            attempts.append(now)
            self._failures[key] = attempts
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)  # the stalest key goes first

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)


class RedisCounts:
    def __init__(self, url: str, prefix: str):
        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def count(self, key: str) -> int:
        now = time.time()
        pipe = self.client.pipeline()
        pipe.zremrangebyscore(self._key(key), 0, now - WINDOW_SECONDS)
        pipe.zcard(self._key(key))
        return int(pipe.execute()[1])

    def add(self, key: str) -> None:
        now = time.time()
        pipe = self.client.pipeline()
        pipe.zadd(self._key(key), {f"{now:.6f}": now})
        pipe.zremrangebyscore(self._key(key), 0, now - WINDOW_SECONDS)
        pipe.expire(self._key(key), WINDOW_SECONDS)
        pipe.execute()

    def clear(self, key: str) -> None:
        self.client.delete(self._key(key))


class LoginThrottle:
    def __init__(self) -> None:
        self.memory = MemoryCounts()
        self._shared: RedisCounts | None = None
        self._shared_url: str | None = None
        self._warned = False

    def _store(self):
        url = current_app.config.get("PROPSEC_MESSAGE_QUEUE")
        if not url:
            return self.memory
        if self._shared is None or self._shared_url != url:
            channel = current_app.config.get("PROPSEC_MESSAGE_QUEUE_CHANNEL") or "flask-socketio"
            self._shared, self._shared_url = RedisCounts(url, f"propsec-login:{channel}"), url
        return self._shared

    def _do(self, what: str, key: str):
        store = self._store()
        try:
            result = getattr(store, what)(key)
            self._warned = False
            return result
        except redis.RedisError:
            if not self._warned:
                log.warning("login throttle: Redis unreachable, counting in this process for now")
                self._warned = True
            return getattr(self.memory, what)(key)

    @staticmethod
    def key(address: str | None, user_id: str) -> str:
        return hashlib.sha256(f"{address or '?'}\x00{user_id}".encode()).hexdigest()

    def blocked(self, key: str) -> bool:
        return self._do("count", key) >= current_app.config["PROPSEC_LOGIN_ATTEMPTS"]

    def failed(self, key: str) -> None:
        self._do("add", key)

    def succeeded(self, key: str) -> None:
        self._do("clear", key)


throttle = LoginThrottle()
