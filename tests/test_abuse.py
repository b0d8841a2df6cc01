"""Abuse (issue 6): what a hostile or careless client may try, and what propsec does.

In-process tests use the Flask and Socket.IO test clients; the transport-level ones
(message size, cross-origin websockets, raw malformed packets, logs) run against a real
`python app.py` process, because only there do the transport and the log exist."""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import time
from pathlib import Path

import pytest
import requests
import socketio as socketio_client
import websocket
from sqlalchemy import func, select

from live import LiveServer
from propsec.extensions import db, socketio
from propsec.models import ApiToken, Alert, EventRecord, Property, User
from propsec.protocol import namespace
from propsec.protocol.events import NAMESPACE
from propsec.security import hash_password, issue_token, revoke_tokens
from propsec.web.throttle import MemoryCounts, throttle
from support import PASSWORD, Client

ALLOWED_ORIGIN = "https://partner.example"
# What must never appear in a log line or an envelope.
LEAKS = re.compile(r"Traceback|File \"|\[SQL:|\bSELECT\b|\bINSERT INTO\b|\bFROM users\b|"
                   r"sqlalchemy\.exc|sqlite3\.|psycopg2\.|\[parameters:", re.IGNORECASE)


def counts(app) -> dict:
    with app.app_context():
        result = {m.__name__: db.session.scalar(select(func.count()).select_from(m))
                  for m in (Property, Alert, EventRecord)}
        db.session.remove()
        return result


# --------------------------------------------------------------------------- rate limit


def test_flooding_a_connection_gets_rate_limited_and_it_stays_usable(app, connect, site):
    app.config["PROPSEC_RATE_LIMIT"] = (20, 10.0)  # read at connect time
    owner = connect("owner")
    before = counts(app)
    answers = [owner.call("get-tiers") for _ in range(40)]
    codes = [a["data"].get("code") for a in answers if a["type"] == "error"]
    assert codes and set(codes) == {"rate_limited"}, codes
    assert sum(a["type"] == "data" for a in answers) >= 20  # the burst went through
    # A write refused for flooding changes nothing.
    refused = owner.call("add-alert", propertyId=site["p1"], userId="owner")
    assert refused["data"]["code"] == "rate_limited"
    assert counts(app) == before
    assert owner.sio.is_connected(NAMESPACE)
    time.sleep(0.5)  # the bucket refills at 10 a second
    assert owner.call("add-alert", propertyId=site["p1"], userId="owner")["type"] == "success"
    assert owner.call("session")["type"] == "status"


def test_rate_limit_is_per_connection(app, connect, tokens):
    app.config["PROPSEC_RATE_LIMIT"] = (5, 1.0)
    flooder, other = connect("owner"), connect("staff")
    for _ in range(10):
        flooder.call("get-tiers")
    assert flooder.call("get-tiers")["data"]["code"] == "rate_limited"
    assert other.call("get-tiers")["type"] == "data"


# --------------------------------------------------------------------------- login


def csrf_token(client, path="/login") -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)[:500]
    return match.group(1)


def login(client, user, password, token=None):
    data = {"username": user, "password": password}
    if token is not False:
        data["csrf_token"] = token or csrf_token(client)
    return client.post("/login", data=data)


@pytest.fixture
def web(app):
    with app.app_context():
        db.session.add(User(id="pat", full_name="Pat Doe", role="owner",
                            password_hash=hash_password(PASSWORD)))
        db.session.commit()
        db.session.remove()
    throttle.memory = MemoryCounts()
    yield app.test_client()
    throttle.memory = MemoryCounts()


def test_sixth_failed_login_is_throttled_even_with_the_right_password(web, app):
    assert app.config["PROPSEC_LOGIN_ATTEMPTS"] == 5
    for _ in range(5):
        assert login(web, "pat", "wrong password").status_code == 401
    assert login(web, "pat", PASSWORD).status_code == 429
    assert web.get("/").status_code == 302  # not logged in
    # The throttle is per address and user id: another user is not locked out by it.
    with app.app_context():
        db.session.add(User(id="sam", full_name="Sam Roe", role="owner",
                            password_hash=hash_password(PASSWORD)))
        db.session.commit()
    assert login(web, "sam", PASSWORD).status_code == 302


