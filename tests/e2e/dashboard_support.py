"""Helpers for the dashboard's end-to-end tests: the site (server, users, tokens),
python-socketio clients with API tokens acting as other users or devices, and
small page utilities."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import socketio

from live import LiveServer  # tests/live.py (tests/ is put on sys.path by tests/conftest.py)

CHROMIUM = os.environ.get("PROPSEC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
NAMESPACE = "/propsec"
PASSWORD = "e2e-password-1"
# PROPSEC_E2E_VIEWPORT=1280x720 runs the suite at another window size
_w, _h = os.environ.get("PROPSEC_E2E_VIEWPORT", "1440x900").lower().split("x")
VIEWPORT = {"width": int(_w), "height": int(_h)}

# users of the e2e site: id -> (role, full name)
USERS = {
    "staff1": ("staff", "Sam Staff"),
    "admin1": ("admin", "Ada Admin"),
    "owner1": ("owner", "Olive Owner"),
    "owner2": ("owner", "Nina Newcomer"),
}


def _missing_browser_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (python) is not installed"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    return None


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class ApiClient:
    """A python-socketio client authenticated with an API token (another user or device)."""

    def __init__(self, url: str, token: str):
        self.sio = socketio.Client(reconnection=False)
        self.sio.connect(url, namespaces=[NAMESPACE], auth={"token": token}, transports=["websocket"],
                         wait_timeout=10)

    def call(self, name: str, **data):
        if not name.startswith(("queries.", "subscribe")):
            name = "queries." + name
        return self.sio.call(name, data, namespace=NAMESPACE, timeout=15)

    def ok(self, name: str, **data) -> dict:
        envelope = self.call(name, **data)
        assert envelope["type"] != "error", envelope
        return envelope["data"]

    def close(self):
        if self.sio.connected:
            self.sio.disconnect()


class Site:
    """A running server plus its users and tokens."""

    def __init__(self, server: LiveServer):
        self.server = server
        self.url = server.url
        self.tokens: dict[str, str] = {}
        self._clients: list[ApiClient] = []

    def client(self, user_id: str) -> ApiClient:
        c = ApiClient(self.url, self.tokens[user_id])
        self._clients.append(c)
        return c

    def close_clients(self):
        for c in self._clients:
            c.close()
        self._clients.clear()


def start_site(tmp_path: Path) -> Site:
    """A fresh database with the e2e users (created in-process: each `flask` CLI call
    costs seconds), then `python app.py` serving it."""
    from propsec import create_app
    from propsec.database import init_db
    from propsec.extensions import db
    from propsec.models import User
    from propsec.security import hash_password, issue_token

    server = LiveServer(tmp_path)
    site = Site(server)
    app = create_app({"SQLALCHEMY_DATABASE_URI": server.env["PROPSEC_DATABASE_URL"],
                      "PROPSEC_ASYNC_MODE": "threading"})
    with app.app_context():
        init_db(app)
        for user_id, (role, name) in USERS.items():
            db.session.add(User(id=user_id, full_name=name, role=role, password_hash=hash_password(PASSWORD)))
        db.session.commit()
        for user_id in USERS:
            site.tokens[user_id] = issue_token(user_id)
        db.engine.dispose()
    server.start()
    return site


def seed_properties(site: Site) -> dict[int, str]:
    """Properties of owner1 in every visible status; returns {id: status}."""
    admin = site.client("admin1")
    plan = ["ACTIVE"] * 8 + ["PENDING"] * 3 + ["INACTIVE"] * 2 + ["REJECTED", "REMOVAL_REQUESTED"]
    seeded: dict[int, str] = {}
    for n, status in enumerate(plan):
        created = admin.ok("add-property", location=f"{n + 1} Test Lane", tier=1 + n % 3,
                           x=(n % 5) * 40, y=(n // 5) * 40, width=24 + n % 4, height=20,
                           description=f"seeded {status.lower()}", clientId="owner1")
        pid = int(created["id"])
        if status in ("ACTIVE", "INACTIVE", "REJECTED"):
            admin.ok("change-property-status", propertyId=pid, status=status)
        elif status == "REMOVAL_REQUESTED":
            admin.ok("change-property-status", propertyId=pid, status="ACTIVE")
            admin.ok("request-remove-property", propertyId=pid)
        seeded[pid] = status
    # one removed property must not be drawn at all
    gone = int(admin.ok("add-property", location="Gone Lane", tier=1, x=300, y=300,
                        description="removed", clientId="owner1")["id"])
    admin.ok("remove-property", propertyId=gone)
    admin.close()
    return seeded


def login(page, url: str, user_id: str):
    page.goto(url + "/login")
    page.fill("input[name=username]", user_id)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#connection-status[data-state=connected]", timeout=15000)
    page.wait_for_selector("#map[data-property-count]", state="attached", timeout=15000)


def shot(page, name: str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def map_statuses(page) -> dict[int, str]:
    pairs = page.eval_on_selector_all(
        "#map [data-property-id]", "els => els.map(e => [e.dataset.propertyId, e.dataset.status])")
    return {int(pid): status for pid, status in pairs}
