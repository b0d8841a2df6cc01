"""Outside services for the multi-process tests: PostgreSQL, Redis, nginx.

Each `require_*` helper probes its service once per session. When the service is not there
the calling test is skipped with the reason, unless PROPSEC_REQUIRE_SERVICES=1 (CI), which
turns the skip into a failure. Where the services live:

| variable | default |
| --- | --- |
| PROPSEC_TEST_POSTGRES_URL | PROPSEC_TEST_DATABASE_URL if that is PostgreSQL, else postgresql://postgres@127.0.0.1:5432/test; only a way in: the tests create and drop databases of their own through it |
| PROPSEC_TEST_REDIS_URL | redis://127.0.0.1:6379/0 |
| PROPSEC_TEST_NGINX | /usr/sbin/nginx |

Also here: scratch PostgreSQL databases, clusters of server processes started side by side,
and plain python-socketio clients."""
from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import socketio

from propsec.client import InOrderSocketIOClient

from live import LiveServer
from receivers import Waiting

NS = "/propsec"
REQUIRE_SERVICES = os.environ.get("PROPSEC_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")
_SUITE_URL = os.environ.get("PROPSEC_TEST_DATABASE_URL") or ""
POSTGRES_URL = (os.environ.get("PROPSEC_TEST_POSTGRES_URL")
                or (_SUITE_URL if _SUITE_URL.startswith("postgresql") else "")
                or "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PROPSEC_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
NGINX = os.environ.get("PROPSEC_TEST_NGINX") or "/usr/sbin/nginx"


def unavailable(service: str, why: str):
    """Skip the test (or fail it when PROPSEC_REQUIRE_SERVICES=1) naming what is missing."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{service} is required (PROPSEC_REQUIRE_SERVICES=1) but unavailable: {why}",
                    pytrace=False)
    pytest.skip(f"{service} unavailable: {why} (PROPSEC_REQUIRE_SERVICES=1 makes this a failure)")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(":" + parts.password + "@", ":***@"))
    return urlunsplit(parts)


@functools.cache
def _postgres_problem() -> str | None:
    try:
        import psycopg2
    except ImportError as exc:
        return f"psycopg2 is not installed ({exc})"
    try:
        conn = psycopg2.connect(POSTGRES_URL, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - any failure means: not usable here
        return f"cannot connect to {_redact(POSTGRES_URL)}: {str(exc).strip().splitlines()[0]}"
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
            if not cur.fetchone()[0]:
                return f"the role in {_redact(POSTGRES_URL)} may not create databases"
    finally:
        conn.close()
    return None


@functools.cache
def _redis_problem() -> str | None:
    try:
        import redis
        redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        return f"cannot reach {_redact(REDIS_URL)}: {exc}"
    return None


def postgres_reachable() -> bool:
    return _postgres_problem() is None


def require_postgres() -> None:
    problem = _postgres_problem()
    if problem:
        unavailable("PostgreSQL", problem)


def require_redis() -> None:
    problem = _redis_problem()
    if problem:
        unavailable("Redis", problem)


def require_nginx() -> str:
    path = NGINX if os.path.isabs(NGINX) else shutil.which(NGINX)
    if not path or not os.access(path, os.X_OK):
        unavailable("nginx", f"{NGINX} not found (Debian: apt-get install -y nginx)")
    return path


# --- scratch PostgreSQL databases -------------------------------------------------------------

def _maintenance():
    import psycopg2
    conn = psycopg2.connect(POSTGRES_URL, connect_timeout=5)
    conn.autocommit = True
    return conn


@contextmanager
def postgres_database(purpose: str):
    """A new, empty database for one module's servers; dropped (connections and all) after.

    Names carry the pid and a random part so that concurrent test runs never share one."""
    require_postgres()
    name = f"propsec_{purpose}_{os.getpid()}_{secrets.token_hex(3)}"
    conn = _maintenance()
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path="/" + name))
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def sql(url: str, statement: str, **params) -> list:
    """Run one statement on `url` (SQLite or PostgreSQL) in autocommit; its rows, if any."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def seed_users(server: LiveServer, users: dict[str, str]) -> dict[str, str]:
    """Schema plus users {id: role} on the server's database, from this process (a `flask`
    call costs seconds); sets and returns `server.tokens` ({id: API token})."""
    server.init_db()
    server.tokens = {uid: server.create_user(uid, role) for uid, role in users.items()}
    return server.tokens


# --- server processes -----------------------------------------------------------------------

def start_all(*servers: LiveServer) -> None:
    """Start server processes side by side (each start costs seconds of imports). A server
    with `expect_healthy = False` is only waited for until /healthz answers at all."""
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda s: s.start(90, getattr(s, "expect_healthy", True)), servers))


