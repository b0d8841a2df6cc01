"""Changing PROPSEC_SECRET_KEY (docs/deployment.md, "Rotating the secret key"): with the
former key in PROPSEC_SECRET_KEY_PREVIOUS nothing breaks meanwhile, `rotate-secrets` seals
every stored secret again with the new key, and after that the former key can go. Without
it, a webhook delivery says why it was not sent and a two-factor user still gets in with a
recovery code. In-process, on every configured database."""
from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from helpers import expect
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)
from receivers import Receiver
from sqlalchemy import select

from propsec.extensions import db
from propsec.models import AuditEntry, User, Webhook, WebhookAttempt
from propsec.notify import fanout, secrets, webhooks
from propsec.security import hash_password

PASSWORD = "a long enough password"
OLD, NEW = "the-old-secret-key-" + "o" * 40, "the-new-secret-key-" + "n" * 40


@pytest.fixture
def web(app):
    app.config["WTF_CSRF_ENABLED"] = False
    return app.test_client()


def login(web, otp):
    return web.post("/login", data={"username": "staff", "password": PASSWORD, "otp": otp})


def use_keys(app, current: str, *previous: str) -> None:
    app.config["SECRET_KEY"], app.config["SECRET_KEY_FALLBACKS"] = current, list(previous)


def rotate(app):
    return app.test_cli_runner().invoke(args=["rotate-secrets"])


def fresh_code(app, totp: pyotp.TOTP) -> str:
    """A code the next login accepts: each time step works once, so the record of the last
    one used is wiped here instead of waiting half a minute (tests/test_accounts.py checks
    the once-only rule)."""
    with app.app_context():
        db.session.get(User, "staff").totp_last_step = None
        db.session.commit()
        db.session.remove()
    return totp.now()


def test_rotating_the_key_keeps_webhooks_and_two_factor_working(app, clients, site, web,
                                                                 monkeypatch):
    monkeypatch.setattr(webhooks, "UNSIGNED_RETRY", timedelta(0))  # (held back 60 s)
    use_keys(app, OLD)
    app.config["PROPSEC_WEBHOOK_ALLOW_PRIVATE"] = True
    app.config["PROPSEC_RETRY_SECONDS"] = [0.0]  # a failed delivery is due again at once
    with app.app_context():
        db.session.get(User, "staff").password_hash = hash_password(PASSWORD)
        db.session.commit()
        db.session.remove()
    staff = clients["staff"]
    totp = pyotp.TOTP(expect(staff.call("begin-2fa"), "data")["secret"])
    recovery = expect(staff.call("confirm-2fa", code=totp.now()), "success")["recoveryCodes"]
    receiver = Receiver()
    try:
        hook = expect(staff.call("add-webhook", url=receiver.url, events=["events.alerts"]),
                      "success")
        with app.app_context():
            fanout.step()  # the fan-out's cursor starts at the end of the log

        # A new key alone: the old secrets cannot be opened. Nothing crashes: the delivery is
        # held back (not the receiver's failure: it does not count towards stopping the
        # webhook), the login needs a recovery code, the command says so.
        use_keys(app, NEW)
        expect(staff.call("add-alert", propertyId=site["p1"], userId="x"), "success")
        with app.app_context():
            fanout.step()
            webhooks._send_next(hook["id"])
            error = db.session.scalar(select(WebhookAttempt.error))
            row = db.session.get(Webhook, hook["id"])
            assert (row.active, row.failures) == (True, 0)
            db.session.remove()
        assert error == webhooks.NOT_SIGNED and "key" not in error
        assert receiver.requests == []
        assert login(web, fresh_code(app, totp)).status_code == 401
        assert login(web, recovery[0]).status_code == 302
        web.post("/logout")
        refused = rotate(app)
        assert refused.exit_code == 1
        assert f"webhooks {hook['id']}" in refused.output and "users staff" in refused.output

        # The new key with the old one as previous: everything opens again; after
        # rotate-secrets the old key is no longer needed.
        use_keys(app, NEW, OLD)
        assert login(web, fresh_code(app, totp)).status_code == 302
        done = rotate(app)
        assert done.exit_code == 0, done.output
        assert "webhook secrets: 1 sealed" in done.output
        assert "two-factor secrets: 1 sealed" in done.output
        use_keys(app, NEW)
        web.post("/logout")
        assert login(web, fresh_code(app, totp)).status_code == 302
        with app.app_context():
            sealed = db.session.get(Webhook, hook["id"]).secret
            assert secrets.unseal(sealed) == hook["secret"]
            assert db.session.scalar(select(AuditEntry.action).where(
                AuditEntry.action == "rotate-secrets")) == "rotate-secrets"
            webhooks._send_next(hook["id"])  # the retry goes out, signed with the same secret
            db.session.remove()
        [delivered] = receiver.requests
        assert delivered["headers"]["X-Propsec-Signature"] == secrets.signature(
            hook["secret"], delivered["body"])
        again = rotate(app)  # safe to repeat: nothing is left to seal again
        assert again.exit_code == 0 and "webhook secrets: 0 sealed" in again.output
    finally:
        receiver.close()


def test_a_session_cookie_signed_with_the_previous_key_still_counts(app, web):
    use_keys(app, OLD)
    with app.app_context():
        db.session.get(User, "staff").password_hash = hash_password(PASSWORD)
        db.session.commit()
        db.session.remove()
    assert web.post("/login", data={"username": "staff", "password": PASSWORD}).status_code == 302
    assert web.get("/").status_code == 200
    use_keys(app, NEW, OLD)
    assert web.get("/").status_code == 200, "still logged in during the rotation"
    use_keys(app, NEW)
    assert web.get("/").status_code == 302, "a cookie signed only with a key no longer known"
