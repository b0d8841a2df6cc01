"""The HTTP side: the dashboard page, login and logout, the health check, page headers."""
from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import text
from werkzeug.exceptions import HTTPException
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from .. import audit, twofactor
from . import sessions
from ..extensions import db, login_manager
from ..models import User
from ..models._common import utcnow
from ..security import password_matches

web = Blueprint("web", __name__)
log = logging.getLogger("propsec.web")

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; connect-src 'self' ws: wss:; "
                           "object-src 'none'; base-uri 'self'; form-action 'self'; "
                           "frame-ancestors 'none'")


def _storable(form, field):
    """A user id with a NUL in it names nobody and cannot be looked up on PostgreSQL."""
    if field.data and "\x00" in field.data:
        raise ValidationError("A user id cannot contain NUL characters.")


class LoginForm(FlaskForm):
    username = StringField("User id", validators=[DataRequired(), Length(max=64), _storable])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    otp = StringField("Code", validators=[Optional(), Length(max=40)])


class EnrolForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired(), Length(max=40)])


from .throttle import throttle  # noqa: E402  (the login throttle, shared across processes)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Only while the login's server-side session is open (web/sessions.py)."""
    if not sessions.is_open(user_id, sessions.current_digest()):
        return None
    return db.session.get(User, user_id)


login_manager.login_view = "web.login"


@web.after_app_request
def security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@web.app_errorhandler(Exception)
def unexpected_error(exc):
    """One log line, no traceback: a traceback would carry SQL, its parameters, paths."""
    if isinstance(exc, HTTPException):
        return exc
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.path)
    return "Internal server error. Please try again shortly.", 500


def _must_enrol(user: User) -> bool:
    """PROPSEC_REQUIRE_2FA names the user's role and they have no second factor yet."""
    return not user.totp_enabled and twofactor.required_for(
        user, current_app.config["PROPSEC_REQUIRE_2FA"])


@web.route("/2fa", methods=["GET", "POST"])
@login_required
def enrol():
    """Turning two-factor login on from a page (where PROPSEC_REQUIRE_2FA sends people who
    must, before anything else); the dashboard's settings do the same over the API."""
    user = db.session.get(User, current_user.get_id())
    form = EnrolForm()
    if user.totp_enabled:
        return redirect(url_for("web.index"))
    error = None
    if form.validate_on_submit():
        if twofactor.check(user, form.code.data, pending=True, recovery=False):
            codes, digests = twofactor.new_recovery_codes()
            user.totp_enabled, user.recovery_codes = True, digests
            audit.record("2fa-enabled", actor=user.id, target=user.id, address=request.remote_addr)
            db.session.commit()
            return render_template("enrol.html", codes=codes)
        error = "That is not the current code. Check the app and the phone's clock, and try again."
    secret = twofactor.begin(user)
    db.session.commit()
    uri = twofactor.uri(user, secret)
    return render_template("enrol.html", form=form, secret=secret, qr=twofactor.qr_data_uri(uri),
                           error=error, required=_must_enrol(user)), 200 if error is None else 400


@web.get("/admin")
@login_required
def admin_page():
    user = db.session.get(User, current_user.get_id())
    if user.role != "admin":
        abort(403, description="that page is for administrators")
    if _must_enrol(user):
        return redirect(url_for("web.enrol"))
    return render_template("admin.html", user=user)


@web.get("/")
@login_required
def index():
    if _must_enrol(db.session.get(User, current_user.get_id())):
        return redirect(url_for("web.enrol"))
    return render_template("index.html", user=current_user,
                           site_zone=current_app.config["PROPSEC_TIMEZONE"])


