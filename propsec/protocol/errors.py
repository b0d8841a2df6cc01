"""Typed protocol errors; the dispatcher turns each into an error envelope."""
from __future__ import annotations


class ProtocolError(Exception):
    code = "internal_error"
    default_message = "internal error"

    def __init__(self, message: str | None = None, fields: dict[str, str] | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.fields = fields


class Unauthenticated(ProtocolError):
    code, default_message = "unauthenticated", "authentication required"


class Forbidden(ProtocolError):
    code, default_message = "forbidden", "you may not do this"


class ValidationFailed(ProtocolError):
    code, default_message = "validation_error", "invalid request"

    def __init__(self, fields: dict[str, str], message: str | None = None):
        names = ", ".join(sorted(fields))
        super().__init__(message or f"invalid value for {names}", fields)

    @classmethod
    def on(cls, field: str, reason: str) -> "ValidationFailed":
        return cls({field: reason})


class NotFound(ProtocolError):
    code, default_message = "not_found", "not found"


class Conflict(ProtocolError):
    code, default_message = "conflict", "conflicts with the current state"


class UnknownQuery(ProtocolError):
    code, default_message = "unknown_query", "unknown query"


class RateLimited(ProtocolError):
    code, default_message = "rate_limited", "too many requests; slow down"


class InternalError(ProtocolError):
    pass


ERROR_CODES = tuple(cls.code for cls in (Unauthenticated, Forbidden, ValidationFailed, NotFound,
                                         Conflict, UnknownQuery, RateLimited, InternalError))
