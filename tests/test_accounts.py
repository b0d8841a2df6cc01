"""Accounts (contract section 18): users and tokens from the API, two-factor login with
recovery codes, PROPSEC_REQUIRE_2FA, and Argon2 password hashes. In-process."""
from __future__ import annotations

import re
import time

import pyotp
import pytest
from helpers import expect, expect_error
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)
from support import Client

from propsec.extensions import db
from propsec.models import ApiToken, User
from propsec.security import hash_password, password_matches

PASSWORD = "a long enough password"


@pytest.fixture
def web(app):
    app.config["WTF_CSRF_ENABLED"] = False
    return app.test_client()


def login(web, user_id, password=PASSWORD, otp=None):
    data = {"username": user_id, "password": password, **({"otp": otp} if otp else {})}
    return web.post("/login", data=data)


def test_an_admin_creates_a_user_who_can_log_in(app, clients, web):
    admin = clients["admin"]
    expect(admin.call("create-user", userId="dana", fullName="Dana Ruiz", role="staff",
                      password=PASSWORD, email="dana@example.net"), "success")
    expect_error(admin.call("create-user", userId="dana", fullName="Again", role="owner"), "conflict")
    for field, value in (("role", "king"), ("email", "not an address"), ("password", "short"),
                         ("userId", "")):
        payload = {"userId": "erin", "fullName": "Erin", "role": "owner", field: value}
        expect_error(admin.call("create-user", payload), "validation_error", field)
    assert login(web, "dana").status_code == 302
    with app.app_context():
        dana = db.session.get(User, "dana")
        assert (dana.role, dana.email) == ("staff", "dana@example.net")
        assert dana.password_hash.startswith("$argon2id$")


def test_a_token_is_shown_once_listed_with_its_last_use_and_revocation_cuts_it(app, clients):
    admin = clients["admin"]
    issued = expect(admin.call("issue-token", userId="owner", label="gate scanner"),
                    "success", "token", "id")
    expect_error(admin.call("issue-token", userId="ghost"), "not_found")
    [listed] = [t for t in expect(admin.call("get-tokens", userId="owner"), "data")["tokens"]
                if t["id"] == issued["id"]]
    assert listed["label"] == "gate scanner" and listed["lastUsedAt"] is None
    assert issued["token"] not in str(expect(admin.call("get-tokens", userId="owner"), "data"))
    device = Client(app, issued["token"])
    assert device.sio.is_connected("/propsec")
    [listed] = [t for t in expect(admin.call("get-tokens", userId="owner"), "data")["tokens"]
                if t["id"] == issued["id"]]
    assert listed["lastUsedAt"] is not None
    expect(admin.call("revoke-token", tokenId=issued["id"]), "success")
    assert not device.sio.is_connected("/propsec"), "a revoked token's connection is cut"
    assert issued["id"] not in [t["id"] for t in expect(admin.call("get-tokens", userId="owner"),
                                                        "data")["tokens"]]
    expect_error(admin.call("revoke-token", tokenId=issued["id"]), "not_found")
    assert not Client(app, issued["token"]).sio.is_connected("/propsec")


def test_text_no_database_can_store_is_refused_not_crashed_on(app, clients, web):
    """A NUL character cannot be stored on PostgreSQL: a token label or a login user id holding
    one gets a clear refusal (CI's fuzzer once got internal_error for the label)."""
    admin = clients["admin"]
    before = expect(admin.call("get-tokens", userId="owner"), "data")["tokens"]
    expect_error(admin.call("issue-token", userId="owner", label="gate\x00scanner"),
                 "validation_error", "label")
    assert expect(admin.call("get-tokens", userId="owner"), "data")["tokens"] == before
    answer = login(web, "own\x00er")
    assert answer.status_code == 400 and b"cannot contain NUL" in answer.data
    assert login(web, "dana\x00").status_code == 400
    expect(admin.call("create-user", userId="dana", fullName="Dana", role="staff",
                      password=PASSWORD), "success")
    assert login(web, "dana").status_code == 302, "the refusals left logins working"


