"""Password and API-token handling. Tokens are random and kept only as SHA-256 digests."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit
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


def issue_token(user_id: str, actor: str | None = None, address: str | None = None) -> str:
    """A new API token for `user_id` (audited as `token-issued`; `actor` None: the CLI)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user_id, token_hash=token_digest(token))
    db.session.add(row)
    db.session.flush()
    audit.record("token-issued", actor=actor, target=row.id, detail={"userId": user_id},
                 address=address)
    db.session.commit()
    return token


def revoke_tokens(user_id: str, actor: str | None = None) -> int:
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


_DUMMY_HASH = generate_password_hash(secrets.token_hex(8))