def stop_all(*servers: LiveServer) -> None:
    for server in servers:
        server.stop()


@contextmanager
def cluster(tmp: Path, purpose: str, users: dict[str, str], count: int = 2, *extra: LiveServer,
            **env: str):
    """`count` server processes on one fresh PostgreSQL database sharing one Redis channel
    (unique per call, so concurrent test runs on one Redis never hear each other). Each
    server gets `.tokens` ({user: token}) and `.database_url`. `extra` servers (built by the
    caller, e.g. with a broken queue URL) are started alongside; `env`: more settings."""
    require_postgres()
    require_redis()
    with postgres_database(purpose) as url:
        channel = f"propsec-test-{purpose}-{os.getpid()}-{secrets.token_hex(3)}"
        servers = [LiveServer(tmp, database_url=url, PROPSEC_MESSAGE_QUEUE=REDIS_URL,
                              PROPSEC_MESSAGE_QUEUE_CHANNEL=channel, **env)
                   for _ in range(count)]
        tokens = seed_users(servers[0], users)
        for server in servers:
            server.tokens, server.database_url = tokens, url
        try:
            start_all(*servers, *extra)
            yield servers
        finally:
            stop_all(*servers, *extra)


# --- clients --------------------------------------------------------------------------------------

def connect(url: str, token: str, transports=("websocket",), **options) -> socketio.Client:
    # The stock client runs every received message on a thread of its own, so two events may
    # reach a recorder swapped; the SDK's transport keeps arrival order.
    client = InOrderSocketIOClient(reconnection=False, **options)
    client.connect(url, namespaces=[NS], transports=list(transports), auth={"token": token},
                   wait_timeout=20)
    return client


def connect_many(url: str, token: str, count: int, transports=("websocket",)) -> list:
    with ThreadPoolExecutor(min(count, 10)) as pool:
        return list(pool.map(lambda _: connect(url, token, transports), range(count)))


def close_all(clients) -> None:
    for client in clients:
        try:
            client.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass


def call(client: socketio.Client, name: str, data: dict | None = None, timeout: float = 30) -> dict:
    if not name.startswith(("queries.", "session", "subscribe", "unsubscribe")):
        name = "queries." + name
    return client.call(name, data or {}, namespace=NS, timeout=timeout)


def ok(client: socketio.Client, name: str, data: dict | None = None, **fields) -> dict:
    envelope = call(client, name, dict(data or {}, **fields))
    assert envelope["type"] != "error", envelope
    return envelope["data"]


def all_at_once(clients, name: str, data_for) -> list[dict]:
    """Every client sends its request at the same moment (a barrier releases them together);
    returns the envelopes in client order. `data_for(i)` gives client i's data."""
    barrier = threading.Barrier(len(clients))

    def one(i):
        barrier.wait(timeout=60)
        return call(clients[i], name, data_for(i), timeout=60)

    with ThreadPoolExecutor(len(clients)) as pool:
        return list(pool.map(one, range(len(clients))))


