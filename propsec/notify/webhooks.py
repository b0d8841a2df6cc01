"""Sending webhook deliveries: per webhook in event-id order, at least once, never twice
once answered 2xx.

A step finds webhooks with a delivery due and takes each one's queue with a lease (a
conditional UPDATE of `lease_until`: one process per webhook at a time, and a dead process's
lease simply runs out). Holding it, a task sends the oldest pending delivery, records the
attempt, and moves on to the next one, renewing the lease; a failed delivery is given its
next due time and the queue waits for it. Sends happen outside any transaction, so a slow
receiver holds no database lock; they run beside the requests, never inside one."""
from __future__ import annotations

import logging
import socket
from datetime import timedelta

import requests
from cryptography.fernet import InvalidToken
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from flask import current_app
from sqlalchemy import exists, or_, select, update

from ..extensions import db, socketio
from ..models import DONE, PENDING_WORK, User, Webhook, WebhookAttempt, WebhookDelivery
from ..models._common import utcnow
from ..ops import metrics
from . import addresses, secrets

log = logging.getLogger("propsec.webhooks")

TIMEOUT = 10.0
# Longer than one send can take (it is renewed before each), and short, since a process that
# stops while holding it leaves the webhook waiting that long for another process.
LEASE = timedelta(seconds=TIMEOUT + 5)
MAX_FAILURES = 8
MAX_BODY_READ = 64 * 1024
PER_LEASE = 100  # deliveries one task sends before giving the webhook back
# A delivery the server cannot sign (its secret key changed without the old one given):
# what its owner reads, and how soon it is tried again.
NOT_SIGNED = "not sent: the server cannot sign deliveries at the moment; it will try again"
UNSIGNED_RETRY = timedelta(seconds=60)
MAX_TASKS = 8

_sessions: dict[bool, requests.Session] = {}
_running: set[int] = set()


class _GuardedConnect:
    """urllib3 connections that connect through `addresses.connect_allowed`."""

    def _new_conn(self):
        try:
            return addresses.connect_allowed(self._dns_host, self.port, self.timeout,
                                             self.source_address, self.socket_options)
        except addresses.Refused as exc:
            raise NewConnectionError(self, f"refused: {exc}") from exc
        except (socket.gaierror, UnicodeError) as exc:  # (a label too long for IDNA)
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"connecting to {self.host} timed out") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"could not connect: {exc}") from exc


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = type("GuardedHTTPConnection", (_GuardedConnect, HTTPConnection), {})


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = type("GuardedHTTPSConnection", (_GuardedConnect, HTTPSConnection), {})


class _GuardedAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool,
                                                   "https": _GuardedHTTPSPool}


