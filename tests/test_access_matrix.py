"""Every query × every role, generated from the declarations.

Two halves: (1) each declaration's rule equals what contract section 7 says, written out
here independently; (2) each rule is enforced, for every role, against a live app. A new
query without an entry below fails both halves, so none can ship without its rule."""
from __future__ import annotations

import pytest

import propsec.handlers  # noqa: F401  (registers every declaration)
from propsec.protocol.access import Allow
from propsec.protocol.registry import QUERY_PREFIX, declarations

A, O, S, ST, AD = Allow.ANYONE, Allow.OWNER, Allow.SELF, Allow.STAFF, Allow.ADMIN

# Contract section 7, query by query.
CONTRACT_RULES = {
    "session": A, "subscribe": A, "unsubscribe": A, "get-user": A, "get-users": A,
    "get-equipment-types": A, "get-tiers": A, "get-crimes-in-area": A, "get-events": A,
    "add-property": A, "get-properties": A, "get-map": A,
    "get-property": O, "get-property-detailed": O, "get-equipment": O, "get-free-drones": O,
    "add-equipment": O, "remove-equipment": O, "get-allowed-users": O, "add-allowed-user": O,
    "remove-allowed-user": O, "get-alerts": O, "add-alert": O, "get-weekly-visitors": O,
    "get-scanned-visitors": O, "get-auth-entries": O, "request-remove-property": O,
    "dispatch-drone": O, "recall-drone": O,
    "get-user-properties": S,
    "get-dispatched-drones": ST, "get-pending-properties": ST, "search-pending-properties": ST,
    "search-removal-properties": ST, "get-requested-remove-properties": ST, "add-visitor": ST,
    "add-auth-entry": ST, "add-crime": ST, "acknowledge-alert": ST,
    # (v2) section 13
    "get-open-alerts": A, "assign-alert": ST, "resolve-alert": ST,
    # (v2) section 14
    "set-arming": O,
    # (v2) section 15: any user for their own; the handlers hold owners to their properties
    # (add-webhook) and to their own webhooks (the others', admins aside, are not_found)
    "add-webhook": A, "get-webhooks": A, "remove-webhook": A, "get-webhook-deliveries": A,
    "get-notification-preferences": A, "set-notification-preferences": A,
    # (v2) section 16
    "get-audit": AD,
    # (v2) section 18
    "create-user": AD, "issue-token": AD, "get-tokens": AD, "revoke-token": AD,
    "begin-2fa": A, "confirm-2fa": A, "disable-2fa": A,
    "remove-property": AD, "approve-remove-property": AD, "change-property-status": AD,
    "change-property-tier": AD, "change-property-size": AD, "change-property-coordinates": AD,
}


def short(name: str) -> str:
    return name.removeprefix(QUERY_PREFIX)


