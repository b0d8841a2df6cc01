"""`python app.py` as a real process, driven over the network like any outside client."""
from __future__ import annotations

import re

import pytest
import requests
import socketio

from live import LiveServer

NS = "/propsec"


def login(server, username, password) -> requests.Session:
    """Log in through the HTML form, CSRF token included, as a browser would."""
    http = requests.Session()
    page = http.get(server.url + "/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert token, "the login form carries a CSRF token"
    answer = http.post(server.url + "/login", data={"username": username, "password": password,
                                                   "csrf_token": token.group(1)},
                       allow_redirects=False)
    assert answer.status_code == 302, answer.text
    return http


def connect(server, transports, *, token=None, cookie=None) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    headers = {"Cookie": cookie} if cookie else None
    client.connect(server.url, namespaces=[NS], transports=transports, headers=headers,
                   auth={"token": token} if token else None, wait_timeout=10)
    return client


@pytest.fixture(scope="module", params=["eventlet", "gevent", "threading"])
def server(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    live = LiveServer(tmp, PROPSEC_ASYNC_MODE=request.param)
    live.init_db()
    live.tokens = {"staff": live.create_user("guard", "staff", password="guard-pass"),
                   "owner": live.create_user("olive", "owner", password="olive-pass")}
    with live:
        yield live


def test_healthz(server):
    answer = requests.get(server.url + "/healthz", timeout=5)
    assert answer.status_code == 200
    body = answer.json()
    workers = body.pop("workers")
    assert body == {"status": "ok", "database": "ok", "queue": "off", "connections": 0,
                    "maxConnections": 10_000, "eventLagSeconds": 0.0}
    # every background worker runs from the start (async mode by async mode)
    assert workers == {"eventTailer": True, "webhooks": True, "mail": True,
                       "notificationFanout": True, "escalation": True, "auditSeal": True}


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])
def test_token_client_queries_and_subscribes(server, transports):
    staff = connect(server, transports, token=server.tokens["staff"])
    owner = connect(server, transports, token=server.tokens["owner"])
    received = []
    staff.on("events.property-added", received.append, namespace=NS)
    try:
        assert staff.call("subscribe", {"id": "events.property-added"}, namespace=NS)["type"] == "status"
        added = owner.call("queries.add-property", {"location": "3 Orchard Way", "tier": 2, "x": 10,
                                                     "y": 20, "description": "", "clientId": "olive"},
                           namespace=NS, timeout=10)
        assert added["type"] == "success"
        seen = staff.call("queries.get-property", {"propertyId": added["data"]["id"]}, namespace=NS)
        assert seen["data"]["property"]["status"] == "PENDING"
        staff.sleep(0.5)
        assert [e["id"] for e in received] == [added["data"]["id"]]
    finally:
        staff.disconnect()
        owner.disconnect()


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])
def test_browser_session_cookie(server, transports):
    http = login(server, "olive", "olive-pass")
    assert http.get(server.url + "/", allow_redirects=False).status_code == 200
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    client = connect(server, transports, cookie=cookie)
    try:
        answer = client.call("session", {}, namespace=NS)
        assert answer["data"]["user"] == {"id": "olive", "fullName": "Olive", "role": "owner"}
    finally:
        client.disconnect()


def test_unauthenticated_connect_is_refused(server):
    for auth in (None, {"token": "ps_not-a-real-token-at-all"}):
        client = socketio.Client(reconnection=False)
        reasons = []
        client.on("connect_error", reasons.append, namespace=NS)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(server.url, namespaces=[NS], auth=auth, wait_timeout=5)
        assert any("authentication required" in str(r) for r in reasons), reasons


def test_logged_out_dashboard_redirects_to_login(server):
    answer = requests.get(server.url + "/", allow_redirects=False, timeout=5)
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_first_start_seeds_demo_and_prints_logins(tmp_path):
    live = LiveServer(tmp_path, PROPSEC_SEED_DEMO="1")
    with live:
        log = live.log_path.read_text()
    assert "Demo logins" in log and re.search(r"^\s+admin\s+\S+$", log, re.M)
    staff_password = re.search(r"^\s+staff\s+(\S+)$", log, re.M).group(1)
    with LiveServer(tmp_path, PROPSEC_SEED_DEMO="1") as again:  # same database: no re-seed
        login(again, "staff", staff_password)
        assert "Demo logins" not in again.log_path.read_text().split("propsec serving")[-1]


def test_cli_creates_users_and_issues_and_revokes_tokens(tmp_path):
    live = LiveServer(tmp_path)
    live.flask("init-db")
    assert "created staff desk" in live.flask("create-user", "desk", "--name", "Front Desk",
                                              "--role", "staff")
    token = live.flask("issue-token", "desk").strip().splitlines()[-1]
    with live:
        client = connect(live, ["websocket"], token=token)
        assert client.call("session", {}, namespace=NS)["data"]["user"]["fullName"] == "Front Desk"
        client.disconnect()
        assert "revoked 1 token" in live.flask("revoke-tokens", "desk")
        refused = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            refused.connect(live.url, namespaces=[NS], auth={"token": token}, wait_timeout=5)
    with live.local_app().app_context():
        from propsec.extensions import db
        from propsec.models import ApiToken
        stored = db.session.scalars(db.select(ApiToken.token_hash)).all()
        assert stored and token not in stored  # only digests are kept


