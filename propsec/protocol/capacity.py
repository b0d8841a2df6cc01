"""How many connections one process takes, and how it refuses the rest at once.

- `PROPSEC_MAX_CONNECTIONS` (default 10,000) authenticated connections are let in. Past
  it, a Socket.IO connect is refused with "the server is full" (the client sees a connect
  error saying so), except that staff and admins may use a small reserve above the limit:
  a guard can still reach a process that devices have filled.
- A flood of handshakes far past that (the limit, its reserve and a margin) is answered
  `503` at the HTTP level (`FullGate`), before Engine.IO makes a session for it.
- At start (`raise_file_limit`), the process's open-file limit is raised as far as the
  hard limit allows; if even that is too low for the setting, the setting is lowered to
  what fits, and the log says so.
- Websocket compression (permessage-deflate) is not offered (`without_compression`): under
  eventlet it held a zlib compressor and decompressor per connection, about 120 KB of the
  ~160 KB a connection cost (tracemalloc, docs/performance.md), to squeeze messages of a
  few hundred bytes.
"""
from __future__ import annotations

import logging
from urllib.parse import parse_qs

log = logging.getLogger("propsec.capacity")

# File descriptors a process needs besides its connections (database pools, Redis, logs,
# the listening socket, files): kept free when the limit is derived from the hard limit.
SPARE_FILES = 512


def reserve(limit: int) -> int:
    """Connections above the limit that staff and admins may still use."""
    return max(10, limit // 100)


def admits(connected: int, limit: int, staff: bool) -> bool:
    """May one more authenticated connection come in?"""
    return connected < limit + (reserve(limit) if staff else 0)


def gate(limit: int) -> int:
    """Engine.IO sessions past which a new handshake is refused with HTTP 503."""
    return limit + reserve(limit) + max(100, limit // 10)


def raise_file_limit(limit: int) -> int:
    """Raise RLIMIT_NOFILE for `limit` connections; returns the limit that fits."""
    try:
        import resource
    except ImportError:  # not on this platform: nothing to raise
        return limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = gate(limit) + SPARE_FILES
    unlimited = hard == resource.RLIM_INFINITY
    target = wanted if unlimited else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # the system caps lower than it reports
            target = soft
    if target >= wanted:
        return limit
    fits = max(1, (target - SPARE_FILES) * 100 // 111 - 100)
    log.warning("the open-file limit (hard %d) allows about %d connections, not %d: "
                "PROPSEC_MAX_CONNECTIONS is lowered to %d", hard, fits, limit, fits)
    return fits


class FullGate:
    """WSGI middleware: a new Engine.IO handshake past `gate(limit)` sessions gets 503."""

    BODY = b'{"message": "the server is full; try again later"}'

    def __init__(self, wsgi_app, path: str, sessions, limit_of):
        self.wsgi_app = wsgi_app
        self.path = path.rstrip("/") + "/"
        self.sessions = sessions  # () -> number of Engine.IO sessions
        self.limit_of = limit_of  # () -> the connection limit in force

    def __call__(self, environ, start_response):
        if (environ.get("PATH_INFO", "").startswith(self.path)
                and "sid" not in parse_qs(environ.get("QUERY_STRING", ""))
                and self.sessions() >= gate(self.limit_of())):
            start_response("503 Service Unavailable", [
                ("Content-Type", "application/json"), ("Retry-After", "5"),
                ("Content-Length", str(len(self.BODY)))])
            return [self.BODY]
        return self.wsgi_app(environ, start_response)


def without_compression(server) -> None:
    """Make Engine.IO's websocket server (eventlet's) decline permessage-deflate."""
    drivers = server.eio._async
    base = drivers.get("websocket")
    if base is None or getattr(base, "declines_compression", False):
        return
    if not hasattr(base, "_negotiate_permessage_deflate"):
        return  # not eventlet's: nothing of ours to turn off

    class PlainWebSocket(base):
        declines_compression = True

        def _negotiate_permessage_deflate(self, extensions):
            return None

    drivers["websocket"] = PlainWebSocket