def test_unknown_users_are_throttled_too(web):
    for _ in range(5):
        assert login(web, "nobody-here", "guess").status_code == 401
    assert login(web, "nobody-here", "guess").status_code == 429


def test_login_without_or_with_a_wrong_csrf_token_is_refused(web):
    assert login(web, "pat", PASSWORD, token=False).status_code == 400
    assert login(web, "pat", PASSWORD, token="forged-token").status_code == 400
    # A token from another browser's session does not work in this one.
    other = web.application.test_client()
    assert login(web, "pat", PASSWORD, token=csrf_token(other)).status_code == 400
    assert web.get("/").status_code == 302  # still logged out
    assert login(web, "pat", PASSWORD).status_code == 302


def test_logout_requires_post_and_csrf(web):
    assert login(web, "pat", PASSWORD).status_code == 302
    assert web.get("/").status_code == 200
    assert web.get("/logout").status_code == 405
    assert web.post("/logout").status_code == 400
    assert web.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert web.get("/").status_code == 200  # a forged logout did nothing
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"',
                      web.get("/").get_data(as_text=True))
    assert token, "the dashboard carries a logout form with a CSRF token"
    assert web.post("/logout", data={"csrf_token": token.group(1)}).status_code == 302
    assert web.get("/").status_code == 302


def session_cookie(client) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def test_login_issues_a_fresh_session(web, app):
    """Session fixation: whatever session the browser had before login is not carried over."""
    serializer = app.session_interface.get_signing_serializer(app)
    token = csrf_token(web)
    before = session_cookie(web)
    # An attacker-prepared session (think: planted through a sibling subdomain).
    planted = serializer.dumps({**serializer.loads(before), "planted": "by attacker"})
    web.set_cookie("session", planted)
    assert login(web, "pat", PASSWORD, token=token).status_code == 302
    after = session_cookie(web)
    assert after and after not in (before, planted)
    state = serializer.loads(after)
    assert "planted" not in state and state.get("_user_id") == "pat"
    assert state.get("csrf_token") != serializer.loads(before).get("csrf_token")
    # The pre-login cookie does not open the dashboard.
    stranger = app.test_client()
    stranger.set_cookie("session", planted)
    assert stranger.get("/").status_code == 302


# --------------------------------------------------------------------------- tokens


def test_tokens_are_stored_only_as_hashes(app, tmp_path):
    with app.app_context():
        token = issue_token("owner")
        rows = [row for table in db.metadata.sorted_tables
                for row in db.session.execute(select(table)).all()]
        stored = db.session.scalars(select(ApiToken.token_hash)).all()
        db.session.remove()
        db.engine.dispose()  # checkpoint the WAL so the file below is complete
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert not any(token in repr(row) for row in rows)
    secret = token.removeprefix("ps_").encode()
    for path in Path(tmp_path).glob("test.sqlite*"):
        assert secret not in path.read_bytes(), path


def test_revoked_tokens_are_refused_at_connect(app, tokens):
    with app.app_context():
        assert revoke_tokens("owner") == 1
    refused = socketio.test_client(app, namespace=NAMESPACE, auth={"token": tokens["owner"]})
    assert not refused.is_connected(NAMESPACE)
    fresh = Client(app, tokens["staff"])  # other users' tokens are untouched
    assert fresh.sio.is_connected(NAMESPACE)


