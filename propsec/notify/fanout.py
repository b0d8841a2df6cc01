"""From the committed event log to notification work: webhook deliveries and outbox mail.

One cursor row (`log_cursors`, name "notifications") says how far the log has been read. A
step reads the next *final* rows after it (pipeline/log.py) in id order and works out what
they call for without a lock, then writes that work and moves the cursor together, and only
if no other process moved it meanwhile (`cursors.advance`: on PostgreSQL one statement, so
a step holds back no tailer while its process is busy elsewhere). So each event is turned
into work exactly once, in order, whichever process does it, and a crash loses nothing."""
from __future__ import annotations

import json
import time
from datetime import datetime
from html import escape
from typing import Callable

from flask import current_app
from sqlalchemy import select

from .. import sql
from ..background import cursors
from ..extensions import db
from ..models import (PENDING_WORK, SEVERITIES, Alert, MailMessage, Property, User, Webhook,
                      WebhookDelivery)
from ..models._common import utcnow
from ..pipeline import log as event_log
from ..protocol.events import ALL, wire_payload

CURSOR = "notifications"
BATCH = 500
ALERT_EVENTS = ("events.alerts", "events.alert-acknowledged", "events.alert-assigned",
                "events.alert-resolved", "events.alert-escalated")
STAFF = ("staff", "admin")
ADMIN_ESCALATION_LEVEL = 2

on_new_work: Callable[[], object] = lambda: None


_DELIVERY = sql.inserting(WebhookDelivery.__table__, "webhook_id", "event_id", "event", "body",
                          "state", "attempts", "due_at", returning_id=False)
_MAIL = sql.inserting(MailMessage.__table__, "recipient_id", "address", "event_id", "subject",
                      "text_body", "html_body", "state", "attempts", "due_at", returning_id=False)


def _final_after(last: int, limit: int) -> list:
    with sql.autocommit() as cursor:
        return event_log.read_final(cursor, last, limit)[0]


_IDLE_ADVANCE_SECONDS = 5.0
# With no active webhook and no mail server, events call for no work: the fan-out then looks
# again only once a second instead of at every commit (three reads each time: a tenth of a
# server's CPU under a write load). A webhook added in this process ends the quiet at once
# (`listen_again`); one added in another process is noticed within the second, and hears of
# every event after it was added all the same: the cursor has not passed them.
QUIET_SECONDS = 1.0


def _idle() -> dict:
    """This app's idling: until when it looks no further, and when it last moved the cursor
    with nothing to send."""
    return current_app.extensions.setdefault("propsec_fanout_idle",
                                             {"quiet_until": 0.0, "advanced_at": 0.0})


def listen_again() -> None:
    _idle()["quiet_until"] = 0.0


def _nothing_to_send() -> bool:
    """No active webhook and no mail server: events become no work at all."""
    if current_app.config.get("PROPSEC_SMTP_URL"):
        return False
    return db.session.scalar(select(Webhook.id).where(Webhook.active).limit(1)) is None


def step() -> float | None:
    now, idle = time.monotonic(), _idle()
    if now < idle["quiet_until"]:
        return idle["quiet_until"] - now
    last = cursors.position(CURSOR)
    if last is None:  # (a first start notifies from now on, not about the whole history)
        cursors.create(CURSOR, lambda: event_log.final_max(sql.in_transaction()))
        return None
    if not _final_after(last, 1):
        return None
    if _nothing_to_send():
        idle["quiet_until"] = now + QUIET_SECONDS
        # Still move the cursor past what was read (a webhook added later must not hear of
        # older events), but only every few seconds: each move is a write, and a writing
        # transaction holds back the cluster's event horizon while it lasts.
        if now - idle["advanced_at"] < _IDLE_ADVANCE_SECONDS:
            db.session.rollback()
            return None
        idle["advanced_at"] = now
    rows = _final_after(last, BATCH)
    if not rows:  # (pruned meanwhile)
        return None
    deliveries = _deliveries(rows)
    mails = _mails(rows)
    if not cursors.advance(CURSOR, last, rows[-1].id,
                           lambda cursor: _write(cursor, deliveries, mails)):
        return None  # another process took these rows in, and goes on with what follows
    if deliveries or mails:
        on_new_work()
    return 0 if len(rows) == BATCH else None


def _write(cursor, deliveries: list[dict], mails: list[dict]) -> None:
    if deliveries:
        _DELIVERY.run_many(cursor, deliveries)
    if mails:
        _MAIL.run_many(cursor, mails)


