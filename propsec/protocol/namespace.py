"""The `/propsec` Socket.IO namespace: authenticate at connect, then hand every event to
the dispatcher. The handler's return value is the acknowledgement."""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import current_app, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, Namespace
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db, socketio
from ..ops import logs
from ..models import ApiToken, User
from ..models._common import utcnow
from ..pipeline import pipeline
from ..security import token_digest, user_for_token
from .access import Principal
from .dispatcher import dispatch
from . import capacity, envelopes
from .access import STAFF_ROLES
from .errors import RateLimited, Unauthenticated, UnknownQuery
from .events import NAMESPACE
from ..web import sessions
from .. import twofactor
from ..ops import metrics

log = logging.getLogger("propsec.namespace")

# How often a long-lived connection re-checks that its user and token still stand, and how
# often a background task looks for connections due a re-check (idle ones included: a
# revoked device that only listens must stop hearing events too).
RECHECK_SECONDS = 30.0
SWEEP_SECONDS = 1.0
# How often the sweeper asks what ended anywhere (logouts, revoked tokens), and how far back
# it looks beyond its last look (the processes' clocks and commits are not exactly in step).
ENDED_LOOK_SECONDS = 2.0
ENDED_MARGIN = timedelta(seconds=10)


class Connection:
    """Per-connection state: the caller, its credential, and its rate-limit bucket."""

    def __init__(self, sid: str, user: User, token_hash: str | None, burst: int, rate: float,
                 address: str | None = None, session_digest: str | None = None):
        self.sid = sid
        self.session_digest = session_digest  # the browser session it came with (cookie login)
        self.subscriptions: set[str] = set()  # event names subscribed to (for the metrics)
        self.address = address  # the client's address at connect (for the audit trail)
        self.user = Principal(user.id, user.full_name, user.role)
        self.token_hash = token_hash
        self.burst, self.rate = burst, rate
        self.tokens = float(burst)
        self.refilled = self.checked = time.monotonic()

    def take_token(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        if self.tokens < 1:
            raise RateLimited()
        self.tokens -= 1

    def join(self, room: str) -> None:
        socketio.server.enter_room(self.sid, room, namespace=NAMESPACE)

    def leave(self, room: str) -> None:
        socketio.server.leave_room(self.sid, room, namespace=NAMESPACE)

    def still_valid(self) -> bool:
        """Re-read the user (and token) now and then, so revocation reaches live sockets."""
        now = time.monotonic()
        if now - self.checked < RECHECK_SECONDS:
            return True
        try:
            if db.session.get(User, self.user.id) is None:
                return False
            if self.token_hash is not None:
                token = db.session.query(ApiToken).filter_by(token_hash=self.token_hash).one_or_none()
                if token is None or token.revoked_at is not None:
                    return False
            if self.session_digest is not None and not sessions.is_open(self.user.id, self.session_digest):
                return False
            self.checked = now
            return True
        except SQLAlchemyError as exc:  # database down: the request itself will say so
            log.warning("database unavailable during the credential re-check: %s",
                        logs.failure_kind(exc))
            return True
        finally:
            db.session.remove()


CONNECTIONS: dict[str, Connection] = {}
metrics.watch(lambda: len(CONNECTIONS),
              lambda: sum(len(c.subscriptions) for c in list(CONNECTIONS.values())))
_sweeper = {"app": None, "started": False}


def _sweep_forever() -> None:
    """Cut every connection whose user, token or browser session is gone, whether or not it
    sends anything: what ended anywhere lately is looked up every few seconds (logout, token
    revocation), and each connection's credential is re-read every RECHECK_SECONDS."""
    looked = utcnow()
    last_look = 0.0
    while True:
        socketio.sleep(SWEEP_SECONDS)
        try:
            with _sweeper["app"].app_context():
                if time.monotonic() - last_look >= ENDED_LOOK_SECONDS:
                    since, looked = looked - ENDED_MARGIN, utcnow()
                    last_look = time.monotonic()
                    if CONNECTIONS:  # (nobody connected: nothing to cut, no query)
                        _cut_ended(since)
                for sid, conn in list(CONNECTIONS.items()):
                    if not conn.still_valid():
                        _cut(sid)
        except Exception as exc:  # noqa: BLE001 - the sweeper must outlive any one failure
            log.warning("credential sweep failed: %s", type(exc).__name__)


def _cut_ended(since) -> None:
    """Cut connections whose browser session ended or whose token was revoked since then."""
    try:
        ended = sessions.ended_since(since)
        revoked = set(db.session.scalars(select(ApiToken.token_hash).where(ApiToken.revoked_at >= since)))
    finally:
        db.session.remove()
    for sid, conn in list(CONNECTIONS.items()):
        if conn.session_digest in ended or conn.token_hash in revoked:
            _cut(sid)


def cut_sessions(digests: set[str]) -> None:
    """Close this process's live connections of the given browser sessions now."""
    for sid, conn in list(CONNECTIONS.items()):
        if conn.session_digest is not None and conn.session_digest in digests:
            _cut(sid)


def cut_tokens(token_hashes: set[str]) -> None:
    for sid, conn in list(CONNECTIONS.items()):
        if conn.token_hash is not None and conn.token_hash in token_hashes:
            _cut(sid)


def _cut(sid: str) -> None:
    """Forget a connection whose credential is gone and close it."""
    CONNECTIONS.pop(sid, None)
    socketio.server.disconnect(sid, namespace=NAMESPACE)


def _start_sweeper() -> None:
    _sweeper["app"] = current_app._get_current_object()
    if not _sweeper["started"]:
        _sweeper["started"] = True
        socketio.start_background_task(_sweep_forever)


def _authenticate(auth) -> tuple[User | None, str | None, str | None]:
    """(user, token digest, browser session digest): by API token, or by the cookie of an
    open browser session."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if token is not None:
        user = user_for_token(token)
        if user is None:
            return None, None, None
        digest = token_digest(token)
        db.session.execute(update(ApiToken).where(ApiToken.token_hash == digest)
                           .values(last_used_at=utcnow()))
        db.session.commit()
        return user, digest, None
    if current_user.is_authenticated:  # (the user loader checked the browser session)
        return db.session.get(User, current_user.get_id()), None, sessions.current_digest()
    return None, None, None


def on_connect(auth=None):
    if request.sid in CONNECTIONS:
        # Not a connect but a client's event named "connect": no swapping credentials (or
        # refilling the rate-limit bucket) on a live connection.
        return envelopes.error(UnknownQuery("unknown query 'connect'"))
    try:
        user, token_hash, session_digest = _authenticate(auth)
        if user is None:
            raise ConnectionRefusedError("authentication required")
        if session_digest is not None and not user.totp_enabled and twofactor.required_for(
                user, current_app.config["PROPSEC_REQUIRE_2FA"]):
            raise ConnectionRefusedError("two-factor enrolment required: open /2fa")
        if not capacity.admits(len(CONNECTIONS), current_app.config["PROPSEC_MAX_CONNECTIONS"],
                               user.role in STAFF_ROLES):
            raise ConnectionRefusedError("the server is full; try again later")
        burst, rate = current_app.config["PROPSEC_RATE_LIMIT"]
        pipeline().start()
        CONNECTIONS[request.sid] = Connection(request.sid, user, token_hash, burst, rate,
                                              request.remote_addr, session_digest)
        _start_sweeper()
    except SQLAlchemyError as exc:  # one line in the log: a traceback would carry SQL
        log.warning("database unavailable during connect: %s", logs.failure_kind(exc))
        raise ConnectionRefusedError("the service is unavailable; try again shortly") from None
    finally:
        db.session.remove()


def on_disconnect(*_reason):
    if socketio.server.manager.is_connected(request.sid, NAMESPACE):
        # A real disconnect is already pending here; this is a client's event named
        # "disconnect", which must not orphan its own connection.
        return envelopes.error(UnknownQuery("unknown query 'disconnect'"))
    CONNECTIONS.pop(request.sid, None)


def on_event(sid: str, event, *args):
    conn = CONNECTIONS.get(sid)
    if conn is None or not conn.still_valid():
        _cut(sid)
        return envelopes.error(Unauthenticated())
    return dispatch(conn.user, conn, event, args[0] if args else None)


class _Queries(Namespace):
    """Every event but connect/disconnect goes to `on_event`, its name passed explicitly.

    (A catch-all `on_event("*")` handler would get an event literally named "*" without its
    name; Flask-SocketIO then takes the payload for the sid and raises: no acknowledgement
    and a traceback in the log.)

    Queries run in an application context only. Flask-SocketIO would push a whole request
    context for each event (a Request object, URL routing, the cookie session, teardown),
    which was about a tenth of a get-property round trip (docs/performance.md, fix 8);
    nothing after the connect needs it: the caller is known by sid from `CONNECTIONS`, and
    rooms are joined through the connection. Connect and disconnect keep the request
    context (cookie login, Flask-Login)."""

    def trigger_event(self, event, sid, *args):
        environ = self.server.get_environ(sid, namespace=self.namespace)
        if not environ:
            return None  # a connection the server no longer knows: nothing to answer
        with environ["flask.app"].app_context():
            return on_event(sid, event, *args)


def register_namespace() -> None:
    socketio.on_event("connect", on_connect, namespace=NAMESPACE)
    socketio.on_event("disconnect", on_disconnect, namespace=NAMESPACE)
    socketio.on_namespace(_Queries(NAMESPACE))
