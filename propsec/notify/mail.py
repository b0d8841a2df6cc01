"""Sending the mail outbox over SMTP (`PROPSEC_SMTP_URL`).

A step leases due messages (a conditional UPDATE of `lease_until`, so one process sends each),
sends them outside any transaction, and records the outcome: sent, or a temporary failure
(4xx answers, a dropped or refused connection) that waits its retry delay, or a permanent
one (5xx) that is recorded and not retried.

URL forms: `smtp://host:port` (plain), `smtp://host:port?starttls=1` (STARTTLS),
`smtps://host:port` (TLS from the start); `user:password@` logs in."""
from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app
from sqlalchemy import or_, select, update

from ..extensions import db
from ..models import DONE, GAVE_UP, PENDING_WORK, MailMessage
from ..models._common import utcnow

log = logging.getLogger("propsec.mail")

TIMEOUT = 10.0
LEASE = timedelta(seconds=TIMEOUT * 2)
BATCH = 20
MAX_ATTEMPTS = 8


def step() -> float | None:
    url = current_app.config.get("PROPSEC_SMTP_URL")
    if not url:
        return None
    now = utcnow()
    due = db.session.scalars(
        select(MailMessage.id).where(
            MailMessage.state == PENDING_WORK, MailMessage.due_at <= now,
            or_(MailMessage.lease_until.is_(None), MailMessage.lease_until < now))
        .order_by(MailMessage.id).limit(BATCH)).all()
    mine = []
    for message_id in due:
        taken = db.session.execute(
            update(MailMessage).where(
                MailMessage.id == message_id, MailMessage.state == PENDING_WORK,
                or_(MailMessage.lease_until.is_(None), MailMessage.lease_until < now))
            .values(lease_until=now + LEASE)).rowcount
        if taken:
            mine.append(message_id)
    db.session.commit()
    for message_id in mine:
        _send(url, message_id)
    return 0 if len(due) == BATCH else None


def _send(url: str, message_id: int) -> None:
    message = db.session.get(MailMessage, message_id)
    mail = EmailMessage()
    mail["From"] = current_app.config["PROPSEC_MAIL_FROM"]
    mail["To"] = message.address
    mail["Subject"] = message.subject
    mail["Message-ID"] = f"<propsec-{message.id}-{message.event_id}@propsec>"
    mail.set_content(message.text_body)
    mail.add_alternative(message.html_body, subtype="html")
    db.session.commit()  # nothing held open while talking to the mail server
    outcome, error = deliver(url, mail)
    message = db.session.get(MailMessage, message_id)
    message.attempts += 1
    message.lease_until = None
    if outcome == "sent":
        message.state, message.done_at = DONE, utcnow()
    elif outcome == "retry" and message.attempts < MAX_ATTEMPTS:
        delays = current_app.config["PROPSEC_RETRY_SECONDS"]
        message.due_at = utcnow() + timedelta(seconds=delays[min(message.attempts, len(delays)) - 1])
        message.last_error = error
    else:
        message.state, message.last_error = GAVE_UP, error
        log.warning("mail %s to a recipient gave up: %s", message_id, error)
    db.session.commit()


def deliver(url: str, mail: EmailMessage) -> tuple[str, str | None]:
    """Send one message: ("sent", None), ("retry", why) or ("failed", why). Never raises."""
    parts = urlsplit(url)
    options = parse_qs(parts.query)
    host, port = parts.hostname or "127.0.0.1", parts.port
    try:
        if parts.scheme == "smtps":
            server = smtplib.SMTP_SSL(host, port or 465, timeout=TIMEOUT,
                                      context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(host, port or 25, timeout=TIMEOUT)
        with server:
            if options.get("starttls", ["0"])[0] in ("1", "true", "yes"):
                server.starttls(context=ssl.create_default_context())
            if parts.username:
                server.login(unquote(parts.username), unquote(parts.password or ""))
            server.send_message(mail)
        return "sent", None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        return ("retry" if all(400 <= c < 500 for c in codes) else "failed"), "recipient refused"
    except smtplib.SMTPResponseException as exc:
        return ("retry" if 400 <= exc.smtp_code < 500 else "failed"), f"SMTP {exc.smtp_code}"
    except (smtplib.SMTPException, OSError) as exc:
        return "retry", f"SMTP connection failed ({type(exc).__name__})"