def test_revocation_cuts_live_connections_within_the_recheck_interval(app, tokens, connect,
                                                                      site, monkeypatch):
    monkeypatch.setattr(namespace, "RECHECK_SECONDS", 0.5)
    busy, idle = connect("owner"), connect("owner")
    idle.ok("subscribe", {"id": "events.all"})
    staff = connect("staff")
    with app.app_context():
        revoke_tokens("owner")
    time.sleep(0.5 + namespace.SWEEP_SECONDS + 0.5)
    # A connection that sends something is refused (if the sweep has not cut it yet) ...
    assert_cut(busy)
    # ... and one that only listens is cut too: it hears nothing more.
    staff.ok("add-alert", propertyId=site["p1"], userId="staff")
    assert not idle.sio.is_connected(NAMESPACE)
    heard = [p["name"] for p in idle.sio.queue if p["namespace"] == NAMESPACE]
    assert "events.all" not in heard, heard


def test_deleted_users_are_cut_too(app, tokens, connect, monkeypatch):
    monkeypatch.setattr(namespace, "RECHECK_SECONDS", 0.2)
    owner = connect("neighbour")
    with app.app_context():
        db.session.execute(ApiToken.__table__.delete().where(ApiToken.user_id == "neighbour"))
        db.session.commit()
    time.sleep(0.2 + namespace.SWEEP_SECONDS + 0.5)
    assert_cut(owner)


def assert_cut(client) -> None:
    if client.sio.is_connected(NAMESPACE):
        answer = client.call("get-tiers")
        assert answer["type"] == "error" and answer["data"]["code"] == "unauthenticated", answer
    assert not client.sio.is_connected(NAMESPACE)


# --------------------------------------------------------------------------- headers


def test_every_page_carries_the_security_headers(web, app):
    pages = ["/login", "/", "/healthz", "/no-such-page", "/static/js/main.js"]
    responses = [web.get(p) for p in pages] + [web.post("/login", data={})]
    login(web, "pat", PASSWORD)
    responses += [web.get("/"), web.post("/logout")]
    for response in responses:
        csp = response.headers.get("Content-Security-Policy", "")
        directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
        script_src = directives.get("script-src", directives.get("default-src"))
        assert script_src, (response.request.path, csp)
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, csp
        assert directives.get("frame-ancestors") == ["'none'"], csp
        assert directives.get("object-src") == ["'none'"], csp
        assert response.headers.get("X-Content-Type-Options") == "nosniff"
        assert response.headers.get("X-Frame-Options") == "DENY"


def test_pages_have_no_inline_script(web):
    """The CSP forbids inline script; the pages must not need any."""
    login_page = web.get("/login").get_data(as_text=True)
    login(web, "pat", PASSWORD)
    dashboard = web.get("/").get_data(as_text=True)
    for html in (login_page, dashboard):
        for tag, body in re.findall(r"(<script\b[^>]*>)(.*?)</script>", html, re.IGNORECASE | re.S):
            assert re.search(r"\bsrc=", tag) and not body.strip(), tag + body[:100]
        assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE), "inline event handler"
        assert "javascript:" not in html.lower()


def test_session_cookie_flags(web):
    login(web, "pat", PASSWORD)
    assert web.application.config["SESSION_COOKIE_HTTPONLY"] is True
    assert web.application.config["SESSION_COOKIE_SAMESITE"] == "Lax"


# --------------------------------------------------------------------------- real server


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """One real server for this module's transport tests; its log is checked at the end."""
    tmp = tmp_path_factory.mktemp("abuse-live")
    server = LiveServer(tmp, PROPSEC_CORS_ORIGINS=ALLOWED_ORIGIN)
    server.init_db()
    server.tokens = {"admin": server.create_user("boss", "admin", password="admin password 1"),
                     "owner": server.create_user("olga", "owner", password="owner password 1")}
    server.db_path = tmp / "live.sqlite"
    with server:
        yield server


def ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"


def raw_socket(server, origin=None, token=None):
    """A raw websocket speaking Engine.IO 4 / Socket.IO 5, connected to /propsec."""
    ws = websocket.create_connection(ws_url(server), timeout=5, origin=origin,
                                     suppress_origin=origin is None)
    assert ws.recv().startswith("0{")
    if token is not None:
        ws.send("40/propsec," + json.dumps({"token": token}))
        assert ws.recv().startswith("40/propsec,{\"sid\"")
    return ws


