"""Password and API-token handling. Tokens are random and kept only as SHA-256 digests."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db
from .models import ApiToken, User
from .models._common import utcnow

TOKEN_PREFIX = "ps_"


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def password_matches(user: User | None, password: str) -> bool:
    if user is None or not user.password_hash:
        # Spend the same effort for unknown users, so timing does not reveal who exists.
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(user.password_hash, password)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def issue_token(user_id: str) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user_id, token_hash=token_digest(token)))
    db.session.commit()
    return token


def revoke_tokens(user_id: str) -> int:
    result = db.session.execute(
        update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow()))
    db.session.commit()
    return result.rowcount


def user_for_token(token: object) -> User | None:
    if not isinstance(token, str) or not 10 < len(token) < 200:
        return None
    return db.session.scalar(
        select(User).join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_digest(token), ApiToken.revoked_at.is_(None)))


_DUMMY_HASH = generate_password_hash(secrets.token_hex(8))
