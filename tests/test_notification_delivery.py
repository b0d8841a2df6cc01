"""Webhooks and e-mail leaving real server processes (contract section 15): a local HTTP
receiver and a local SMTP server (aiosmtpd) in this process record what arrives.

Signature, headers and body; retries with the same delivery id until a 2xx, in order;
deactivation after 8 failures; a restart, and a kill -9 of one of two processes, with
deliveries pending: nothing lost, nothing sent twice; mail to the right people, retried
after a temporary failure."""
from __future__ import annotations

import hashlib
import hmac
import json
import signal
import time

import pytest
from receivers import MailBox, Receiver
from services import active_property, connect, ok, seed_users

from live import LiveServer

USERS = {"olive": "owner", "sam": "staff", "ada": "admin", "nora": "owner"}
FAST_RETRIES = "0.3,0.6,0.9"  # (the contract's delays are seconds to half an hour)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def server(tmp_path):
    s = LiveServer(tmp_path, PROPSEC_RETRY_SECONDS=FAST_RETRIES, PROPSEC_WEBHOOK_ALLOW_PRIVATE="1")
    seed_users(s, USERS)
    with s:
        yield s


def signed_by(secret: str, request: dict) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(request["headers"]["X-Propsec-Signature"], expected)


def test_a_delivery_is_signed_retried_with_one_id_and_delivered_once(server, receiver):
    staff, admin = connect(server.url, server.tokens["sam"]), connect(server.url, server.tokens["ada"])
    try:
        hook = ok(staff, "add-webhook", url=receiver.url, events=["events.alerts"])
        pid = active_property(admin)
        receiver.script = [500, 500]  # two failures, then 200
        alert = ok(staff, "add-alert", propertyId=pid, userId="olive", severity="critical",
                   reason="glass break")["id"]
        assert receiver.wait(lambda r: len(r.answered()) == 1, 20), receiver.requests
        time.sleep(1.5)  # past any further retry: nothing more
        tries = receiver.requests
        assert [t["status"] for t in tries] == [500, 500, 200]
        assert len({t["headers"]["X-Propsec-Delivery"] for t in tries}) == 1
        assert {t["body"] for t in tries} == {tries[0]["body"]}
        body = json.loads(tries[0]["body"])
        assert body | {"alertId": alert, "event": "events.alerts", "severity": "critical",
                       "reason": "glass break", "propertyId": pid} == body
        assert isinstance(body["eventId"], int) and body["timestamp"].endswith("Z")
        for t in tries:
            assert t["headers"]["Content-Type"] == "application/json"
            assert t["headers"]["X-Propsec-Event"] == "events.alerts"
            assert signed_by(hook["secret"], t)
        assert not signed_by("another secret", tries[0])
        log = ok(staff, "get-webhook-deliveries", webhookId=hook["id"])["deliveries"]
        assert [(d["attempt"], d["status"]) for d in log] == [(3, 200), (2, 500), (1, 500)]
        assert {d["eventId"] for d in log} == {body["eventId"]}
        [listed] = ok(staff, "get-webhooks")["webhooks"]
        assert (listed["active"], listed["failures"]) == (True, 0)
    finally:
        staff.disconnect()
        admin.disconnect()


def test_one_webhook_gets_its_events_in_order_even_across_failures(server, receiver):
    admin = connect(server.url, server.tokens["ada"])
    try:
        pid = active_property(admin)
        ok(admin, "add-webhook", url=receiver.url, events=["events.all"])
        receiver.script = [503]
        ids = [ok(admin, "add-alert", propertyId=pid, userId="olive")["id"] for _ in range(5)]
        assert receiver.wait(lambda r: len(r.answered()) >= 5, 20)
        time.sleep(1)
        delivered = [json.loads(t["body"]) for t in receiver.answered()]
        assert [(d["event"], d.get("alertId")) for d in delivered] == [
            ("events.alerts", alert_id) for alert_id in ids], delivered
        event_ids = [d["eventId"] for d in delivered]
        assert event_ids == sorted(event_ids)
    finally:
        admin.disconnect()


def test_eight_failures_in_a_row_stop_the_webhook(tmp_path, receiver):
    server = LiveServer(tmp_path, PROPSEC_RETRY_SECONDS="0.05", PROPSEC_WEBHOOK_ALLOW_PRIVATE="1")
    seed_users(server, USERS)
    receiver.default = 500
    with server:
        admin = connect(server.url, server.tokens["ada"])
        try:
            hook = ok(admin, "add-webhook", url=receiver.url, events=["events.alerts"])
            ok(admin, "add-alert", propertyId=active_property(admin), userId="olive")
            assert receiver.wait(lambda r: len(r.requests) >= 8, 20)
            time.sleep(1)
            assert len(receiver.requests) == 8
            [listed] = ok(admin, "get-webhooks")["webhooks"]
            assert (listed["active"], listed["failures"]) == (False, 8)
            log = ok(admin, "get-webhook-deliveries", webhookId=hook["id"], limit=3)["deliveries"]
            assert [d["attempt"] for d in log] == [8, 7, 6]
        finally:
            admin.disconnect()