def raw_call(ws, ident: int, event: str, data) -> dict:
    ws.send(f"42/propsec,{ident}" + json.dumps([event, data]))
    while True:
        frame = ws.recv()
        if frame == "2":  # Engine.IO ping
            ws.send("3")
            continue
        prefix = f"43/propsec,{ident}["
        if frame.startswith(prefix):
            return json.loads(frame[len(prefix) - 1:])[0]


def sio_client(server, role="admin"):
    client = socketio_client.Client(reconnection=False)
    client.connect(server.url, namespaces=[NAMESPACE], auth={"token": server.tokens[role]},
                   transports=["websocket"], wait_timeout=10)
    return client


def test_60_kib_string_is_a_validation_error(live):
    ws = raw_socket(live, token=live.tokens["admin"])
    answer = raw_call(ws, 1, "queries.add-alert",
                      {"propertyId": 1, "userId": "boss", "reason": "r" * 60 * 1024})
    assert answer["type"] == "error" and answer["data"]["code"] == "validation_error", answer
    assert "reason" in answer["data"]["fields"] or "propertyId" in answer["data"]["fields"]
    answer = raw_call(ws, 2, "queries.get-users", {"search": "s" * 60 * 1024})
    assert answer["data"]["code"] == "validation_error" and "search" in answer["data"]["fields"]
    assert raw_call(ws, 3, "session", {})["type"] == "status"
    ws.close()


def test_message_over_64_kib_is_refused_by_the_transport(live):
    bystander = raw_socket(live, token=live.tokens["owner"])
    ws = raw_socket(live, token=live.tokens["admin"])
    before = live_counts(live)
    oversized = '42/propsec,1["queries.add-property",' + json.dumps(
        {"location": "big", "tier": 1, "x": 0, "y": 0, "clientId": "boss",
         "description": "d" * 70 * 1024}) + "]"
    # The server closes the socket, while the message is still being sent or right after.
    with pytest.raises((websocket.WebSocketException, OSError)):
        ws.send(oversized)
        for _ in range(5):
            frame = ws.recv()
            assert not frame.startswith("43"), f"an oversized message was answered: {frame[:200]}"
    assert live_counts(live) == before
    # The server is unaffected: the other connection still answers, new ones come in.
    assert raw_call(bystander, 1, "session", {})["type"] == "status"
    assert requests.get(live.url + "/healthz", timeout=5).status_code == 200
    again = raw_socket(live, token=live.tokens["admin"])
    assert raw_call(again, 1, "queries.get-tiers", {})["type"] == "data"
    again.close()
    bystander.close()


