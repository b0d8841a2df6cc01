"""The four response envelopes of the contract (section 3)."""
from __future__ import annotations

from typing import Any

from .errors import ProtocolError


def status(message: str, **fields: Any) -> dict:
    return {"type": "status", "data": {"message": message, **fields}}


def success(message: str, **fields: Any) -> dict:
    return {"type": "success", "data": {"message": message, **fields}}


def data(**fields: Any) -> dict:
    return {"type": "data", "data": fields}


def error(exc: ProtocolError) -> dict:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.fields:
        body["fields"] = exc.fields
    return {"type": "error", "data": body}
