"""Webhook signing secrets, kept encrypted at rest.

A signature needs the secret itself (a hash would not do), so the database holds it encrypted
with Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under a key derived from
`PROPSEC_SECRET_KEY` with HKDF. A copy of the database alone does not reveal the secrets; the
secret key does, so it is kept out of the database (docs/security.md). Two-factor secrets
are kept the same way (twofactor.py).

Rotating the key: secrets are always sealed with the current key and opened with the current
or any of `PROPSEC_SECRET_KEY_PREVIOUS`; `reseal` (the `rotate-secrets` command) seals every
stored secret again with the current key, after which the previous keys can go."""
from __future__ import annotations

import base64
import hmac
import secrets
from functools import lru_cache
from hashlib import sha256

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

_SALT = b"propsec webhook secrets"
_INFO = b"fernet key v1"


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(
        secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _current() -> Fernet:
    return _fernet(current_app.config["SECRET_KEY"])


def _keys() -> MultiFernet:
    """The current key first (it seals), then the former ones (they only open)."""
    return MultiFernet([_current(), *(_fernet(k) for k in
                                      current_app.config.get("SECRET_KEY_FALLBACKS", ()))])


def seal(secret: str) -> str:
    return _current().encrypt(secret.encode()).decode()


def unseal(sealed: str) -> str:
    """The secret; `InvalidToken` when neither the current nor a previous key opens it."""
    return _keys().decrypt(sealed.encode()).decode()


def opens_with_current_key(sealed: str) -> bool:
    try:
        _current().decrypt(sealed.encode())
        return True
    except InvalidToken:
        return False


def reseal(sealed: str) -> str | None:
    """`sealed` sealed again with the current key (None when no known key opens it)."""
    try:
        return _keys().rotate(sealed.encode()).decode()
    except InvalidToken:
        return None


def signature(secret: str, body: bytes) -> str:
    """The X-Propsec-Signature header: sha256=<hex HMAC-SHA256 of the exact body>."""
    return "sha256=" + hmac.new(secret.encode(), body, sha256).hexdigest()