def http(guarded: bool) -> requests.Session:
    """One pooled HTTP session per process and kind (keep-alive to receivers). The guarded
    one (owners' webhooks) connects only to addresses an owner may reach and ignores proxy
    settings from the environment (a proxy would make the connection on its behalf)."""
    session = _sessions.get(guarded)
    if session is None:
        session = requests.Session()
        kind = _GuardedAdapter if guarded else requests.adapters.HTTPAdapter
        adapter = kind(pool_connections=32, pool_maxsize=32, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if guarded:
            session.trust_env = False
        session = _sessions.setdefault(guarded, session)
    return session


def _refusal(exc: BaseException) -> str | None:
    """The `Refused` reason somewhere in a requests error's chain of causes, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, addresses.Refused):
            return str(exc)
        exc = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
    return None


def step() -> float | None:
    now = utcnow()
    due = db.session.scalars(
        select(Webhook.id).where(
            Webhook.active, or_(Webhook.lease_until.is_(None), Webhook.lease_until < now),
            exists().where(WebhookDelivery.webhook_id == Webhook.id,
                           WebhookDelivery.state == PENDING_WORK, WebhookDelivery.due_at <= now))
        .order_by(Webhook.id).limit(MAX_TASKS * 4)).all()
    db.session.rollback()
    app = current_app._get_current_object()
    for hook_id in due:
        if len(_running) >= MAX_TASKS:
            break
        if hook_id in _running or not _lease(hook_id):
            continue
        _running.add(hook_id)
        socketio.start_background_task(_drain, app, hook_id)
    return None


def _lease(hook_id: int) -> bool:
    now = utcnow()
    taken = db.session.execute(
        update(Webhook).where(Webhook.id == hook_id, Webhook.active,
                              or_(Webhook.lease_until.is_(None), Webhook.lease_until < now))
        .values(lease_until=now + LEASE)).rowcount
    db.session.commit()
    return taken == 1


def _drain(app, hook_id: int) -> None:
    try:
        with app.app_context():
            for _ in range(PER_LEASE):
                if not _send_next(hook_id):
                    break
            db.session.execute(update(Webhook).where(Webhook.id == hook_id).values(lease_until=None))
            db.session.commit()
    except Exception as exc:  # noqa: BLE001 - the lease runs out and another step retries
        log.warning("webhook %s: delivery task failed (%s)", hook_id, type(exc).__name__)
    finally:
        with app.app_context():
            db.session.remove()
        _running.discard(hook_id)


def _send_next(hook_id: int) -> bool:
    """Send the webhook's oldest pending delivery if it is due; False when there is none."""
    now = utcnow()
    hook = db.session.get(Webhook, hook_id)
    if hook is None or not hook.active:
        return False
    head = db.session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook_id,
                                      WebhookDelivery.state == PENDING_WORK)
        .order_by(WebhookDelivery.event_id).limit(1))
    if head is None or head.due_at > now:
        return False
    creator_role = db.session.scalar(select(User.role).where(User.id == hook.user_id))
    guarded = creator_role == "owner" and not current_app.config["PROPSEC_WEBHOOK_ALLOW_PRIVATE"]
    url, sealed, body = hook.url, hook.secret, head.body.encode()
    delivery_id, event, event_id, attempt = head.id, head.event, head.event_id, head.attempts + 1
    db.session.execute(update(Webhook).where(Webhook.id == hook_id).values(lease_until=now + LEASE))
    db.session.commit()  # no transaction stays open during the send

    try:
        secret = secrets.unseal(sealed)
    except InvalidToken:  # the server's key changed without PROPSEC_SECRET_KEY_PREVIOUS
        log.error("webhook %s: its signing secret cannot be opened with the configured keys "
                  "(docs/deployment.md, rotating the secret key); delivery held back", hook_id)
        secret, status, error = None, None, NOT_SIGNED
    else:
        status, error = send(url, secret, body, event, delivery_id, guarded)
    ok = status is not None and 200 <= status < 300
    metrics.webhook_deliveries.labels(
        "ok" if ok else "refused" if (error or "").startswith("refused") else "failed").inc()
    now = utcnow()
    db.session.add(WebhookAttempt(webhook_id=hook_id, event_id=event_id, event=event,
                                  attempt=attempt, status=status, error=error, at=now))
    delivery = db.session.get(WebhookDelivery, delivery_id)
    hook = db.session.get(Webhook, hook_id)
    if delivery is None or hook is None:  # removed meanwhile
        db.session.rollback()
        return False
    delivery.attempts = attempt
    if ok:
        delivery.state, delivery.done_at = DONE, now
        hook.failures = 0
    elif secret is None:
        # The server's fault, not the receiver's: held back, and never counted towards
        # stopping the webhook.
        delivery.due_at = now + UNSIGNED_RETRY
    else:
        delays = current_app.config["PROPSEC_RETRY_SECONDS"]
        delivery.due_at = now + timedelta(seconds=delays[min(attempt, len(delays)) - 1])
        hook.failures += 1
        if hook.failures >= MAX_FAILURES:
            hook.active = False
            log.warning("webhook %s stopped after %d failed attempts in a row", hook_id, hook.failures)
    db.session.commit()
    return ok


def send(url: str, secret: str, body: bytes, event: str, delivery_id: int,
         guarded: bool) -> tuple[int | None, str | None]:
    """POST one delivery; returns (HTTP status or None, error or None). Never raises."""
    headers = {"Content-Type": "application/json", "User-Agent": "propsec-webhooks/2",
               "X-Propsec-Event": event, "X-Propsec-Delivery": str(delivery_id),
               "X-Propsec-Signature": secrets.signature(secret, body)}
    try:
        with http(guarded).post(url, data=body, headers=headers, timeout=TIMEOUT,
                                allow_redirects=False, stream=True) as answer:
            read = 0
            for chunk in answer.iter_content(8192):  # a bounded look at the body, then close
                read += len(chunk)
                if read >= MAX_BODY_READ:
                    break
            if 300 <= answer.status_code < 400:
                return answer.status_code, "redirects are not followed"
            return answer.status_code, None
    except requests.Timeout:
        return None, f"no answer within {TIMEOUT:g} s"
    except requests.ConnectionError as exc:
        refused = _refusal(exc)
        return None, f"refused: {refused}"[:300] if refused else "could not connect"
    except (requests.RequestException, ValueError) as exc:  # ValueError: an unusable URL
        return None, f"request failed ({type(exc).__name__})"