@web.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error, status = None, 200
    if form.validate_on_submit():
        key = throttle.key(request.remote_addr, form.username.data)
        user = db.session.get(User, form.username.data)
        matched = False
        if throttle.blocked(key):
            error, status = "Too many failed attempts. Wait a few minutes and try again.", 429
            _audit_login("login-failed", None, form.username.data, throttled=True)
        elif (matched := password_matches(user, form.password.data)) and user.totp_enabled \
                and not twofactor.check(user, form.otp.data):
            # the right password, but a second factor is on and its code is missing or wrong
            throttle.failed(key)
            _audit_login("login-failed", None, form.username.data, second_factor=True)
            error, status = ("Enter the current 6-digit code from your authenticator app "
                             "(or a recovery code)."), 401
        elif matched:
            throttle.succeeded(key)
            session.clear()  # a fresh session on every login
            sessions.begin(user.id)
            login_user(user)
            _audit_login("login", user.id, user.id)
            if _must_enrol(user):
                return redirect(url_for("web.enrol"))
            return redirect(url_for("web.index"))
        else:
            throttle.failed(key)
            log.info("failed login for a user id from %s", request.remote_addr)
            _audit_login("login-failed", None, form.username.data)
            error, status = "Unknown user id or wrong password.", 401
    elif request.method == "POST":
        said = form.errors.get("username") or ["The form expired or was incomplete. Please try again."]
        error, status = said[0], 400
    return render_template("login.html", form=form, error=error), status


@web.post("/logout")
@login_required
def logout():
    """End this browser session (with `everywhere=1`: every session of the user), on the
    server, and cut the live connections that came with it."""
    user_id = current_user.get_id()
    everywhere = request.form.get("everywhere") == "1"
    closed = sessions.end(sessions.current_digest(), user_id, everywhere)
    _audit_login("logout", user_id, user_id, everywhere=everywhere)
    from ..protocol.namespace import cut_sessions

    cut_sessions(set(closed))
    logout_user()
    session.clear()
    return redirect(url_for("web.login"))


def _audit_login(action: str, actor: str | None, target: str | None, **detail) -> None:
    audit.record(action, actor=actor, target=target, detail=detail, address=request.remote_addr)
    db.session.commit()


@web.get("/metrics")
def metrics_page():
    """Prometheus text format, for PROPSEC_METRICS_ALLOW networks or the bearer token."""
    import hmac
    import ipaddress

    from ..ops import metrics

    token = current_app.config["PROPSEC_METRICS_TOKEN"]
    given = request.headers.get("Authorization", "")
    allowed = bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    if not allowed:
        try:
            address = ipaddress.ip_address((request.remote_addr or "").split("%", 1)[0])
            allowed = any(address in net for net in current_app.config["PROPSEC_METRICS_ALLOW"])
        except ValueError:
            allowed = False
    if not allowed:
        abort(403, description="metrics are for the monitoring system")
    return metrics.exposition(), 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


@web.get("/healthz")
def healthz():
    checks = {"database": "ok", "queue": "off"}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - reported as down, details stay out of the answer
        checks["database"] = "down"
    finally:
        db.session.remove()
    queue_url = current_app.config["PROPSEC_MESSAGE_QUEUE"]
    if queue_url:
        checks["queue"] = "ok" if _queue_alive(queue_url) else "down"
    down = [name for name, state in checks.items() if state == "down"]
    from ..protocol.namespace import CONNECTIONS
    body = {"status": "ok" if not down else "down", **checks, "connections": len(CONNECTIONS),
            "maxConnections": current_app.config["PROPSEC_MAX_CONNECTIONS"]}
    if checks["database"] == "ok":
        body.update(_background_health())
    if down:
        body["down"] = down
    return jsonify(body), 503 if down else 200


def _background_health() -> dict:
    """How far behind this process's event tailer is (seconds since the oldest committed
    event it has not pushed yet; 0 when caught up, null before it starts), and which
    background workers run here."""
    from .. import notify
    from ..audit import seal
    from ..background import escalation
    from ..pipeline import log as event_log
    from ..pipeline import pipeline
    from ..sql import autocommit

    pipe = pipeline()
    lag = None
    cursor = pipe.tailer.cursor
    if cursor is not None:
        try:
            with autocommit() as reader:
                rows, _ = event_log.read_final(reader, cursor, 1)
            lag = 0.0 if not rows else round(max(0.0, (utcnow() - rows[0].created_at).total_seconds()), 3)
        except Exception:  # noqa: BLE001 - the database check above reports the cause
            lag = None
    workers = {"eventTailer": pipe.tail_worker.running or pipe.inline,
               "webhooks": notify.webhook_worker.running, "mail": notify.mail_worker.running,
               "notificationFanout": notify.fanout_worker.running,
               "escalation": escalation.escalator.running, "auditSeal": seal.worker.running}
    return {"eventLagSeconds": lag, "workers": workers}


def _queue_alive(url: str) -> bool:
    try:
        import redis
        return bool(redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping())
    except Exception:  # noqa: BLE001
        return False
