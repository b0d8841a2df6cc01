"""Settings read from PROPSEC_* environment variables (see the README's table)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

from .schedules import site_zone

ASYNC_MODES = ("eventlet", "gevent", "threading")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _secret_key(instance_path: Path) -> str:
    """Use PROPSEC_SECRET_KEY, or a key generated once and kept in the instance folder."""
    configured = _env("PROPSEC_SECRET_KEY")
    if configured:
        return configured
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_hex(32)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def parse_rate_limit(text: str) -> tuple[int, float]:
    """'200/100' means bursts of 200 requests, refilled at 100 per second."""
    burst, _, rate = text.partition("/")
    return int(burst), float(rate or burst)


def _networks(text: str) -> tuple:
    import ipaddress

    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError("PROPSEC_METRICS_ALLOW must be addresses or networks, comma separated") from None


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (_env(name, default) or default).strip().lower()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}")
    return value


def _positive(name: str, default: float) -> float:
    text = _env(name)
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds")
    return value


def parse_delays(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        delays = ()
    if not delays or min(delays) < 0:
        raise ValueError("PROPSEC_RETRY_SECONDS must be a comma-separated list of seconds")
    return delays


def engine_options(database_url: str) -> dict:
    """No ping at each pool checkout (it was one more round trip on every request): a
    request whose connection turns out lost (the database restarted) before it commits is
    run again once on a fresh one instead (protocol/dispatcher.py), and the pool replaces
    every connection older than the failure.

    JSON columns (event payloads, audit details) are written and read with the packets'
    orjson-first module (protocol/wirejson.py): the standard library's encoder was the
    largest part of binding a write's parameters. Stored text differs only in form (no
    spaces, UTF-8 instead of \\u escapes); the values read back are the same.

    The pool hands out the connection returned last (`pool_use_lifo`), not the one idle
    longest: on SQLite a connection throws its whole page cache away when another one has
    written since its last transaction, so a group given the connection that had waited
    longest (while the workers' connections wrote) began on a cold cache; on PostgreSQL the
    process's CPU per write fell by about a tenth (docs/performance.md, W34)."""
    from .protocol import wirejson

    options = {"json_serializer": wirejson.dumps, "json_deserializer": wirejson.loads}
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        in_memory = url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
        # (an in-memory database has a single connection, and a pool that takes no order)
        return options if in_memory else {**options, "pool_use_lifo": True}
    # 40 kept, 20 more at a peak: the pool closes a connection beyond the kept ones as soon
    # as it is returned, so a steady load above the kept number opened a new server
    # connection (a backend, and every prepared statement again) for request after request.
    # With 20 kept, 32 busy writers made ~16 connections a second and lost ~15 % of their
    # throughput (docs/performance.md, fourth round).
    return {**options, "pool_use_lifo": True, "pool_size": 40, "max_overflow": 20}


def load_settings(instance_path: Path) -> dict:
    instance_path.mkdir(parents=True, exist_ok=True)
    database_url = _env("PROPSEC_DATABASE_URL") or f"sqlite:///{instance_path / 'propsec.sqlite'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://"):]
    async_mode = _env("PROPSEC_ASYNC_MODE", "eventlet")
    if async_mode not in ASYNC_MODES:
        raise ValueError(f"PROPSEC_ASYNC_MODE must be one of {', '.join(ASYNC_MODES)}")
    origins = [o.strip() for o in (_env("PROPSEC_CORS_ORIGINS", "") or "").split(",") if o.strip()]
    return {
        "SECRET_KEY": _secret_key(instance_path),
        # Former keys, newest first, while a rotation is under way (docs/deployment.md): they
        # still open stored secrets and verify session cookies; nothing is made with them.
        "SECRET_KEY_FALLBACKS": [k.strip() for k in (_env("PROPSEC_SECRET_KEY_PREVIOUS", "")
                                                      or "").split(",") if k.strip()],
        "SQLALCHEMY_DATABASE_URI": database_url,
        "PROPSEC_MESSAGE_QUEUE": _env("PROPSEC_MESSAGE_QUEUE"),
        # Deployments sharing one Redis keep apart by channel (pub/sub ignores the db number).
        "PROPSEC_MESSAGE_QUEUE_CHANNEL": _env("PROPSEC_MESSAGE_QUEUE_CHANNEL", "flask-socketio"),
        # How often each process reads the event log when nothing wakes it (wake-ups come
        # from its own commits and, with Redis, from the other processes' hints).
        "PROPSEC_EVENT_POLL_SECONDS": _positive("PROPSEC_EVENT_POLL_SECONDS", 0.5),
        "PROPSEC_HOST": _env("PROPSEC_HOST", "127.0.0.1"),
        "PROPSEC_PORT": int(_env("PROPSEC_PORT", "5000")),
        "PROPSEC_CORS_ORIGINS": origins,
        "PROPSEC_SEED_DEMO": _env("PROPSEC_SEED_DEMO", "1") not in ("0", "false", "no"),
        "PROPSEC_ASYNC_MODE": async_mode,
        "PROPSEC_RATE_LIMIT": parse_rate_limit(_env("PROPSEC_RATE_LIMIT", "200/100")),
        "PROPSEC_LOGIN_ATTEMPTS": int(_env("PROPSEC_LOGIN_ATTEMPTS", "5")),
        # Reverse proxies in front whose X-Forwarded-* headers are believed (0: none).
        "PROPSEC_TRUSTED_PROXIES": int(_env("PROPSEC_TRUSTED_PROXIES", "0")),
        # Connections one process lets in (protocol/capacity.py).
        "PROPSEC_MAX_CONNECTIONS": int(_env("PROPSEC_MAX_CONNECTIONS", "10000")),
        # How long an open alert waits before each escalation (background/escalation.py).
        "PROPSEC_ESCALATION_SECONDS": float(_env("PROPSEC_ESCALATION_SECONDS", "120")),
        # The site's clock for allowed users' schedules (schedules.py); checked here.
        "PROPSEC_TIMEZONE": site_zone(_env("PROPSEC_TIMEZONE", "UTC") or "UTC").key,
        # Notifications (propsec/notify): outgoing mail and webhooks.
        "PROPSEC_SMTP_URL": _env("PROPSEC_SMTP_URL"),
        "PROPSEC_MAIL_FROM": _env("PROPSEC_MAIL_FROM", "propsec@localhost"),
        "PROPSEC_PUBLIC_URL": (_env("PROPSEC_PUBLIC_URL", "http://127.0.0.1:5000") or "").rstrip("/"),
        "PROPSEC_WEBHOOK_ALLOW_PRIVATE": _env("PROPSEC_WEBHOOK_ALLOW_PRIVATE", "0") in ("1", "true", "yes"),
        # Waits before each retry, in seconds (a test knob; the default is the contract's).
        "PROPSEC_RETRY_SECONDS": parse_delays(_env("PROPSEC_RETRY_SECONDS", "5,20,60,180,600,1200,1800")),
        # Who must use two-factor login: none, admin, or staff (staff and admins).
        "PROPSEC_REQUIRE_2FA": _choice("PROPSEC_REQUIRE_2FA", ("none", "admin", "staff"), "none"),
        # Who may read /metrics: these networks, or a caller with the bearer token.
        "PROPSEC_METRICS_ALLOW": _networks(_env("PROPSEC_METRICS_ALLOW", "127.0.0.1/32,::1/128")),
        "PROPSEC_METRICS_TOKEN": _env("PROPSEC_METRICS_TOKEN") or None,
        "PROPSEC_LOG_FORMAT": _choice("PROPSEC_LOG_FORMAT", ("text", "json"), "text"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
    }