def test_oversized_long_polling_post_is_refused(live):
    handshake = requests.get(live.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
    sid = json.loads(handshake.text[1:])["sid"]
    url = live.url + f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    assert requests.post(url, data="40/propsec,{}", timeout=5).status_code == 200
    try:
        answer = requests.post(url, data="4" + "x" * 70 * 1024, timeout=3)
        assert answer.status_code >= 400, answer.text[:200]
    except requests.RequestException:
        pass  # Engine.IO may also just close the session without answering
    assert requests.get(url, timeout=5).status_code == 400  # that session is gone
    assert requests.get(live.url + "/healthz", timeout=5).status_code == 200


MALFORMED = ['42/propsec,1[]', '42/propsec,2{}', '42/propsec,3"x"', '42/propsec,4[1]',
             '42/propsec,5[null,{}]', '42/propsec,6["queries.get-tiers"', '4', '4x', '9',
             '42/propsec,7[' + '[' * 5000 + ']' * 5000 + ']', '42/nope,8["session"]',
             '43/propsec,9[1]', '45-/propsec,10["session",{"_placeholder":true,"num":0}]',
             '42/propsec,11["session",{"since":' + '9' * 150 + '}]',
             '42/propsec,12["*",{}]', '42/propsec,13["connect",{"token":"x"}]',
             '42/propsec,14["disconnect"]']


def test_malformed_packets_leave_the_connection_and_server_working(live):
    ws = raw_socket(live, token=live.tokens["owner"])
    for ident, junk in enumerate(MALFORMED, start=100):
        ws.send(junk)
        answer = raw_call(ws, ident, "session", {})
        assert answer["type"] == "status", (junk[:60], answer)
    ws.close()
    assert requests.get(live.url + "/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("origin, allowed", [
    ("https://evil.example", False), (ALLOWED_ORIGIN, True), ("null", False),
    ("https://partner.example.evil.example", False), ("http://127.0.0.1:1", False),
    (None, True),  # programs and devices send no Origin
])
def test_cross_origin_websockets_are_refused_unless_configured(live, origin, allowed):
    if allowed:
        ws = raw_socket(live, origin=origin, token=live.tokens["owner"])
        assert raw_call(ws, 1, "session", {})["type"] == "status"
        ws.close()
        return
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        raw_socket(live, origin=origin)
    assert refused.value.status_code == 400
    polling = requests.get(live.url + "/socket.io/?EIO=4&transport=polling",
                           headers={"Origin": origin}, timeout=5)
    assert polling.status_code == 400


def test_same_origin_websocket_is_accepted(live):
    ws = raw_socket(live, origin=live.url, token=live.tokens["owner"])
    assert raw_call(ws, 1, "session", {})["type"] == "status"
    ws.close()


def test_default_rate_limit_on_a_real_server(live):
    """With the default 200/100, a client firing 600 requests at once gets rate_limited
    answers (and only those, besides successes), keeps its connection, and recovers."""
    async def flood():
        client = socketio_client.AsyncClient(reconnection=False)
        await client.connect(live.url, namespaces=[NAMESPACE], auth={"token": live.tokens["owner"]},
                             transports=["websocket"], wait_timeout=10)
        answers = await asyncio.gather(*(client.call("queries.get-tiers", {}, namespace=NAMESPACE,
                                                     timeout=60) for _ in range(600)))
        connected = client.connected
        await asyncio.sleep(2.5)  # 100 a second refill the 200 burst
        after = [await client.call("session", {}, namespace=NAMESPACE, timeout=10)
                 for _ in range(50)]
        await client.disconnect()
        return answers, connected, after

    answers, connected, after = asyncio.run(flood())
    kinds = {a["type"] if a["type"] != "error" else a["data"]["code"] for a in answers}
    assert kinds == {"data", "rate_limited"}, kinds
    assert sum(a["type"] == "data" for a in answers) >= 200
    assert connected
    assert all(a["type"] == "status" for a in after)


def test_huge_numbers_do_not_hurt_the_server(live):
    """Engine.IO refuses JSON numbers of more than 100 digits before propsec sees them (no
    answer); the connection and the server go on."""
    ws = raw_socket(live, token=live.tokens["owner"])
    ws.send('42/propsec,1["queries.get-events",{"since":' + "9" * 400 + "}]")
    assert raw_call(ws, 2, "queries.get-events", {"since": 10**30})["data"]["code"] == \
        "validation_error"
    ws.close()


def live_counts(server) -> dict:
    with sqlite3.connect(server.db_path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("properties", "alerts", "event_log")}


