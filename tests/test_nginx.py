"""Debian's nginx with the repository's config (deploy/nginx/propsec.conf) in front of two
server processes that share PostgreSQL and Redis, driven over websocket and long-polling.

Clients connect from different loopback networks (127.0.N.1: ip_hash keys on the first
three octets), so both processes get clients; nginx's access log, which names the process
that answered, shows each client stuck to one. Skips without nginx, PostgreSQL or Redis
unless PROPSEC_REQUIRE_SERVICES=1."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
import requests
import socketio
from requests.adapters import HTTPAdapter

from propsec.client import InOrderSocketIOClient

from live import ROOT, free_port
from services import NS, Recorder, call, cluster, ok, require_nginx

TEMPLATE = ROOT / "deploy" / "nginx" / "propsec.conf"
USERS = {"sam": "staff", "ada": "admin"}
# One client per loopback network; ip_hash spreads these over both processes (checked).
NETWORKS = [f"127.0.{n}.1" for n in range(1, 9)]
UPSTREAM_LINE = re.compile(r"^\s*server 127\.0\.0\.1:\d+[^;]*;\n", re.M)


def render_site(template: str, port: int, upstreams: list[int], logs: Path) -> str:
    """The repository's site config with this test's ports and paths, nothing else changed."""
    first = UPSTREAM_LINE.search(template)
    assert first, "the template lists its upstream servers as `server 127.0.0.1:PORT ...;`"
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;\n"
                      for p in upstreams)
    site = template[:first.start()] + servers + UPSTREAM_LINE.sub("", template[first.start():])
    assert "listen 80;" in site
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = site.replace("/var/log/nginx/", f"{logs}/").replace("/opt/propsec/", f"{ROOT}/")
    return site


def main_config(prefix: Path, site: Path) -> str:
    """A whole nginx.conf of the test's own: prefix, pid, temp paths and logs in `prefix`."""
    temp = "\n".join(f"    {kind}_temp_path {prefix}/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the checkout
    return f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
{temp}
    include {site};
}}
"""


class Nginx:
    def __init__(self, binary: str, prefix: Path, upstreams: list[int]):
        self.binary, self.prefix = binary, prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = prefix / "propsec.conf"
        site.write_text(render_site(TEMPLATE.read_text(), self.port, upstreams, prefix))
        self.config = prefix / "nginx.conf"
        self.config.write_text(main_config(prefix, site))
        self.access_log = prefix / "propsec.access.log"
        self.command = [binary, "-p", f"{prefix}/", "-c", str(self.config), "-e",
                        str(prefix / "error.log")]
        self.process = None

    def test_config(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.command + ["-t"], capture_output=True, text=True, timeout=30)

    def start(self) -> "Nginx":
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: fast shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def upstreams_by_client(self) -> dict[str, set[str]]:
        """Client address -> the processes that answered its Socket.IO requests."""
        seen: dict[str, set[str]] = defaultdict(set)
        for line in self.access_log.read_text().splitlines():
            match = re.match(r"(\S+) .*\"\S+ /socket\.io/\S* .*upstream=(\S+)", line)
            if match:
                seen[match.group(1)].add(match.group(2))
        return seen


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    binary = require_nginx()
    tmp = tmp_path_factory.mktemp("nginx")
    with cluster(tmp, "nginx", USERS, 2) as servers:
        proxy = Nginx(binary, tmp, [s.port for s in servers])
        checked = proxy.test_config()
        assert checked.returncode == 0, checked.stderr
        proxy.start()
        try:
            yield proxy, servers
        finally:
            proxy.stop()


class SourceAdapter(HTTPAdapter):
    """Plain HTTP from a chosen local address (the long-polling transport's requests)."""

    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def connect_from(proxy: Nginx, source: str, transport: str, token: str,
                 origin: str | None = None):
    """A Socket.IO client whose connections to nginx come from `source`. The websocket
    client sends Origin http://<nginx address> unless `origin` says otherwise."""
    options, headers = {}, None
    if transport == "polling":
        session = requests.Session()
        session.mount("http://", SourceAdapter(source))
        options["http_session"] = session
        headers = {"Origin": origin} if origin else None
    else:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10,
                                        source_address=(source, 0))
        options["websocket_extra_options"] = {"socket": sock, "origin": origin}
    client = InOrderSocketIOClient(reconnection=False, **options)
    client.connect(proxy.url, namespaces=[NS], transports=[transport], auth={"token": token},
                   headers=headers, wait_timeout=20)
    client.source = source
    return client


def test_template_passes_nginx_t(stack):
    proxy, _ = stack
    assert proxy.test_config().returncode == 0


def test_http_through_nginx(stack):
    proxy, _ = stack
    health = requests.get(proxy.url + "/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["queue"] == "ok"
    login = requests.get(proxy.url + "/login", timeout=10)
    assert login.status_code == 200 and 'name="csrf_token"' in login.text
    asset = requests.get(proxy.url + "/static/js/main.js", timeout=10)
    assert asset.status_code == 200 and asset.headers["X-Content-Type-Options"] == "nosniff"
    assert asset.content == (ROOT / "static/js/main.js").read_bytes()


def test_clients_on_both_transports_through_nginx(stack):
    proxy, servers = stack
    token = servers[0].tokens["sam"]
    clients = [connect_from(proxy, source, ("websocket", "polling")[n % 2], token)
               for n, source in enumerate(NETWORKS)]
    try:
        recorders = []
        for client in clients:
            recorders.append(Recorder(client, "events.alerts"))
            assert call(client, "subscribe", {"id": "events.alerts"})["type"] == "status"
            assert ok(client, "get-tiers")["tiers"]
        assert {c.transport() for c in clients} == {"websocket", "polling"}

        # Each client raises one alert; every client sees every alert once, in order.
        pid = ok(clients[0], "add-property", location="3 Proxy Lane", tier=1, x=0, y=0,
                 description="", clientId="sam")["id"]
        raised = [ok(c, "add-alert", propertyId=pid, userId="sam", reason=c.source)["id"]
                  for c in clients]
        for recorder in recorders:
            recorder.wait(lambda r: len(r.payloads()) >= len(raised))
        time.sleep(0.5)  # any duplicate would be here by now
        for client, recorder in zip(clients, recorders):
            got = [p["alertId"] for p in recorder.payloads()]
            assert got == raised, f"{client.source} over {client.transport()}: {got}"
    finally:
        for client in clients:
            client.disconnect()

    # Stickiness: each client address reached exactly one process; both processes served.
    seen = proxy.upstreams_by_client()
    assert set(NETWORKS) <= seen.keys(), seen
    assert all(len(seen[source]) == 1 for source in NETWORKS), seen
    used = set().union(*(seen[source] for source in NETWORKS))
    assert used == {f"127.0.0.1:{s.port}" for s in servers}, seen


def test_browser_origin_through_nginx(stack):
    """The same-origin check sees the address the browser used (X-Forwarded-Host), so a page
    served through nginx may open its websocket; a foreign origin may not."""
    proxy, servers = stack
    token = servers[0].tokens["sam"]
    for transport in ("websocket", "polling"):
        same = connect_from(proxy, NETWORKS[0], transport, token, origin=proxy.url)
        try:
            assert ok(same, "session")["user"]["id"] == "sam"
        finally:
            same.disconnect()
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect_from(proxy, NETWORKS[0], transport, token, origin="http://evil.example")
