"""Two-factor login with time-based one-time codes (RFC 6238: 30 s, 6 digits, SHA-1), as any
authenticator app reads them, plus one-time recovery codes.

The shared secret is stored encrypted (the webhook secrets' Fernet key, notify/secrets.py),
recovery codes only as SHA-256 digests, and the last accepted time step is remembered so a
code seen over someone's shoulder cannot be used again. The QR code for enrolment is drawn
here, as SVG (segno), and shown as a data URI: no external service sees the secret."""
from __future__ import annotations

import base64
import hashlib
import io
import logging
import secrets
import time

import pyotp
import segno
from cryptography.fernet import InvalidToken

from .models import User
from .notify.secrets import seal, unseal

log = logging.getLogger("propsec.twofactor")

ISSUER = "propsec"
RECOVERY_CODES = 8
STEP = 30


def new_secret() -> str:
    return pyotp.random_base32()


def uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.id, issuer_name=ISSUER)


def qr_data_uri(text: str) -> str:
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=4, border=2, dark="#111827")
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace("-", "").encode()).hexdigest()


def new_recovery_codes() -> tuple[list[str], list[str]]:
    """(codes to show once, digests to keep)."""
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    return codes, [_digest(c) for c in codes]


def begin(user: User) -> str:
    """A new pending secret (not in force until confirmed)."""
    secret = new_secret()
    user.totp_secret = seal(secret)
    return secret


def check(user: User, code: str | None, *, pending: bool = False, recovery: bool = True) -> bool:
    """Whether `code` is the user's current one (within one step either way), not used
    before; or, with `recovery`, one of their unused recovery codes (then used up)."""
    if not code or not user.totp_secret or (not pending and not user.totp_enabled):
        return False
    code = code.strip().replace(" ", "")
    if code.isdigit() and len(code) == 6:
        try:
            totp = pyotp.TOTP(unseal(user.totp_secret))
        except InvalidToken:  # the secret key changed without PROPSEC_SECRET_KEY_PREVIOUS
            log.error("user %s: the two-factor secret cannot be opened with the configured "
                      "keys; recovery codes still work", user.id)
            return False
        now = int(time.time())
        for offset in (-1, 0, 1):
            step = now // STEP + offset
            if totp.at(step * STEP) == code and (user.totp_last_step or -1) < step:
                user.totp_last_step = step
                return True
        return False
    if recovery and user.recovery_codes:
        digest = _digest(code)
        if digest in user.recovery_codes:
            user.recovery_codes = [d for d in user.recovery_codes if d != digest]
            return True
    return False


def required_for(user: User, setting: str) -> bool:
    """PROPSEC_REQUIRE_2FA: none, admin (admins only) or staff (staff and admins)."""
    if setting == "admin":
        return user.role == "admin"
    if setting == "staff":
        return user.role in ("staff", "admin")
    return False
