"""Password and API-token handling.

Passwords are hashed with Argon2id (argon2-cffi); hashes made earlier with werkzeug's scrypt
or pbkdf2 still verify and are replaced by Argon2 at the next successful login. Hashing is
slow on purpose, so under eventlet or gevent it runs in their thread pool instead of
stopping every other connection of the process meanwhile. API tokens are random and kept
only as SHA-256 digests (hashing them is fast and they are long enough not to need more)."""
from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import select, update
from werkzeug.security import check_password_hash

from . import audit
from .extensions import db
from .models import ApiToken, User
from .models._common import utcnow

TOKEN_PREFIX = "ps_"


_hasher = PasswordHasher()


def off_loop(fn, *args):
    """Run a slow CPU-bound call without holding up the other green threads."""
    try:
        mode = current_app.config.get("PROPSEC_ASYNC_MODE")
    except RuntimeError:  # (no app: the CLI before it has one, or a plain script)
        mode = None
    if mode == "eventlet":
        from eventlet import tpool

        return tpool.execute(fn, *args)
    if mode == "gevent":
        import gevent

        return gevent.get_hub().threadpool.apply(fn, args)
    return fn(*args)


def hash_password(password: str) -> str:
    return off_loop(_hasher.hash, password)


def _verify(stored: str, password: str) -> bool:
    if stored.startswith("$argon2"):
        try:
            return _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    return check_password_hash(stored, password)  # an older werkzeug hash


def password_matches(user: User | None, password: str) -> bool:
    """Whether `password` is the user's. An older kind of hash that matches is replaced by
    an Argon2 one (the caller commits)."""
    if user is None or not user.password_hash:
        # Spend the same effort for unknown users, so timing does not reveal who exists.
        off_loop(_verify, _DUMMY_HASH, password)
        return False
    if not off_loop(_verify, user.password_hash, password):
        return False
    if not user.password_hash.startswith("$argon2") or _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return True


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def new_token(user_id: str, label: str | None = None) -> tuple[str, ApiToken]:
    """A new API token row in the current transaction; the token itself is returned once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user_id, token_hash=token_digest(token), label=label)
    db.session.add(row)
    db.session.flush()
    return token, row


def issue_token(user_id: str) -> str:
    """A new API token from the command line (audited as `token-issued`)."""
    token, row = new_token(user_id, "command line")
    audit.record("token-issued", actor=None, target=row.id, detail={"userId": user_id})
    db.session.commit()
    return token


def revoke_tokens(user_id: str, actor: str | None = None) -> int:
    """Revoke every token of a user (the command line; audited as `token-revoked`)."""
    ids = db.session.scalars(select(ApiToken.id).where(
        ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))).all()
    if ids:
        db.session.execute(update(ApiToken).where(ApiToken.id.in_(ids)).values(revoked_at=utcnow()))
        for token_id in ids:
            audit.record("token-revoked", actor=actor, target=token_id, detail={"userId": user_id})
    db.session.commit()
    return len(ids)


def user_for_token(token: object) -> User | None:
    if not isinstance(token, str) or not 10 < len(token) < 200:
        return None
    return db.session.scalar(
        select(User).join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_digest(token), ApiToken.revoked_at.is_(None)))


_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))
