"""Demo data: a site laid out in blocks along streets, with people, devices and some history.

What is seeded is also written to the event log, as live changes are (a property added, an
alert raised, a crime reported), so the feed, `get-events` and the map tell one story on a
fresh database; a running server's tailer pushes them like any other committed event."""
from __future__ import annotations

import random
import secrets
from datetime import timedelta

import click
from sqlalchemy import func, insert, select

from ..extensions import db
from ..models import (ACTIVE, CAMERA, DRONE, PENDING, REMOVAL_REQUESTED, SEVERITIES, Alert,
                      AllowedUser, AuthEntry, Crime, Equipment, EventRecord, Property, User, Visit)
from ..models._common import utcnow
from ..security import hash_password

DEMO_USERS = [("admin", "Ada Admin", "admin"), ("staff", "Sam Staff", "staff"),
              ("owner1", "Olivia Owner", "owner"), ("owner2", "Oscar Owner", "owner"),
              ("owner3", "Priya Patel", "owner"), ("owner4", "Lars Lindqvist", "owner")]
STREETS = ["Harbour Road", "Mill Lane", "Station Street", "Orchard Way", "Quarry Close",
           "Beacon Hill", "Foundry Row", "Canal Walk"]
BATCH = 1000
HISTORY_DAYS = 15  # seeded properties were added this long ago; their activity came after
# Seeded alerts: mostly open, a spread of severities (weights per severity, low → critical).
ALERT_SEVERITY_WEIGHTS = (2, 4, 3, 1)


def _users() -> dict[str, str]:
    """Create the demo users that are missing; return their passwords (new users only)."""
    logins = {}
    for user_id, name, role in DEMO_USERS:
        if db.session.get(User, user_id) is None:
            password = secrets.token_urlsafe(9)
            db.session.add(User(id=user_id, full_name=name, role=role,
                                password_hash=hash_password(password)))
            logins[user_id] = password
    for n in range(1, 21):
        if db.session.get(User, f"visitor{n}") is None:
            db.session.add(User(id=f"visitor{n}", full_name=f"Visitor {n}", role="owner"))
    db.session.commit()
    return logins


def _layout(index: int, start: int) -> tuple[int, int, int, int]:
    """Blocks of 10 x 10 lots, 30 m apart, with a 40 m street between blocks."""
    n = start + index
    block, lot = divmod(n, 100)
    bx, by = block % 10, block // 10
    col, row = lot % 10, lot // 10
    return bx * 340 + col * 30, by * 340 + row * 30, 22 + n % 5, 18 + n % 7


def seed_demo(count: int, seed: int = 7) -> dict[str, str]:
    rng = random.Random(seed)
    logins = _users()
    owners = [u for u, _, role in DEMO_USERS if role == "owner"]
    start = db.session.scalar(select(func.count(Property.id)))
    now = utcnow()
    activity: list[dict] = []  # events of seeded alerts and crimes, logged last, oldest first
    with click.progressbar(length=count, label="Seeding properties", show_pos=True) as bar:
        for first in range(0, count, BATCH):
            size = min(BATCH, count - first)
            activity += _seed_batch(rng, owners, start + first, size, now)
            db.session.commit()
            bar.update(size)
    activity.sort(key=lambda e: e["created_at"])
    for first in range(0, len(activity), BATCH):
        db.session.execute(insert(EventRecord), activity[first:first + BATCH])
        db.session.commit()
    return logins


def _event(name: str, prop: dict, when, **payload) -> dict:
    return {"name": name, "property_id": prop["id"], "owner_id": prop["owner_id"],
            "payload": payload, "created_at": when}