def test_login_throttle_counts_the_client_behind_a_trusted_proxy(tmp_path):
    """With PROPSEC_TRUSTED_PROXIES=1 one address's failures do not lock out another's."""
    live = LiveServer(tmp_path, PROPSEC_TRUSTED_PROXIES="1", PROPSEC_LOGIN_ATTEMPTS="2")
    live.init_db()
    live.create_user("olive", "owner", password="olive-pass")

    def attempt(address, password):
        http = requests.Session()
        page = http.get(live.url + "/login")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
        return http.post(live.url + "/login", headers={"X-Forwarded-For": address},
                         data={"username": "olive", "password": password, "csrf_token": token},
                         allow_redirects=False).status_code

    with live:
        assert [attempt("203.0.113.9", "wrong") for _ in range(3)] == [401, 401, 429]
        assert attempt("203.0.113.9", "olive-pass") == 429
        assert attempt("198.51.100.7", "olive-pass") == 302


def test_sqlite_log_reaches_the_database_file_without_a_commit_paying_for_it(server):
    """The server leaves SQLite's checkpoints to a background worker (its commits do not
    copy the write-ahead log into the database file): within seconds of a burst of writes,
    the database file itself, read without the log, holds them."""
    import sqlite3
    import time

    owner = connect(server, ["websocket"], token=server.tokens["owner"])
    try:
        pid = owner.call("queries.add-property", {"location": "5 Wal Row", "tier": 1, "x": 0,
                                                   "y": 0, "description": "", "clientId": "olive"},
                         namespace=NS, timeout=10)["data"]["id"]
        for n in range(40):
            answer = owner.call("queries.add-alert", {"propertyId": pid, "userId": "olive",
                                                      "reason": f"burst {n}"}, namespace=NS)
            assert answer["type"] == "success", answer
    finally:
        owner.disconnect()
    path = server.env["PROPSEC_DATABASE_URL"].removeprefix("sqlite:///")
    deadline, count = time.monotonic() + 10, 0
    while time.monotonic() < deadline and count < 40:
        time.sleep(0.5)
        # immutable: the database file alone, as if the write-ahead log did not exist
        with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as db_file:
            try:
                count = db_file.execute("SELECT count(*) FROM alerts WHERE property_id = ?",
                                        (pid,)).fetchone()[0]
            except sqlite3.OperationalError:  # not even the table is in the file yet
                count = 0
    assert count == 40


def _wal_generation(path: str) -> int | None:
    """The write-ahead log header's checkpoint sequence number: SQLite adds one each time it
    starts the log over at its beginning (None while there is no log yet)."""
    try:
        with open(path + "-wal", "rb") as wal:
            header = wal.read(16)
    except FileNotFoundError:
        return None
    return int.from_bytes(header[12:16], "big") if len(header) == 16 else None


def test_sqlite_log_starts_over_while_writes_go_on(server):
    """Under writes that never pause the log is folded back and started over about once a
    second (it used to grow by every write until the load stopped: ~40 MB a second on a
    busy process), so its file stays a few seconds of writes long. None of the writes fails
    meanwhile (in the threading mode a group's transaction, begun deferred, was refused with
    "database is locked" when a background worker committed between its read and its
    first write)."""
    import threading
    import time

    path = server.env["PROPSEC_DATABASE_URL"].removeprefix("sqlite:///")
    clients = [connect(server, ["websocket"], token=server.tokens["owner"]) for _ in range(4)]
    pid = clients[0].call("queries.add-property", {"location": "6 Wal Row", "tier": 1, "x": 30,
                                                   "y": 0, "description": "", "clientId": "olive"},
                          namespace=NS, timeout=10)["data"]["id"]
    stop, answers = threading.Event(), []

    def write(client) -> None:
        while not stop.is_set():
            try:
                answer = client.call("queries.add-alert", {
                    "propertyId": pid, "userId": "olive", "reason": "steady load"},
                    namespace=NS, timeout=10)
            except Exception as exc:  # noqa: BLE001 - a lost answer fails the test below
                answers.append(type(exc).__name__)
                return
            answers.append(answer["type"] if answer["type"] == "success" else answer["data"]["code"])
            time.sleep(0.012)  # (under each connection's rate limit: 100 a second)

    writers = [threading.Thread(target=write, args=(c,)) for c in clients]
    try:
        for thread in writers:
            thread.start()
        time.sleep(0.5)
        generations = set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            generations.add(_wal_generation(path))
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=15)
        for client in clients:
            client.disconnect()
    assert answers and set(answers) == {"success"}
    generations.discard(None)
    # five seconds of steady writes: the log was started over at least twice meanwhile
    assert len(generations) >= 3, generations
