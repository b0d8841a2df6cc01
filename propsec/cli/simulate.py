"""`flask --app app simulate`: devices on the site, driven through the client SDK.

Over a real Socket.IO connection the simulator plays the site's devices on
every ACTIVE property: cameras scan visitors, scanners log entries (some by
people who are not allowed in, which raises an alert), crimes are reported
and drones are dispatched and recalled. It paces itself to ``--rate`` actions
a second for ``--duration`` seconds, shows a progress bar and ends with a
summary table.
"""
from __future__ import annotations

import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import click
from flask import current_app
from flask.cli import with_appcontext

from ..client import ConnectionFailed, PropsecClient, PropsecError, Unauthenticated

SIMULATOR_USER = "simulator"
MAP_REFRESH_SECONDS = 10.0

# action name -> relative weight; drone actions are chosen as one "drone" slot
WEIGHTS = {"add-visitor": 35, "add-auth-entry": 35, "add-crime": 10, "drone": 20}
ACTIONS = ("add-visitor", "add-auth-entry", "add-crime", "dispatch-drone", "recall-drone")

CRIMES = (
    "Broken window on the ground floor",
    "Bicycle stolen from the yard",
    "Graffiti on the north wall",
    "Attempted break-in at the back door",
    "Car broken into in the driveway",
    "Fence cut near the gate",
    "Package stolen from the porch",
)


@dataclass
class Stats:
    ok: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)
    alerts: int = 0  # unauthorized entries, each of which raised an alert
    skipped: Counter = field(default_factory=Counter)
    recalled_at_end: int = 0  # drones brought home after the run: not actions of the run


