"""People who log in, and the API tokens that devices and scripts use."""
from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._common import utcnow

ROLES = ("owner", "staff", "admin")


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # E-mail (contract section 15): the address, and the preferences. `notify_email` None is
    # the default (off for staff's site-wide mail; owners still get their own properties'
    # alerts); an owner who sets it to False hears nothing. Severity as an index of SEVERITIES.
    email: Mapped[str | None] = mapped_column(String(320))
    notify_email: Mapped[bool | None]
    notify_min_severity: Mapped[int] = mapped_column(default=2, server_default="2")
    # Two-factor login (contract section 18): the TOTP secret, encrypted like webhook secrets
    # (set at begin-2fa, in force once confirmed), and the SHA-256 digests of the unused
    # one-time recovery codes.
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_enabled: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    recovery_codes: Mapped[list | None] = mapped_column(JSON)
    totp_last_step: Mapped[int | None]  # the last 30-second step whose code was used (no replay)

    def brief(self) -> dict:
        return {"id": self.id, "fullName": self.full_name}


class ApiToken(db.Model):
    """Only the SHA-256 of a token is kept; the token itself is shown once when issued."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    label: Mapped[str | None] = mapped_column(String(100))
    last_used_at: Mapped[datetime | None]


class WebSession(db.Model):
    """A browser's login, kept on the server so that logging out really ends it: the cookie
    carries a random key, and only its SHA-256 is stored here."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(index=True)
    address: Mapped[str | None] = mapped_column(String(64))
