"""The audit trail (contract section 16): one entry per successful change, in its
transaction; none for a failure or a read; a hash chain sealed in id order that
`verify-audit` checks, naming what was altered, removed or moved. In-process, on every
configured database."""
from __future__ import annotations

import hashlib
import json

import pytest
from helpers import expect, expect_error
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)
from sqlalchemy import select, update

from propsec.audit import seal
from propsec.extensions import db
from propsec.models import AuditEntry, AuditSeal


def entries(app) -> list[dict]:
    with app.app_context():
        from propsec.audit import as_wire

        rows = [as_wire(r) for r in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        db.session.remove()
        return rows


def sealed(app):
    with app.app_context():
        seal.seal_all()
        db.session.remove()


def verify_cli(app):
    return app.test_cli_runner().invoke(args=["verify-audit"])


def test_each_change_writes_one_entry_with_actor_target_and_property(app, clients, site):
    owner, staff, admin = clients["owner"], clients["staff"], clients["admin"]
    before = len(entries(app))
    new = expect(owner.call("add-property", location="5 Audit Row", tier=1, x=900, y=900,
                            description="", clientId="owner"), "success")["id"]
    alert = expect(staff.call("add-alert", propertyId=site["p1"], userId="badge-7"), "success")["id"]
    expect(staff.call("acknowledge-alert", alertId=alert), "success")
    expect(owner.call("add-equipment-property", propertyId=site["p1"], equipmentType=4,
                      description="siren"), "data")  # an alias: recorded as sent
    expect(admin.call("change-property-status", propertyId=new, status="ACTIVE"), "success")
    got = entries(app)[before:]
    assert [(e["actor"], e["action"], e["target"], e["propertyId"]) for e in got] == [
        ("owner", "queries.add-property", str(new), new),
        ("staff", "queries.add-alert", "badge-7", site["p1"]),
        ("staff", "queries.acknowledge-alert", str(alert), site["p1"]),
        ("owner", "queries.add-equipment-property", got[3]["target"], site["p1"]),
        ("admin", "queries.change-property-status", None, new)]
    assert got[0]["detail"] | {"location": "5 Audit Row", "id": new} == got[0]["detail"]
    assert got[1]["detail"]["id"] == alert
    assert all(e["at"].endswith("Z") for e in got)


def test_failures_and_reads_write_nothing(app, clients, site):
    owner, staff = clients["owner"], clients["staff"]
    before = entries(app)
    expect_error(owner.call("add-alert", propertyId=site["p2"], userId="x"), "forbidden")
    expect_error(staff.call("add-alert", propertyId=site["p1"], userId="x", severity="loud"),
                 "validation_error", "severity")
    expect_error(staff.call("acknowledge-alert", alertId=999_999), "not_found")
    expect(staff.call("get-map"), "data")
    expect(staff.call("get-open-alerts"), "data")
    assert entries(app) == before


def test_the_chain_is_sealed_in_id_order_and_verifies(app, clients, site):
    staff = clients["staff"]
    for n in range(5):
        expect(staff.call("add-alert", propertyId=site["p1"], userId=f"u{n}", reason="héllo ✓"),
               "success")
    sealed(app)
    listed = expect(clients["admin"].call("get-audit", limit=1000), "data")["entries"]
    assert listed == entries(app) and len(listed) >= 5
    # the contract's recipe, computed here independently of propsec.audit
    previous = "0" * 64
    for entry in listed:
        body = {k: v for k, v in entry.items() if k != "hash"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        previous = hashlib.sha256(previous.encode() + text.encode("utf-8")).hexdigest()
        assert entry["hash"] == previous
    assert "héllo ✓" in text  # non-ASCII as UTF-8, not escaped
    result = verify_cli(app)
    assert result.exit_code == 0 and result.output.strip() == f"ok {len(listed)} entries"


def test_get_audit_filters_and_pages_oldest_first(app, clients, site):
    staff, admin = clients["staff"], clients["admin"]
    expect(staff.call("add-alert", propertyId=site["p1"], userId="a"), "success")
    expect(staff.call("add-alert", propertyId=site["p2"], userId="b"), "success")
    expect(admin.call("set-arming", propertyId=site["p2"], mode="home"), "success")
    audit = lambda **f: expect(admin.call("get-audit", **f), "data")["entries"]  # noqa: E731
    assert [e["actor"] for e in audit(propertyId=site["p2"])] == ["staff", "admin"]
    assert [e["action"] for e in audit(actor="admin")] == ["queries.set-arming"]
    assert len(audit(action="queries.add-alert")) == 2
    first, *rest = audit()
    assert audit(since=first["id"]) == rest
    assert audit(limit=1) == [first]
    expect_error(admin.call("get-audit", limit=1001), "validation_error", "limit")
    # paging back from the newest (`before`): the entries just below it, oldest first
    everything = [first, *rest]
    newest = everything[-1]["id"] + 1
    assert audit(before=newest, limit=2) == everything[-2:]
    assert audit(before=everything[-2]["id"], limit=2) == everything[-4:-2]
    assert audit(before=newest, limit=1000) == everything
    assert audit(before=everything[-1]["id"], since=first["id"]) == everything[1:-1]
    assert [e["action"] for e in audit(before=newest, actor="admin")] == ["queries.set-arming"]
    expect_error(admin.call("get-audit", before=-1), "validation_error", "before")


@pytest.mark.parametrize("tamper", ["alter", "delete", "swap", "unseal-last", "alter-seal",
                                    "drop-seal"])
def test_verify_audit_names_what_was_tampered_with(app, clients, site, tamper):
    staff = clients["staff"]
    for n in range(4):
        expect(staff.call("add-alert", propertyId=site["p1"], userId=f"u{n}"), "success")
    sealed(app)
    ids = [e["id"] for e in entries(app)]
    with app.app_context():
        table = AuditEntry.__table__
        if tamper == "alter":
            db.session.execute(update(table).where(table.c.id == ids[1]).values(actor="someone-else"))
            named = ids[1]
        elif tamper == "delete":
            db.session.execute(table.delete().where(table.c.id == ids[2]))
            named = ids[3]
        elif tamper == "swap":
            a, b = (db.session.execute(select(table.c.detail, table.c.actor).where(table.c.id == i)).one()
                    for i in ids[1:3])
            db.session.execute(update(table).where(table.c.id == ids[1]).values(detail=b.detail))
            db.session.execute(update(table).where(table.c.id == ids[2]).values(detail=a.detail))
            named = ids[1]
        elif tamper == "alter-seal":  # (seals live in a table of their own)
            db.session.execute(update(AuditSeal.__table__).where(AuditSeal.id == ids[1])
                               .values(hash="0" * 64))
            named = ids[1]
        elif tamper == "drop-seal":  # the chain through it no longer holds at the next one
            db.session.execute(AuditSeal.__table__.delete().where(AuditSeal.id == ids[1]))
            named = ids[2]
        else:
            db.session.execute(AuditSeal.__table__.delete().where(AuditSeal.id == ids[-1]))
            named = ids[-1]
        db.session.commit()
        db.session.remove()
    result = verify_cli(app)
    assert result.exit_code == 1
    assert f"entry {named}" in result.output or f"({named})" in result.output, result.output


def test_a_seal_found_ahead_of_the_cursor_does_not_stop_the_seal(app, clients, site):
    """A seal row for an entry the cursor has not passed (a backup restored, the cursor
    reset by hand) is replaced by the chain's own, and sealing goes on."""
    staff = clients["staff"]
    for n in range(3):
        expect(staff.call("add-alert", propertyId=site["p1"], userId=f"s{n}"), "success")
    ids = [e["id"] for e in entries(app)]
    with app.app_context():
        db.session.add(AuditSeal(id=ids[1], hash="f" * 64))
        db.session.commit()
        db.session.remove()
    sealed(app)
    assert all(e["hash"] and e["hash"] != "f" * 64 for e in entries(app))
    result = verify_cli(app)
    assert result.exit_code == 0 and result.output.strip() == f"ok {len(ids)} entries"


def test_logins_and_logouts_are_recorded(app):
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        from propsec.models import User
        from propsec.security import hash_password

        db.session.get(User, "staff").password_hash = hash_password("right-password")
        db.session.commit()
        db.session.remove()
    web = app.test_client()
    assert web.post("/login", data={"username": "staff", "password": "wrong"}).status_code == 401
    assert web.post("/login", data={"username": "staff", "password": "right-password"}).status_code == 302
    assert web.post("/logout").status_code == 302
    got = [(e["action"], e["actor"], e["target"]) for e in entries(app)][-3:]
    assert got == [("login-failed", None, "staff"), ("login", "staff", "staff"),
                   ("logout", "staff", "staff")]
    assert all("right-password" not in json.dumps(e) for e in entries(app))