class Simulator:
    """Chooses and performs device actions against ACTIVE properties."""

    def __init__(self, client: PropsecClient, rng: random.Random):
        self.client = client
        self.rng = rng
        self.stats = Stats()
        self.properties: list[dict] = []
        self.people: list[str] = []
        self._map_loaded_at = 0.0
        self._equipment: dict[int, dict[str, list[int]]] = {}
        self._allowed: dict[int, list[str]] = {}
        self.dispatched: list[int] = []  # drones this run dispatched and has not recalled
        self.steps = 0  # actions taken by step()

    # -- world model

    def refresh_map(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._map_loaded_at < MAP_REFRESH_SECONDS:
            return
        found = self.client.call("get-map").get("properties") or []
        self.properties = [p for p in found if p.get("status") == "ACTIVE"]
        self._map_loaded_at = time.monotonic()
        if not self.people:
            users = self.client.call("get-users", limit=200).get("users") or []
            self.people = [u["id"] for u in users if u.get("id") != SIMULATOR_USER]

    def equipment(self, property_id: int) -> dict[str, list[int]]:
        """Equipment ids of a property grouped by type name (cached)."""
        if property_id not in self._equipment:
            items = self.client.call("get-equipment", propertyId=property_id).get("equipment") or []
            grouped: dict[str, list[int]] = {}
            for item in items:
                grouped.setdefault(item.get("name") or "", []).append(item["id"])
            self._equipment[property_id] = grouped
        return self._equipment[property_id]

    def allowed(self, property_id: int) -> list[str]:
        """People who may enter: the owner and the allowed list (cached)."""
        if property_id not in self._allowed:
            detailed = self.client.call("get-property-detailed", propertyId=property_id)["property"]
            allowed = self.client.call("get-allowed-users", propertyId=property_id).get("allowedUsers") or {}
            people = list(allowed)
            if detailed.get("owner"):
                people.append(detailed["owner"])
            self._allowed[property_id] = people
        return self._allowed[property_id]

    def pick_property(self, needs: str | None = None) -> dict | None:
        """A random ACTIVE property, optionally one with equipment of type ``needs``."""
        if not self.properties:
            return None
        candidates = self.rng.sample(self.properties, min(len(self.properties), 8))
        for prop in candidates:
            if needs is None or self.equipment(prop["id"]).get(needs):
                return prop
        return None

    def stranger(self, prefix: str) -> str:
        return f"{prefix}-{self.rng.randrange(10_000, 99_999)}"

    # -- actions

    def step(self) -> None:
        """Perform one randomly chosen action and record its outcome."""
        self.steps += 1
        kind = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        if kind == "drone":
            recall = self.dispatched and (len(self.dispatched) >= 3 or self.rng.random() < 0.5)
            kind = "recall-drone" if recall else "dispatch-drone"
        try:
            self.refresh_map()
            getattr(self, "_" + kind.replace("-", "_"))()
        except PropsecError as exc:
            self.stats.failed[kind] += 1
            self.stats.codes[exc.code] += 1

    def _done(self, kind: str) -> None:
        self.stats.ok[kind] += 1

    def _add_visitor(self) -> None:
        prop = self.pick_property(needs="Camera")
        if prop is None:
            self.stats.skipped["add-visitor"] += 1
            return
        camera = self.rng.choice(self.equipment(prop["id"])["Camera"])
        known = self.people and self.rng.random() < 0.7
        visitor = self.rng.choice(self.people) if known else self.stranger("guest")
        self.client.call("add-visitor", userId=visitor, propertyId=prop["id"], cameraId=camera)
        self._done("add-visitor")

    def _add_auth_entry(self) -> None:
        prop = self.pick_property()
        if prop is None:
            self.stats.skipped["add-auth-entry"] += 1
            return
        allowed = self.allowed(prop["id"])
        if allowed and self.rng.random() < 0.75:
            person = self.rng.choice(allowed)
        else:  # someone not on the allowed list: the server raises an alert
            person = self.stranger("badge")
        result = self.client.call("add-auth-entry", propertyId=prop["id"], userId=person)
        if result.get("authorized") is False:
            self.stats.alerts += 1
        self._done("add-auth-entry")

    def _add_crime(self) -> None:
        prop = self.pick_property()
        if prop is None:
            self.stats.skipped["add-crime"] += 1
            return
        self.client.call("add-crime", propertyId=prop["id"], description=self.rng.choice(CRIMES))
        self._done("add-crime")

    def _dispatch_drone(self) -> None:
        prop = self.pick_property(needs="Drone")
        if prop is None:
            self.stats.skipped["dispatch-drone"] += 1
            return
        free = self.client.call("get-free-drones", propertyId=prop["id"]).get("drones") or []
        if not free:
            self.stats.skipped["dispatch-drone"] += 1
            return
        drone = self.client.call("dispatch-drone", propertyId=prop["id"])["droneId"]
        self.dispatched.append(drone)
        self._done("dispatch-drone")

    def _recall_drone(self) -> None:
        drone = self.dispatched.pop(self.rng.randrange(len(self.dispatched)))
        self.client.call("recall-drone", droneId=drone)
        self._done("recall-drone")

    def recall_all(self) -> None:
        """Bring home every drone this run dispatched. These recalls are clean-up, counted
        apart from the run's actions (the table's total is the number of actions)."""
        while self.dispatched:
            drone = self.dispatched.pop()
            try:
                self.client.call("recall-drone", droneId=drone)
                self.stats.recalled_at_end += 1
            except PropsecError as exc:
                self.stats.codes[exc.code] += 1


# -- command


def _default_url() -> str:
    """PROPSEC_HOST/PROPSEC_PORT when set; else a running server of this database (it notes
    its address in the instance folder); else the configured default address."""
    from ..serve import running_server_url

    told = "PROPSEC_PORT" in os.environ or "PROPSEC_HOST" in os.environ
    running = None if told else running_server_url(current_app)
    if running:
        return running
    host = current_app.config.get("PROPSEC_HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    port = current_app.config.get("PROPSEC_PORT") or 5000
    return f"http://{host}:{port}"


def _simulator_token() -> str:
    """Issue a token for the staff user ``simulator``, creating the user if missing."""
    from ..extensions import db
    from ..models import User
    from ..security import issue_token

    user = db.session.get(User, SIMULATOR_USER)
    if user is None:
        db.session.add(User(id=SIMULATOR_USER, full_name="Device simulator", role="staff"))
        db.session.commit()
    elif user.role not in ("staff", "admin"):
        raise click.ClickException(
            f"user {SIMULATOR_USER!r} exists with role {user.role!r}; the simulator needs staff (or pass --token)")
    return issue_token(SIMULATOR_USER)


def _summary(stats: Stats, steps: int, elapsed: float, dispatched_left: int) -> str:
    rows = [("action", "ok", "failed", "skipped")]
    for action in ACTIONS:
        rows.append((action, str(stats.ok[action]), str(stats.failed[action]), str(stats.skipped[action])))
    total_ok = sum(stats.ok.values())
    total_failed = sum(stats.failed.values())
    rows.append(("total", str(total_ok), str(total_failed), str(sum(stats.skipped.values()))))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
        if n == 0 or n == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"unauthorized entries (each raised an alert): {stats.alerts}")
    if stats.codes:
        lines.append("errors by code: " + ", ".join(f"{code} {n}" for code, n in sorted(stats.codes.items())))
    else:
        lines.append("errors by code: none")
    rate = steps / elapsed if elapsed > 0 else 0.0
    lines.append(f"{steps} actions in {elapsed:.1f}s ({rate:.1f}/s)")
    if stats.recalled_at_end:
        lines.append(f"drones recalled at the end: {stats.recalled_at_end}")
    if dispatched_left:
        lines.append(f"drones still dispatched: {dispatched_left}")
    return "\n".join(lines)


@click.command("simulate")
@click.option("--url", default=None,
              help="Server to drive. Default: PROPSEC_HOST:PROPSEC_PORT when set, else the running "
                   "server of this database, else http://127.0.0.1:5000.")
@click.option("--rate", type=click.FloatRange(min=0.1, max=1000), default=5.0, show_default=True,
              help="Device actions per second.")
@click.option("--duration", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="How long to run, in seconds.")
@click.option("--token", default=None,
              help="API token to use. Default: issue one for the staff user 'simulator' (created if missing).")
@click.option("--seed", type=int, default=None, help="Random seed, for a repeatable run.")
@click.option("--transport", type=click.Choice(["auto", "websocket", "polling"]), default="auto",
              show_default=True, help="Socket.IO transport.")
@with_appcontext
def simulate(url, rate, duration, token, seed, transport):
    """Simulate cameras, scanners, crime reports and drones on ACTIVE properties."""
    url = url or _default_url()
    token = token or _simulator_token()
    transports = None if transport == "auto" else [transport]
    client = PropsecClient(url, token, transports=transports, timeout=10.0)
    try:
        client.connect()
    except Unauthenticated as exc:
        raise click.ClickException(f"the server refused the token: {exc.message}") from None
    except ConnectionFailed as exc:
        raise click.ClickException(f"cannot connect to {url}: {exc.message}") from None

    sim = Simulator(client, random.Random(seed))
    try:
        sim.refresh_map(force=True)
        if not sim.properties:
            raise click.ClickException("no ACTIVE properties on the map (try `flask --app app seed-demo`)")
        click.echo(f"Simulating devices on {len(sim.properties)} active properties at {url} "
                   f"({rate:g} actions/s for {duration:g}s)")
        total = max(1, int(round(rate * duration)))
        started = time.monotonic()
        deadline = started + duration
        try:
            with click.progressbar(length=total, label="Simulating", show_pos=True) as bar:
                for n in range(total):
                    due = started + n / rate
                    now = time.monotonic()
                    if due > now:
                        time.sleep(due - now)
                    if time.monotonic() >= deadline:
                        break
                    sim.step()
                    bar.update(1)
        except KeyboardInterrupt:
            click.echo("\ninterrupted")
        elapsed = time.monotonic() - started
        sim.recall_all()
    finally:
        client.close()
    click.echo(_summary(sim.stats, sim.steps, elapsed, len(sim.dispatched)))


simulate_command = simulate
