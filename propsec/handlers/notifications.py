"""Webhooks and e-mail preferences (contract section 15); the sending is propsec/notify's."""
from __future__ import annotations

from typing import Annotated

from flask import current_app
from pydantic import Field, PrivateAttr, StrictBool, field_validator, model_validator
from sqlalchemy import delete, select

from .. import notify, sql
from ..extensions import db
from ..models import SEVERITIES, Property, User, Webhook, WebhookAttempt, WebhookDelivery
from ..models._common import iso
from ..notify import addresses, secrets
from ..pipeline import log as event_log
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import NotFound, ValidationFailed
from ..protocol.events import EVENT_NAMES
from ..protocol.registry import websocket_query
from ..protocol.schemas import Id, Int, Payload, text
from .alerts import Severity

Url = text(1, addresses.MAX_URL)
EventName = Annotated[str, Field(strict=True)]
DeliveryLimit = Annotated[Int, Field(ge=1, le=1000)]


class NewWebhook(Payload):
    url: Url
    events: Annotated[list[EventName], Field(min_length=1, max_length=len(EVENT_NAMES))]
    propertyId: Id | None = None
    minSeverity: Severity | None = None
    # Why an owner could not use this URL (None: fine). Worked out here, before the request's
    # transaction begins: resolving a name may take a while, and no lock should wait on it.
    _refusal: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _where_it_points(self):
        try:
            addresses.check(self.url)
        except addresses.Refused as exc:
            self._refusal = str(exc)
        return self

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        addresses.host_and_port(url)
        return url

    @field_validator("events")
    @classmethod
    def _events(cls, events: list[str]) -> list[str]:
        unknown = [e for e in events if e not in EVENT_NAMES]
        if unknown:
            raise ValueError(f"unknown event {unknown[0][:64]!r}")
        return list(dict.fromkeys(events))


class WebhookRef(Payload):
    webhookId: Id


class DeliveriesQuery(WebhookRef):
    limit: DeliveryLimit = 50


class Preferences(Payload):
    email: StrictBool
    minSeverity: Severity


def _own_webhook(req, webhook_id: int) -> Webhook:
    """The caller's webhook (an admin's: anyone's); another's is as good as missing."""
    hook = db.session.get(Webhook, webhook_id)
    if hook is None or (hook.user_id != req.user.id and not req.user.is_admin):
        raise NotFound(f"webhook {webhook_id} not found")
    return hook


@websocket_query("add-webhook", NewWebhook, allow=Allow.ANYONE, mutates=True)
def add_webhook(req, data: NewWebhook):
    user = req.user
    if data.propertyId is not None:
        prop = db.session.get(Property, data.propertyId)
        if prop is None:
            raise NotFound(f"property {data.propertyId} not found")
        if not user.is_staff and prop.owner_id != user.id:
            raise ValidationFailed.on("propertyId", "must be one of your properties")
    elif not user.is_staff:
        raise ValidationFailed.on("propertyId", "an owner's webhook must name one of their properties")
    if data._refusal and not user.is_staff and not current_app.config["PROPSEC_WEBHOOK_ALLOW_PRIVATE"]:
        raise ValidationFailed.on("url", data._refusal)
    secret = secrets.new_secret()
    hook = Webhook(user_id=user.id, url=data.url, events=data.events, property_id=data.propertyId,
                   since_event_id=event_log.newest_id(sql.in_transaction()),
                   min_severity=None if data.minSeverity is None else SEVERITIES.index(data.minSeverity),
                   secret=secrets.seal(secret))
    db.session.add(hook)
    db.session.flush()
    req.after_commit(notify.listen_again)
    return envelopes.success("webhook added; keep the secret, it is shown only now",
                             id=hook.id, secret=secret)


@websocket_query("get-webhooks", allow=Allow.ANYONE)
def get_webhooks(req, data):
    query = select(Webhook).order_by(Webhook.id)
    if not req.user.is_admin:
        query = query.where(Webhook.user_id == req.user.id)
    return envelopes.data(webhooks=[h.to_dict() for h in db.session.scalars(query)])


@websocket_query("remove-webhook", WebhookRef, allow=Allow.ANYONE, mutates=True)
def remove_webhook(req, data: WebhookRef):
    hook = _own_webhook(req, data.webhookId)
    for table in (WebhookAttempt, WebhookDelivery):
        db.session.execute(delete(table).where(table.webhook_id == hook.id))
    db.session.delete(hook)
    return envelopes.success(f"webhook {data.webhookId} removed")


@websocket_query("get-webhook-deliveries", DeliveriesQuery, allow=Allow.ANYONE)
def get_webhook_deliveries(req, data: DeliveriesQuery):
    hook = _own_webhook(req, data.webhookId)
    rows = db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.webhook_id == hook.id)
                              .order_by(WebhookAttempt.id.desc()).limit(data.limit))
    return envelopes.data(deliveries=[
        {"eventId": a.event_id, "event": a.event, "attempt": a.attempt, "status": a.status,
         "error": a.error, "at": iso(a.at)} for a in rows])


@websocket_query("get-notification-preferences", allow=Allow.ANYONE)
def get_notification_preferences(req, data):
    user = db.session.get(User, req.user.id)
    return envelopes.data(email=bool(user.notify_email),
                          minSeverity=SEVERITIES[user.notify_min_severity],
                          address=user.email)


@websocket_query("set-notification-preferences", Preferences, allow=Allow.ANYONE, mutates=True)
def set_notification_preferences(req, data: Preferences):
    user = db.session.get(User, req.user.id)
    user.notify_email, user.notify_min_severity = data.email, SEVERITIES.index(data.minSeverity)
    return envelopes.success("notification preferences saved")
