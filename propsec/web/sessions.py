"""The cookie session interface, made cheap to open where there is nothing to open.

Flask-SocketIO pushes a request context, and so opens the session, for every Socket.IO
event. Flask then builds a new signing serializer and parses every header of the
connection's WSGI environment looking for cookies, which together cost about a tenth of a
`get-property` round trip (docs/performance.md, fix 5). Here the signer is built once per
set of keys, and a request without a Cookie header (devices and scripts using tokens) gets
its empty session without the header walk. Cookies are signed and checked as before."""
from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class SessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._signer: tuple[tuple, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = self._signer
        if cached is None or cached[0] != keys:
            cached = self._signer = (keys, super().get_signing_serializer(app))
        return cached[1]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if "HTTP_COOKIE" not in request.environ and self.get_signing_serializer(app) is not None:
            return self.session_class()
        return super().open_session(app, request)