def csrf_of(html: str) -> str:
    """The CSRF token a page's form carries."""
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def form_login(url: str, user_id: str, password: str) -> tuple[requests.Session, requests.Response]:
    """Log in through the /login form as a browser would: (the session, the answer)."""
    web = requests.Session()
    token = csrf_of(web.get(url + "/login", timeout=10).text)
    answer = web.post(url + "/login", allow_redirects=False, timeout=10,
                      data={"csrf_token": token, "username": user_id, "password": password})
    return web, answer


def event_log(client: socketio.Client, event: str | None = None, since: int = 0) -> list[dict]:
    """The caller's whole visible event history after `since` (get-events, every page), read
    until two reads a moment apart agree: get-events gives final rows only, and a transaction
    still open anywhere in the cluster (a request, a background step sealing the audit trail)
    holds the newest back for a moment."""
    previous, deadline = None, time.monotonic() + 5
    while True:
        events = _history(client, event, since)
        if (previous is not None and len(events) == len(previous)) or time.monotonic() > deadline:
            return events
        previous = events
        time.sleep(0.15)


def _history(client: socketio.Client, event: str | None, since: int) -> list[dict]:
    events: list[dict] = []
    while True:
        page = ok(client, "get-events", since=since, limit=1000,
                  **({"event": event} if event else {}))["events"]
        events += page
        if len(page) < 1000:
            return events
        since = page[-1]["eventId"]


def active_property(admin: socketio.Client, owner: str = "olive",
                    location: str = "1 Test Lane") -> int:
    """A new ACTIVE property of `owner`, registered and approved by `admin`."""
    pid = ok(admin, "add-property", location=location, tier=1, x=0, y=0, description="",
             clientId=owner)["id"]
    ok(admin, "change-property-status", propertyId=pid, status="ACTIVE")
    return pid


def slow_alert_trigger(url: str, reason: str, seconds: float, timing: str = "BEFORE") -> None:
    """Make PostgreSQL sleep `seconds` inside the INSERT of an alert with `reason` (BEFORE
    the row is written, or AFTER: then the transaction already holds its id)."""
    sql(url, f"""CREATE OR REPLACE FUNCTION propsec_test_slow_alert() RETURNS trigger
                LANGUAGE plpgsql AS $$ BEGIN
                  IF NEW.reason = '{reason}' THEN PERFORM pg_sleep({seconds}); END IF;
                  RETURN NEW; END $$""")
    sql(url, "DROP TRIGGER IF EXISTS propsec_test_slow ON alerts")
    sql(url, f"CREATE TRIGGER propsec_test_slow {timing} INSERT ON alerts "
             "FOR EACH ROW EXECUTE FUNCTION propsec_test_slow_alert()")


@contextmanager
def client_factory():
    """`open_(server, user, *events)`: a connected client of `user` on `server`, subscribed
    to `events`, with a `.recorder` for them; all closed at the end."""
    opened = []

    def open_(server, user, *events):
        client = connect(server.url, server.tokens[user])
        opened.append(client)
        client.recorder = Recorder(client, *events)
        for event in events:
            assert call(client, "subscribe", {"id": event})["type"] == "status"
        return client

    try:
        yield open_
    finally:
        close_all(opened)


def until(predicate, timeout: float = 10.0) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` runs out (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def waiting_backends(url: str, condition: str) -> int:
    """Server connections to this database currently in `condition` (pg_stat_activity)."""
    return sql(url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    f"AND pid <> pg_backend_pid() AND {condition}")[0][0]


class Recorder(Waiting):
    """Collects the payloads of events a client receives, thread-safely."""

    def __init__(self, client: socketio.Client, *events: str):
        self.items: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        for event in events:
            client.on(event, functools.partial(self._record, event), namespace=NS)

    def _record(self, event, payload):
        with self.lock:
            self.items.append((event, payload))

    def payloads(self, event: str | None = None) -> list[dict]:
        with self.lock:
            return [p for e, p in self.items if event in (None, e)]

