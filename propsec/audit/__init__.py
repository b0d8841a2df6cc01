"""The audit trail (contract section 16): who changed what, when and from where, kept so
that nobody can quietly edit it.

What it guarantees:
- an entry is written in the same transaction as the change it records (the dispatcher
  writes one for every successful changing query; logins, logouts, tokens, users and 2FA
  write theirs where they happen), so a change that commits always has its entry and a
  request that fails leaves none;
- entries are chained in `id` order: `hash` = SHA-256 of the previous entry's hash followed
  by the entry's canonical JSON. The chain is sealed by a background worker shortly after the
  commit (seal.py), in id order and only over final rows, so no request ever waits on it
  and nothing system-wide is locked;
- `verify()` (and `flask --app app verify-audit`) recomputes the chain and names the first
  entry that was altered, removed or moved.

Secrets are never recorded: fields such as passwords, codes and tokens are left out of
`detail`."""
from __future__ import annotations

import hashlib
import json

from .. import sql
from ..models import AuditEntry
from ..models._common import iso, utcnow

ZERO = "0" * 64
# Payload fields never written to the trail.
SECRET_FIELDS = frozenset({"password", "code", "otp", "secret", "token", "recoveryCode"})
# Payload fields naming the object a query acts on, in order of preference.
TARGET_FIELDS = ("alertId", "userId", "droneId", "equipmentId", "webhookId", "tokenId",
                 "crimeId", "cameraId")

_INSERT = sql.inserting(AuditEntry.__table__, "at", "actor", "action", "target", "property_id",
                        "detail", "address", returning_id=False, appends=True)


def record(action: str, *, actor: str | None, target=None, property_id: int | None = None,
           detail: dict | None = None, address: str | None = None, cursor=None) -> None:
    """Write one entry in the current transaction (the request's, or the session's)."""
    _INSERT.run(cursor or sql.in_transaction(), at=utcnow(), actor=actor, action=action[:80],
                target=None if target is None else str(target)[:200], property_id=property_id,
                detail=clean(detail or {}), address=(address or None) and address[:64])


def clean(detail: dict) -> dict:
    return {k: v for k, v in detail.items() if k not in SECRET_FIELDS}


def for_query(action: str, user_id: str, data: dict, answer: dict, target_property,
              address: str | None) -> None:
    """The entry of one successful changing query: its wire name as sent, the caller, the
    object it acted on (or created), the property it is about, and the validated payload."""
    created = answer.get("id") if isinstance(answer, dict) else None
    target = next((data[f] for f in TARGET_FIELDS if data.get(f) is not None), created)
    property_id = (target_property.id if target_property is not None
                   else data.get("propertyId") or (created if action.endswith("add-property") else None))
    detail = dict(data)
    if created is not None:
        detail["id"] = created
    record(action, actor=user_id, target=target, property_id=property_id, detail=detail,
           address=address)


def canonical(entry: dict) -> bytes:
    """The entry as get-audit returns it, without `hash`: sorted keys, no spaces, UTF-8."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chained(previous: str, entry: dict) -> str:
    return hashlib.sha256(previous.encode() + canonical(entry)).hexdigest()


def as_wire(row: AuditEntry) -> dict:
    return {"id": row.id, "at": iso(row.at), "actor": row.actor, "action": row.action,
            "target": row.target, "propertyId": row.property_id, "detail": row.detail,
            "address": row.address, "hash": row.hash}
