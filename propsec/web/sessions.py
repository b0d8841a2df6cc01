"""Browser sessions that end when they are ended (contract section 18).

A signed cookie alone cannot be revoked: a copy taken before logout would stay valid. So a
login also creates a row in `web_sessions` and puts a random key in the cookie; every page
request and every Socket.IO connect made with the cookie must find that row still open.
Logging out closes the row (or, "everywhere", every open row of the user): the cookie, and
every copy of it, is dead on every process at once. Live sockets of an ended session are
cut right away in the process that ended it and within a couple of seconds in the others
(the namespace's sweeper asks the database what ended since it last looked)."""
from __future__ import annotations

import hashlib
import secrets

from flask import request, session
from sqlalchemy import select, update

from ..extensions import db
from ..models import WebSession
from ..models._common import utcnow

KEY = "sk"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def begin(user_id: str) -> None:
    """After a successful login (the cookie session was just cleared)."""
    key = secrets.token_urlsafe(32)
    db.session.add(WebSession(id=digest(key), user_id=user_id, address=request.remote_addr))
    session[KEY] = key


def current_digest() -> str | None:
    key = session.get(KEY)
    return digest(key) if isinstance(key, str) else None


def is_open(user_id: str, session_digest: str | None) -> bool:
    if session_digest is None:
        return False
    row = db.session.get(WebSession, session_digest)
    return row is not None and row.ended_at is None and row.user_id == user_id


def end(session_digest: str | None, user_id: str, everywhere: bool = False) -> list[str]:
    """Close this session (or all of the user's); returns the digests closed."""
    query = select(WebSession.id).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
    if not everywhere:
        query = query.where(WebSession.id == session_digest)
    closed = list(db.session.scalars(query))
    if closed:
        db.session.execute(update(WebSession).where(WebSession.id.in_(closed)).values(ended_at=utcnow()))
    return closed


def ended_since(moment) -> set[str]:
    return set(db.session.scalars(select(WebSession.id).where(WebSession.ended_at >= moment)))
