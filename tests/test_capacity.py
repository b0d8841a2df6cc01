"""Connection capacity (issue 11) on a real `python app.py` with PROPSEC_MAX_CONNECTIONS=50:
past the limit a connect is refused at once, saying the server is full; staff still get in
through the reserve; a freed place is taken again; the count stays right through connects,
disconnects, refusals and revoked tokens (`/healthz` reports it)."""
from __future__ import annotations

import time

import pytest
import requests
import socketio

from live import LiveServer

NS = "/propsec"
LIMIT = 50


def connect(server, token: str) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    reasons: list = []
    client.on("connect_error", reasons.append, namespace=NS)
    try:
        client.connect(server.url, namespaces=[NS], transports=["websocket"],
                       auth={"token": token}, wait_timeout=10)
    except socketio.exceptions.ConnectionError as exc:
        raise AssertionError(f"connect refused: {reasons}") from exc
    return client


def refused(server, token: str) -> tuple[list, float]:
    """Try to connect; the connect errors' messages and how long the refusal took."""
    client = socketio.Client(reconnection=False)
    reasons: list = []
    client.on("connect_error", reasons.append, namespace=NS)
    started = time.monotonic()
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(server.url, namespaces=[NS], transports=["websocket"],
                       auth={"token": token}, wait_timeout=10)
    return reasons, time.monotonic() - started


def connections(server) -> int:
    return requests.get(server.url + "/healthz", timeout=10).json()["connections"]


def settles_at(server, count: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if connections(server) == count:
            return True
        time.sleep(0.1)
    return connections(server) == count


@pytest.fixture
def server(tmp_path):
    live = LiveServer(tmp_path, PROPSEC_MAX_CONNECTIONS=str(LIMIT))
    live.init_db()
    live.tokens = {user: live.create_user(user, role) for user, role in
                   (("camera", "owner"), ("scanner", "owner"), ("guard", "staff"))}
    with live:
        yield live


def test_past_the_limit_a_connect_is_refused_at_once_and_a_freed_place_is_reused(server):
    devices = [connect(server, server.tokens["camera" if n % 2 else "scanner"])
               for n in range(LIMIT)]
    guard = None
    try:
        assert settles_at(server, LIMIT)
        for _ in range(10):
            reasons, seconds = refused(server, server.tokens["camera"])
            assert any("full" in str(r) for r in reasons), reasons
            assert seconds < 2.0, seconds
        assert connections(server) == LIMIT  # refused ones are not counted
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200

        guard = connect(server, server.tokens["guard"])  # staff: the reserve above the limit
        assert guard.call("session", {}, namespace=NS)["type"] == "status"
        assert settles_at(server, LIMIT + 1)
        guard.disconnect()
        assert settles_at(server, LIMIT)

        devices.pop().disconnect()
        assert settles_at(server, LIMIT - 1)
        devices.append(connect(server, server.tokens["camera"]))  # the freed place
        assert settles_at(server, LIMIT)
        assert any("full" in str(r) for r in refused(server, server.tokens["camera"])[0])

        server.flask("revoke-tokens", "scanner")  # its connections are cut at the re-check
        assert settles_at(server, LIMIT - LIMIT // 2, timeout=45)  # (every 30 s)
        devices.append(connect(server, server.tokens["camera"]))  # room again
        assert settles_at(server, LIMIT - LIMIT // 2 + 1)
    finally:
        for client in devices + ([guard] if guard else []):
            if client.connected:
                client.disconnect()


def test_a_flood_of_handshakes_past_the_gate_is_answered_503_without_a_session():
    """Far past the limit (limit + reserve + margin Engine.IO sessions), a new handshake
    gets 503 at the HTTP level; requests of existing sessions and other paths pass."""
    from propsec.protocol.capacity import FullGate, gate

    sessions = {"count": gate(LIMIT)}
    passed = []

    def app(environ, start_response):
        passed.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"ok"]

    wrapped = FullGate(app, "/socket.io", lambda: sessions["count"], lambda: LIMIT)
    statuses = []

    def call(path, query=""):
        body = wrapped({"PATH_INFO": path, "QUERY_STRING": query},
                       lambda status, headers: statuses.append(status))
        return statuses[-1], b"".join(body)

    status, body = call("/socket.io/", "EIO=4&transport=websocket")
    assert status.startswith("503") and b"full" in body
    assert call("/socket.io/", "EIO=4&transport=polling&sid=abc")[0].startswith("200")
    assert call("/socket.io/", "EIO=4&transport=polling&xsid=1")[0].startswith("503")
    assert call("/healthz")[0].startswith("200")
    sessions["count"] -= 1
    assert call("/socket.io/", "EIO=4&transport=websocket")[0].startswith("200")
    assert passed == ["/socket.io/", "/healthz", "/socket.io/"]


def test_the_file_limit_is_raised_and_a_setting_it_cannot_hold_is_lowered_with_a_warning():
    import subprocess
    import sys

    script = (
        "import logging, resource\n"
        "logging.basicConfig(level=logging.WARNING, format='%(name)s %(message)s')\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard}))\n"
        "from propsec.protocol.capacity import raise_file_limit\n"
        "print(raise_file_limit({wanted}), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n")
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= 12_000:
        roomy = subprocess.run([sys.executable, "-c", script.format(
            hard=min(hard, 1 << 20), wanted=10_000)], capture_output=True, text=True, timeout=60)
        limit, soft = map(int, roomy.stdout.split())
        assert limit == 10_000 and soft > 10_000 and "lowered" not in roomy.stderr
    tight = subprocess.run([sys.executable, "-c", script.format(hard=4096, wanted=10_000)],
                           capture_output=True, text=True, timeout=60)
    limit, soft = map(int, tight.stdout.split())
    assert soft == 4096 and 1_000 < limit < 4096
    assert "PROPSEC_MAX_CONNECTIONS is lowered" in tight.stderr


def test_websocket_compression_is_declined(server):
    """permessage-deflate held a zlib compressor and decompressor per connection (most of
    what a connection cost in memory); the server no longer agrees to it."""
    import websocket

    ws = websocket.create_connection(
        server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
        header=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
        timeout=10)
    try:
        assert ws.getstatus() == 101
        headers = {k.lower(): v for k, v in (ws.getheaders() or {}).items()}
        assert "permessage-deflate" not in headers.get("sec-websocket-extensions", "")
        assert ws.recv().startswith("0{")  # the Engine.IO handshake still works
    finally:
        ws.close()
