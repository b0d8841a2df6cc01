"""Browser sessions end at logout on every process, for pages and sockets (contract 18):
two `python app.py` processes on one PostgreSQL database and one Redis."""
from __future__ import annotations

import time

import pytest
import requests
import socketio
from services import NS, cluster, csrf_of, form_login

PASSWORD = "session-test-pw-1"


def logged_in(server) -> requests.Session:
    web, answer = form_login(server.url, "sam", PASSWORD)
    assert answer.status_code == 302, answer.text
    return web


def copy_of(web: requests.Session) -> requests.Session:
    thief = requests.Session()
    thief.cookies.update(web.cookies)
    return thief


def opens_dashboard(web: requests.Session, server) -> bool:
    answer = web.get(server.url + "/", timeout=10, allow_redirects=False)
    return answer.status_code == 200


def socket_with(web: requests.Session, server) -> socketio.Client | None:
    client = socketio.Client(reconnection=False)
    cookie = "; ".join(f"{k}={v}" for k, v in web.cookies.items())
    try:
        client.connect(server.url, namespaces=[NS], transports=["websocket"],
                       headers={"Cookie": cookie}, wait_timeout=10)
    except socketio.exceptions.ConnectionError:
        return None
    return client


def logout(web: requests.Session, server, everywhere: bool = False):
    token = csrf_of(web.get(server.url + "/", timeout=10).text)
    data = {"csrf_token": token, **({"everywhere": "1"} if everywhere else {})}
    assert web.post(server.url + "/logout", data=data, timeout=10,
                    allow_redirects=False).status_code == 302


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with cluster(tmp_path_factory.mktemp("sessions"), "sessions", {"sam": "staff"}, 2) as (a, b):
        a.create_user("sam", "staff", PASSWORD)
        yield a, b


def test_a_copied_cookie_is_dead_after_logout_on_both_processes(pair):
    a, b = pair
    web = logged_in(a)
    thief = copy_of(web)
    assert opens_dashboard(thief, a) and opens_dashboard(thief, b)
    live_on_b = socket_with(thief, b)
    assert live_on_b is not None and live_on_b.connected
    logout(web, a)
    for server in (a, b):
        assert not opens_dashboard(thief, server), f"the copied cookie still works on {server.url}"
        assert socket_with(thief, server) is None, "a socket connects with the ended session"
    deadline = time.monotonic() + 10
    while live_on_b.connected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not live_on_b.connected, "the live socket of the ended session was not cut"


def test_logout_everywhere_ends_every_session_of_the_user(pair):
    a, b = pair
    laptop, phone = logged_in(a), logged_in(b)
    assert opens_dashboard(laptop, a) and opens_dashboard(phone, b)
    logout(laptop, a, everywhere=True)
    assert not opens_dashboard(phone, b) and not opens_dashboard(phone, a)
    again = logged_in(b)  # logging in again works, with a new session
    assert opens_dashboard(again, a)
