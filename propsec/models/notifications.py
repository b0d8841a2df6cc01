"""Notifications (contract section 15): webhooks and their delivery queue and log, the mail
outbox, and the cursors of the workers that read the event log for them.

Every row here is a piece of durable work: written in a transaction (from the committed event
log), done by whichever server process claims it, recorded when done. propsec/notify says how."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._common import BigId, utcnow

PENDING_WORK, DONE, GAVE_UP = "pending", "done", "failed"


class LogCursor(db.Model):
    """How far one consumer of the event log has read (its last event id)."""

    __tablename__ = "log_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)


class Webhook(db.Model):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list] = mapped_column(JSON)
    property_id: Mapped[int | None] = mapped_column(ForeignKey("properties.id"))
    min_severity: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    failures: Mapped[int] = mapped_column(default=0)  # failed attempts in a row
    # The signing secret, encrypted (notify/secrets.py); shown once, at add-webhook.
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The newest event when it was added: it hears of what happens after, not before.
    since_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # A sender process holds this webhook's queue until then (kept in order, one at a time).
    lease_until: Mapped[datetime | None]

    def to_dict(self) -> dict:
        from .activity import SEVERITIES

        return {"id": self.id, "url": self.url, "events": list(self.events),
                "propertyId": self.property_id,
                "minSeverity": None if self.min_severity is None else SEVERITIES[self.min_severity],
                "active": self.active, "failures": self.failures, "userId": self.user_id}


class WebhookDelivery(db.Model):
    """One event for one webhook: pending until answered 2xx (or the webhook stops)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("webhook_id", "event_id"),
                      Index("ix_webhook_deliveries_queue", "webhook_id", "state", "event_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the exact bytes sent (and signed), as text
    state: Mapped[str] = mapped_column(String(16), default=PENDING_WORK)
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]


class WebhookAttempt(db.Model):
    """The delivery log: one row per attempt, kept for get-webhook-deliveries."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_webhook_id", "webhook_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int]
    status: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class MailMessage(db.Model):
    """The mail outbox: one message per recipient and event."""

    __tablename__ = "mail_outbox"
    __table_args__ = (UniqueConstraint("recipient_id", "event_id"),
                      Index("ix_mail_outbox_due", "state", "due_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(320))
    event_id: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=PENDING_WORK)
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