def test_database_failure_gives_a_clean_error_and_a_clean_log(live):
    """A table disappears under the running server: the request is refused with an error
    envelope that names no SQL, nothing half-done is kept, other queries go on, and the log
    says so in one line (no traceback, no SQL, no parameters)."""
    client = sio_client(live)
    created = client.call("queries.add-property", {"location": "9 Dock Road", "tier": 1, "x": 0,
                                                   "y": 0, "description": "", "clientId": "boss"},
                          namespace=NAMESPACE, timeout=10)
    pid = created["data"]["id"]
    with sqlite3.connect(live.db_path) as conn:
        conn.execute("ALTER TABLE alerts RENAME TO alerts_away")
    try:
        before = live_counts_without_alerts(live)
        for event, data in (("queries.get-alerts", {"propertyId": pid}),
                            ("queries.add-alert", {"propertyId": pid, "userId": "boss"}),
                            ("queries.add-auth-entry", {"propertyId": pid, "userId": "intruder"})):
            answer = client.call(event, data, namespace=NAMESPACE, timeout=10)
            assert answer["type"] == "error", answer
            assert answer["data"]["code"] == "internal_error", answer
            assert not LEAKS.search(json.dumps(answer)), answer
        assert live_counts_without_alerts(live) == before  # the auth entry was rolled back
        assert client.call("queries.get-tiers", {}, namespace=NAMESPACE, timeout=10)["type"] == "data"
    finally:
        with sqlite3.connect(live.db_path) as conn:
            conn.execute("ALTER TABLE alerts_away RENAME TO alerts")
        client.disconnect()
    assert client_works(live)


def live_counts_without_alerts(server) -> dict:
    with sqlite3.connect(server.db_path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("properties", "auth_entries", "event_log")}


def client_works(server) -> bool:
    client = sio_client(server)
    try:
        return client.call("session", {}, namespace=NAMESPACE, timeout=10)["type"] == "status"
    finally:
        client.disconnect()


def test_login_and_connect_during_a_database_failure(live):
    session = requests.Session()
    page = session.get(live.url + "/login", timeout=5)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    with sqlite3.connect(live.db_path) as conn:
        conn.execute("ALTER TABLE users RENAME TO users_away")
    try:
        answer = session.post(live.url + "/login", timeout=10, allow_redirects=False,
                              data={"username": "boss", "password": "admin password 1",
                                    "csrf_token": token})
        assert answer.status_code == 500
        assert not LEAKS.search(answer.text), answer.text
        assert "Content-Security-Policy" in answer.headers
        refused = socketio_client.Client(reconnection=False)
        with pytest.raises(socketio_client.exceptions.ConnectionError):
            refused.connect(live.url, namespaces=[NAMESPACE], transports=["websocket"],
                            auth={"token": live.tokens["owner"]}, wait_timeout=5)
    finally:
        with sqlite3.connect(live.db_path) as conn:
            conn.execute("ALTER TABLE users_away RENAME TO users")
    assert client_works(live)


def test_the_log_holds_no_secrets_traces_or_sql(live):
    """Runs last in this module: everything above (bad logins, refused tokens, malformed
    packets, database failures) has been logged by now."""
    wrong = "ps_" + "A" * 43  # looks like a token, is not one
    refused = socketio_client.Client(reconnection=False)
    with pytest.raises(socketio_client.exceptions.ConnectionError):
        refused.connect(live.url, namespaces=[NAMESPACE], transports=["websocket"],
                        auth={"token": wrong}, wait_timeout=5)
    session = requests.Session()
    page = session.get(live.url + "/login", timeout=5)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    session.post(live.url + "/login", data={"username": "olga", "password": "not her password",
                                            "csrf_token": token}, timeout=5)
    assert client_works(live)
    live.stop()  # flushes and closes the log
    log = live.log_path.read_text()
    assert "database unavailable" in log  # the failures above were logged ...
    # ... naming the kind of failure (the driver's code), for whoever reads the log
    assert re.search(r"database unavailable while answering queries\.[a-z-]+: "
                     r"OperationalError SQLITE_ERROR", log), "the failure's code is logged"
    assert not LEAKS.search(log), LEAKS.search(log)  # ... in one line each
    secrets = [*live.tokens.values(), wrong, "admin password 1", "owner password 1",
               "not her password", "test-secret-key"]
    secrets += [hashlib.sha256(t.encode()).hexdigest() for t in live.tokens.values()]
    for secret in secrets:
        assert secret not in log, "a secret reached the log"
    live.start()  # leave the fixture as it found it