def sample(name: str, site: dict, own: bool, caller: str) -> dict:
    """A valid payload; `own` picks the caller's property (P1 is owner's) or a neighbour's."""
    pid = site["p1"] if own else site["p2"]
    drone = site["drones"][0] if own else site["other_drone"]
    camera = site["camera"] if own else site["other_camera"]
    samples = {
        "session": {}, "subscribe": {"id": "events.alerts"}, "unsubscribe": {"id": "events.alerts"},
        "get-user": {"userId": "staff"}, "get-users": {}, "get-equipment-types": {},
        "get-tiers": {}, "get-crimes-in-area": {"propertyId": pid}, "get-events": {},
        "add-property": {"location": "9 Mill Lane", "tier": 1, "x": 5, "y": 5,
                         "description": "", "clientId": caller},
        "get-properties": {}, "get-map": {},
        "get-user-properties": {"userId": caller if own else "neighbour"},
        "add-equipment": {"propertyId": pid, "equipmentType": 4, "description": "siren"},
        "remove-equipment": {"propertyId": pid, "equipmentId": camera},
        "add-allowed-user": {"propertyId": pid, "userId": "staff"},
        "remove-allowed-user": {"propertyId": pid, "userId": "staff"},
        "add-alert": {"propertyId": pid, "userId": caller},
        "get-scanned-visitors": {"propertyId": pid, "from": "2026-01-01", "to": "2026-01-31"},
        "recall-drone": {"droneId": drone},
        "add-visitor": {"propertyId": pid, "userId": "v1", "cameraId": camera},
        "add-auth-entry": {"propertyId": pid, "userId": "v1"},
        "acknowledge-alert": {"alertId": site["alert"]},
        "assign-alert": {"alertId": site["alert"], "userId": "staff"},
        "resolve-alert": {"alertId": site["alert"], "note": "checked, a fox"},
        "set-arming": {"propertyId": pid, "mode": "away"},
        "add-webhook": {"url": "https://hooks.example.net/x", "events": ["events.alerts"],
                        "propertyId": pid},
        "set-notification-preferences": {"email": True, "minSeverity": "low"},
        "remove-webhook": {"webhookId": site["webhook"]},
        "create-user": {"userId": f"new-{caller}", "fullName": "New Person", "role": "owner"},
        "issue-token": {"userId": "owner", "label": "door scanner"},
        "get-tokens": {"userId": "owner"},
        "revoke-token": {"tokenId": site["token"]},
        "confirm-2fa": {"code": "123456"}, "disable-2fa": {"code": "123456"},
        "get-webhook-deliveries": {"webhookId": site["webhook"]},
        "change-property-status": {"propertyId": pid, "status": "INACTIVE"},
        "change-property-tier": {"propertyId": pid, "tier": 3},
        "change-property-size": {"propertyId": pid, "width": 30, "height": 40},
        "change-property-coordinates": {"propertyId": pid, "x": 1, "y": 2},
    }
    no_payload = {"get-dispatched-drones", "get-pending-properties", "search-pending-properties",
                  "search-removal-properties", "get-requested-remove-properties",
                  "get-open-alerts", "get-webhooks", "get-notification-preferences", "get-audit",
                  "begin-2fa"}
    if name in no_payload:
        return {}
    return samples.get(name, {"propertyId": pid})


# Contract section 15: an owner's webhook naming someone else's property is a validation
# error on `propertyId`, not `forbidden`.
REFUSED_AS_INVALID = {("add-webhook", "owner", False): "propertyId"}


def expected_forbidden(rule: Allow, role: str, own: bool) -> bool:
    if role not in rule.roles:
        return True
    return role == "owner" and not own and rule in (Allow.OWNER, Allow.SELF)


def test_every_declaration_follows_the_contract():
    declared = {short(d.name): d.allow for d in declarations()}
    assert declared == CONTRACT_RULES


CALLERS = [("owner", True), ("owner", False), ("staff", True), ("admin", True)]


@pytest.mark.parametrize("decl", declarations(), ids=lambda d: short(d.name))
def test_rule_is_enforced_for_every_role(decl, connect, site, app):
    from propsec.extensions import db
    from propsec.models import DRONE, Alert, ApiToken, Equipment, Webhook

    with app.app_context():
        other = Equipment(property_id=site["p2"], type_id=DRONE, description="their drone")
        alert = Alert(property_id=site["p1"], user_id="x", reason="test")
        hook = Webhook(user_id="owner", url="https://hooks.example.net/x", events=["events.all"],
                       property_id=site["p1"], secret="(sealed)")
        spare = ApiToken(user_id="owner", token_hash="0" * 64, label="spare")
        db.session.add_all([other, alert, hook, spare])
        db.session.commit()
        site = {**site, "other_drone": other.id, "alert": alert.id, "webhook": hook.id,
                "token": spare.id}
    # Forbidden callers first: a refused request changes nothing, so order matters only
    # for the allowed ones, which may legitimately meet a conflict after an earlier change.
    cases = sorted(CALLERS, key=lambda c: not expected_forbidden(decl.allow, *c))
    for user_id, own in cases:
        client = connect(user_id)
        envelope = client.call(decl.name, sample(short(decl.name), site, own, user_id))
        code = envelope["data"].get("code") if envelope["type"] == "error" else None
        invalid = REFUSED_AS_INVALID.get((short(decl.name), user_id, own))
        if invalid:
            assert code == "validation_error" and invalid in envelope["data"]["fields"], envelope
        elif expected_forbidden(decl.allow, user_id, own):
            assert code == "forbidden", (user_id, own, envelope)
        else:
            assert code not in ("forbidden", "validation_error", "internal_error"), \
                (user_id, own, envelope)