def _property_of(row) -> int | None:
    payload = row.payload
    return payload.get("propertyId", payload.get("id") if row.name == "events.property-added" else None)


def _severities(rows) -> dict[int, int]:
    """Severity (as an index) of each alert the rows are about."""
    ids = {r.payload.get("alertId") for r in rows if r.name in ALERT_EVENTS}
    ids.discard(None)
    if not ids:
        return {}
    return dict(db.session.execute(select(Alert.id, Alert.severity).where(Alert.id.in_(ids))).all())


def _deliveries(rows) -> list[dict]:
    hooks = db.session.execute(
        select(Webhook.id, Webhook.events, Webhook.property_id, Webhook.min_severity,
               Webhook.user_id, Webhook.since_event_id, User.role).join(User, User.id == Webhook.user_id)
        .where(Webhook.active)).all()
    if not hooks:
        return []
    severities = _severities(rows)
    now = utcnow()
    out = []
    for row in rows:
        body = None
        for hook in hooks:
            if row.id <= hook.since_event_id or not (ALL in hook.events or row.name in hook.events):
                continue
            if hook.role not in STAFF and row.owner_id != hook.user_id:
                continue  # its creator may not see this event
            if hook.property_id is not None and _property_of(row) != hook.property_id:
                continue
            if hook.min_severity is not None and row.name in ALERT_EVENTS:
                if severities.get(row.payload.get("alertId"), -1) < hook.min_severity:
                    continue
            if body is None:
                body = json.dumps(wire_payload(row, with_name=True), separators=(",", ":"),
                                  ensure_ascii=False)
            out.append({"webhook_id": hook.id, "event_id": row.id, "event": row.name,
                        "body": body, "state": PENDING_WORK, "attempts": 0, "due_at": now})
    return out


# -- e-mail ------------------------------------------------------------------------------------

def _mails(rows) -> list[dict]:
    if not current_app.config.get("PROPSEC_SMTP_URL"):
        return []
    wanted = [r for r in rows if r.name == "events.alerts" or (
        r.name == "events.alert-escalated"
        and int(r.payload.get("level", 0)) >= ADMIN_ESCALATION_LEVEL)]
    if not wanted:
        return []
    staff = db.session.execute(select(User).where(
        User.role.in_(STAFF), User.email.is_not(None))).scalars().all()
    out = []
    for row in wanted:
        payload = row.payload
        severity = SEVERITIES.index(payload.get("severity", "high"))
        prop = db.session.get(Property, _property_of(row))
        if row.name == "events.alerts":
            owner = db.session.get(User, row.owner_id)
            people = [owner] if owner is not None and owner.email and owner.notify_email is not False \
                and severity >= owner.notify_min_severity else []
            people += [u for u in staff if u.notify_email and severity >= u.notify_min_severity
                       and u.id != row.owner_id]
        else:  # an escalation to level 2 or more: the admins, and nobody else
            people = [u for u in staff if u.role == "admin"]
        for person in people:
            out.append({"recipient_id": person.id, "address": person.email, "event_id": row.id,
                        **message(row, prop), "state": PENDING_WORK, "attempts": 0,
                        "due_at": utcnow()})
    return out


def message(row, prop) -> dict:
    """Subject, plain text and HTML of the mail about one alert event."""
    payload = row.payload
    severity = str(payload.get("severity", "high"))
    place = prop.location if prop is not None else f"property {payload.get('propertyId')}"
    link = f"{current_app.config['PROPSEC_PUBLIC_URL']}/"
    when = _stamp(row.created_at)
    if row.name == "events.alert-escalated":
        subject = f"[propsec] {severity.upper()} alert still open at {place} (escalation {payload.get('level')})"
        lines = [f"Alert #{payload.get('alertId')} at {place} has been open too long: "
                 f"escalation level {payload.get('level')}."]
    else:
        subject = f"[propsec] {severity.upper()} alert at {place}"
        lines = [f"A {severity} alert was raised at {place}."]
    lines += [f"Alert: #{payload.get('alertId')}",
              f"Reason: {payload.get('reason') or '(none given)'}",
              f"Time: {when}", f"Dashboard: {link}"]
    text = "\n".join(lines) + "\n"
    html = ("<html><body><p><strong>" + escape(lines[0]) + "</strong></p><ul>"
            + "".join(f"<li>{escape(line)}</li>" for line in lines[1:-1])
            + f'</ul><p><a href="{escape(link)}">Open the dashboard</a></p></body></html>')
    return {"subject": subject[:300], "text_body": text, "html_body": html}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