def _seed_batch(rng, owners, start, size, now) -> list[dict]:
    """Seed one batch of properties (and log their addition); return the events of the
    batch's alerts and crimes for the caller to log in time order."""
    rows = []
    added = now - timedelta(days=HISTORY_DAYS)
    for i in range(size):
        x, y, w, h = _layout(i, start)
        roll = rng.random()
        status = PENDING if roll < 0.08 else REMOVAL_REQUESTED if roll < 0.11 else ACTIVE
        rows.append({"owner_id": owners[(start + i) % len(owners)],
                     "location": f"{(start + i) % 97 + 1} {STREETS[(start + i) % len(STREETS)]}",
                     "tier_id": rng.randint(1, 3), "x": x, "y": y, "width": w, "height": h,
                     "status": status, "description": "Demo property", "created_at": added})
    ids = db.session.scalars(insert(Property).returning(Property.id), rows).all()
    for pid, row in zip(ids, rows):
        row["id"] = pid
    db.session.execute(insert(EventRecord), [_event(
        "events.property-added", row, added, id=row["id"], location=row["location"],
        tier=row["tier_id"], x=row["x"], y=row["y"], width=row["width"], height=row["height"],
        status=row["status"], description=row["description"], armed="disarmed",
        owner=row["owner_id"], clientId=row["owner_id"]) for row in rows])
    equipment, allowed, alerts, visits, entries, crimes = [], [], [], [], [], []
    for pid, row in zip(ids, rows):
        equipment += [{"property_id": pid, "type_id": CAMERA, "description": "Gate camera"},
                      {"property_id": pid, "type_id": 3, "description": "Front door scanner"},
                      {"property_id": pid, "type_id": DRONE, "description": f"Drone {pid}-A"}]
        if row["tier_id"] == 3:
            equipment.append({"property_id": pid, "type_id": DRONE, "description": f"Drone {pid}-B"})
        allowed.append({"property_id": pid, "user_id": f"visitor{pid % 20 + 1}"})
        for _ in range(rng.randint(0, 6)):
            visits.append({"property_id": pid, "user_id": f"visitor{rng.randint(1, 20)}",
                           "timestamp": now - timedelta(hours=rng.uniform(1, 24 * 14))})
        for _ in range(rng.randint(0, 3)):
            ok = rng.random() < 0.8
            entries.append({"property_id": pid, "authorized": ok,
                            "user_id": row["owner_id"] if ok else f"visitor{rng.randint(1, 20)}",
                            "timestamp": now - timedelta(hours=rng.uniform(1, 24 * 7))})
        if rng.random() < 0.05:
            severity = rng.choices(range(len(SEVERITIES)), ALERT_SEVERITY_WEIGHTS)[0]
            alerts.append({"property_id": pid, "user_id": "staff", "reason": "motion at night",
                           "severity": severity,
                           "timestamp": now - timedelta(hours=rng.uniform(1, 48))})
        if rng.random() < 0.04:
            crimes.append({"property_id": pid, "reporter_id": "staff", "description": "Break-in",
                           "x": row["x"] + row["width"] / 2, "y": row["y"] + row["height"] / 2,
                           "timestamp": now - timedelta(hours=rng.uniform(1, 72))})
    db.session.execute(insert(Equipment), equipment)
    cameras = dict(db.session.execute(select(Equipment.property_id, Equipment.id)
                                      .where(Equipment.property_id.in_(ids),
                                             Equipment.type_id == CAMERA)).all())
    for visit in visits:
        visit["camera_id"] = cameras[visit["property_id"]]
    for model, batch in ((AllowedUser, allowed), (Visit, visits), (AuthEntry, entries)):
        if batch:
            db.session.execute(insert(model), batch)
    by_id = {row["id"]: row for row in rows}
    events = []
    if alerts:
        alert_ids = db.session.scalars(insert(Alert).returning(Alert.id), alerts).all()
        events += [_event("events.alerts", by_id[a["property_id"]], a["timestamp"],
                          propertyId=a["property_id"], user=a["user_id"], alertId=alert_id,
                          reason=a["reason"], severity=SEVERITIES[a["severity"]])
                   for alert_id, a in zip(alert_ids, alerts)]
    if crimes:
        crime_ids = db.session.scalars(insert(Crime).returning(Crime.id), crimes).all()
        events += [_event("events.crimes", by_id[c["property_id"]], c["timestamp"],
                          propertyId=c["property_id"], crimeId=crime_id,
                          clientId=c["reporter_id"])
                   for crime_id, c in zip(crime_ids, crimes)]
    return events


def print_logins(logins: dict[str, str]) -> None:
    if not logins:
        click.echo("Demo users already existed; their passwords are unchanged.")
        return
    click.echo("Demo logins (shown once):")
    for user_id, password in logins.items():
        click.echo(f"  {user_id:<8} {password}")