def test_two_factor_enrolment_login_recovery_and_disable(app, clients, web):
    with app.app_context():
        db.session.get(User, "staff").password_hash = hash_password(PASSWORD)
        db.session.commit()
        db.session.remove()
    staff = clients["staff"]
    begun = expect(staff.call("begin-2fa"), "data", "secret", "otpauthUri", "qrCode")
    assert begun["otpauthUri"].startswith("otpauth://totp/propsec:staff?secret=")
    assert begun["qrCode"].startswith("data:image/svg+xml;base64,")
    totp = pyotp.TOTP(begun["secret"])
    expect_error(staff.call("confirm-2fa", code="000000" if totp.now() != "000000" else "111111"),
                 "validation_error", "code")
    assert login(web, "staff").status_code == 302  # not on yet: the password is enough
    web.post("/logout")
    codes = expect(staff.call("confirm-2fa", code=totp.now()), "success")["recoveryCodes"]
    assert len(codes) == 8 and len(set(codes)) == 8
    expect_error(staff.call("begin-2fa"), "conflict")

    assert login(web, "staff").status_code == 401  # password alone no longer does
    assert login(web, "staff", otp="123456" if totp.now() != "123456" else "654321").status_code == 401
    assert login(web, "staff", password="wrong", otp=totp.at(time.time() + 30)).status_code == 401
    next_code = totp.at(time.time() + 30)  # (the current step was used to confirm)
    assert login(web, "staff", otp=next_code).status_code == 302
    web.post("/logout")
    assert login(web, "staff", otp=next_code).status_code == 401, "a code works once"
    assert login(web, "staff", otp=codes[0]).status_code == 302  # a recovery code, once
    web.post("/logout")
    assert login(web, "staff", otp=codes[0]).status_code == 401
    expect_error(staff.call("disable-2fa", code=codes[0]), "validation_error", "code")
    expect(staff.call("disable-2fa", code=codes[1]), "success")
    assert login(web, "staff").status_code == 302
    with app.app_context():
        staff_row = db.session.get(User, "staff")
        assert (staff_row.totp_enabled, staff_row.totp_secret) == (False, None)


def test_required_2fa_sends_people_to_enrolment_first(app, web, tokens):
    app.config["PROPSEC_REQUIRE_2FA"] = "admin"
    with app.app_context():
        db.session.get(User, "admin").password_hash = hash_password(PASSWORD)
        db.session.commit()
        db.session.remove()
    answer = login(web, "admin")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/2fa")
    assert web.get("/").headers["Location"].endswith("/2fa")
    page = web.get("/2fa")
    assert page.status_code == 200
    secret = re.search(r'data-role="secret">([A-Z2-7]+)<', page.get_data(as_text=True)).group(1)
    assert web.post("/2fa", data={"code": "000000"}).status_code in (400, 200)
    page = web.get("/2fa")
    secret = re.search(r'data-role="secret">([A-Z2-7]+)<', page.get_data(as_text=True)).group(1)
    done = web.post("/2fa", data={"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and 'data-role="recovery-codes"' in done.get_data(as_text=True)
    assert web.get("/").status_code == 200
    # API tokens are not affected
    assert Client(app, tokens["admin"]).sio.is_connected("/propsec")


def test_older_password_hashes_still_work_and_become_argon2(app):
    from werkzeug.security import generate_password_hash

    with app.app_context():
        user = db.session.get(User, "owner")
        user.password_hash = generate_password_hash("old-style password")
        assert password_matches(user, "old-style password")
        assert user.password_hash.startswith("$argon2id$")
        assert password_matches(user, "old-style password")
        assert not password_matches(user, "another")
        db.session.rollback()


def test_tokens_stay_sha256_digests(app, clients):
    issued = expect(clients["admin"].call("issue-token", userId="owner"), "success")
    with app.app_context():
        row = db.session.get(ApiToken, issued["id"])
        assert len(row.token_hash) == 64 and issued["token"] not in row.token_hash
