"""Accounts from the API (contract section 18): users and API tokens (admins), and each
user's own two-factor login."""
from __future__ import annotations

from typing import Literal

from pydantic import field_validator
from sqlalchemy import select, update

from .. import twofactor
from ..extensions import db
from ..models import ROLES, ApiToken, User
from ..models._common import iso, utcnow
from ..protocol import envelopes
from ..protocol.access import Allow
from ..protocol.errors import Conflict, NotFound, ValidationFailed
from ..protocol.registry import websocket_query
from ..protocol.schemas import Id, Payload, UserId, text
from ..security import hash_password, new_token
from ._shared import existing_user

Email = text(3, 320)
Password = text(10, 200)
Code = text(1, 40)


class NewUser(Payload):
    userId: UserId
    fullName: text(1, 200)
    role: Literal[ROLES]
    password: Password | None = None
    email: Email | None = None

    @field_validator("email")
    @classmethod
    def _address(cls, email: str | None) -> str | None:
        if email is not None and ("@" not in email.strip("@") or any(c.isspace() for c in email)):
            raise ValueError("must be an e-mail address")
        return email


class NewToken(Payload):
    userId: UserId
    label: text(max_length=100) | None = None


class TokensOf(Payload):
    userId: UserId


class TokenRef(Payload):
    tokenId: Id


class CodeOnly(Payload):
    code: Code


@websocket_query("create-user", NewUser, allow=Allow.ADMIN, mutates=True)
def create_user(req, data: NewUser):
    if db.session.get(User, data.userId) is not None:
        raise Conflict(f"user {data.userId} already exists")
    db.session.add(User(id=data.userId, full_name=data.fullName, role=data.role, email=data.email,
                        password_hash=None if data.password is None else hash_password(data.password)))
    return envelopes.success(f"user {data.userId} created")


@websocket_query("issue-token", NewToken, allow=Allow.ADMIN, mutates=True)
def issue_token(req, data: NewToken):
    existing_user(data.userId)
    token, row = new_token(data.userId, data.label)
    return envelopes.success("token issued; it is shown only now", token=token, id=row.id)


@websocket_query("get-tokens", TokensOf, allow=Allow.ADMIN)
def get_tokens(req, data: TokensOf):
    existing_user(data.userId)
    rows = db.session.scalars(select(ApiToken).where(
        ApiToken.user_id == data.userId, ApiToken.revoked_at.is_(None)).order_by(ApiToken.id))
    return envelopes.data(tokens=[{"id": t.id, "label": t.label, "createdAt": iso(t.created_at),
                                   "lastUsedAt": iso(t.last_used_at)} for t in rows])


@websocket_query("revoke-token", TokenRef, allow=Allow.ADMIN, mutates=True)
def revoke_token(req, data: TokenRef):
    token = db.session.get(ApiToken, data.tokenId)
    if token is None or token.revoked_at is not None:
        raise NotFound(f"token {data.tokenId} not found (or already revoked)")
    db.session.execute(update(ApiToken).where(ApiToken.id == token.id).values(revoked_at=utcnow()))
    req.after_commit(lambda digest=token.token_hash: _cut_token(digest))
    return envelopes.success(f"token {data.tokenId} revoked")


def _cut_token(digest: str) -> None:
    from ..protocol.namespace import cut_tokens

    cut_tokens({digest})  # this process now; the others within seconds (their sweeper)


# -- two-factor login, each user for themselves ------------------------------------------------

def _me(req) -> User:
    return db.session.get(User, req.user.id)


@websocket_query("begin-2fa", allow=Allow.ANYONE, mutates=True)
def begin_2fa(req, data):
    user = _me(req)
    if user.totp_enabled:
        raise Conflict("two-factor login is already on; turn it off first to enrol again")
    secret = twofactor.begin(user)
    uri = twofactor.uri(user, secret)
    return envelopes.data(secret=secret, otpauthUri=uri, qrCode=twofactor.qr_data_uri(uri))


@websocket_query("confirm-2fa", CodeOnly, allow=Allow.ANYONE, mutates=True)
def confirm_2fa(req, data: CodeOnly):
    user = _me(req)
    if user.totp_enabled:
        raise Conflict("two-factor login is already on")
    if not user.totp_secret:
        raise Conflict("start with begin-2fa")
    if not twofactor.check(user, data.code, pending=True, recovery=False):
        raise ValidationFailed.on("code", "is not the current code of the authenticator")
    codes, digests = twofactor.new_recovery_codes()
    user.totp_enabled, user.recovery_codes = True, digests
    return envelopes.success("two-factor login is on; keep the recovery codes somewhere safe",
                             recoveryCodes=codes)


@websocket_query("disable-2fa", CodeOnly, allow=Allow.ANYONE, mutates=True)
def disable_2fa(req, data: CodeOnly):
    user = _me(req)
    if not user.totp_enabled:
        raise Conflict("two-factor login is not on")
    if not twofactor.check(user, data.code):
        raise ValidationFailed.on("code", "is neither the current code nor an unused recovery code")
    user.totp_enabled, user.totp_secret, user.recovery_codes = False, None, None
    return envelopes.success("two-factor login is off")