def test_pending_deliveries_survive_a_restart_and_are_sent_once(server, receiver):
    admin = connect(server.url, server.tokens["ada"])
    ok(admin, "add-webhook", url=receiver.url, events=["events.alerts"])
    pid = active_property(admin)
    receiver.default = 500
    ids = [ok(admin, "add-alert", propertyId=pid, userId="olive")["id"] for _ in range(3)]
    assert receiver.wait(lambda r: len(r.requests) >= 1, 10)
    admin.disconnect()
    server.stop()
    receiver.default = 200
    server.start()  # nobody connects: the workers start with the server
    # (a lease the stopped process held runs out first: at most 15 s)
    assert receiver.wait(lambda r: len(r.answered()) >= 3, 40)
    time.sleep(1.5)
    assert [json.loads(t["body"])["alertId"] for t in receiver.answered()] == ids


def test_kill_9_of_one_of_two_processes_loses_and_repeats_nothing(tmp_path, receiver):
    from services import cluster

    with cluster(tmp_path, "webhooks", USERS, 2, PROPSEC_RETRY_SECONDS=FAST_RETRIES,
                 PROPSEC_WEBHOOK_ALLOW_PRIVATE="1") as (a, b):
        admin = connect(b.url, b.tokens["ada"])
        try:
            ok(admin, "add-webhook", url=receiver.url, events=["events.alerts"])
            pid = active_property(admin)
            receiver.default = 500
            ids = [ok(admin, "add-alert", propertyId=pid, userId="olive")["id"] for _ in range(4)]
            assert receiver.wait(lambda r: len(r.requests) >= 2, 10)
            a.stop(signal.SIGKILL)  # whichever held the webhook's queue, one process is gone
            receiver.default = 200
            assert receiver.wait(lambda r: len(r.answered()) >= 4, 45), receiver.requests
            time.sleep(2)
            assert [json.loads(t["body"])["alertId"] for t in receiver.answered()] == ids
        finally:
            admin.disconnect()


# -- e-mail -------------------------------------------------------------------------------------

def test_mail_reaches_the_owner_and_opted_in_staff_once_and_is_retried(tmp_path):
    box = MailBox()
    server = LiveServer(tmp_path, PROPSEC_SMTP_URL=box.url, PROPSEC_RETRY_SECONDS=FAST_RETRIES,
                        PROPSEC_PUBLIC_URL="https://guard.example.net")
    seed_users(server, USERS)
    # the CLI sets an address (once, to show it works); the rest are set directly, faster
    server.flask("create-user", "olive", "--name", "Olive", "--role", "owner",
                 "--email", "olive@example.net")
    from propsec.extensions import db
    from propsec.models import User

    with server.local_app().app_context():
        for uid in ("sam", "ada", "nora"):
            db.session.get(User, uid).email = f"{uid}@example.net"
        db.session.commit()
        db.session.remove()
    try:
        with server:
            sam = connect(server.url, server.tokens["sam"])
            ada = connect(server.url, server.tokens["ada"])
            ok(sam, "set-notification-preferences", email=True, minSeverity="critical")
            pid = active_property(ada, owner="olive", location="Olive Lane 1")
            box.refuse = 1  # the first delivery attempt meets a temporary failure
            ok(sam, "add-alert", propertyId=pid, userId="x", severity="high", reason="gate")
            ok(sam, "add-alert", propertyId=pid, userId="x", severity="critical", reason="glass")
            ok(sam, "add-alert", propertyId=pid, userId="x", severity="low", reason="leaf")
            assert box.wait(lambda b: len(b.messages) >= 3, 20), box.messages
            time.sleep(1.5)
            olive = box.to("olive@example.net")
            assert sorted(m["Subject"] for m in olive) == sorted(
                ["[propsec] HIGH alert at Olive Lane 1", "[propsec] CRITICAL alert at Olive Lane 1"])
            [to_sam] = box.to("sam@example.net")
            assert to_sam["Subject"] == "[propsec] CRITICAL alert at Olive Lane 1"
            assert box.to("ada@example.net") == [] and box.to("nora@example.net") == []
            text = to_sam.get_body(("plain",)).get_content()
            html = to_sam.get_body(("html",)).get_content()
            assert "glass" in text and "https://guard.example.net/" in text
            assert "https://guard.example.net/" in html
            sam.disconnect()
            ada.disconnect()
    finally:
        box.close()
