"""Webhook and e-mail queries and what the log turns into notification work (contract 15),
in-process on every configured database. Sending is tested against real servers in
test_notification_delivery.py."""
from __future__ import annotations

import socket

import pytest
from helpers import expect, expect_error
from receivers import Receiver
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)
from sqlalchemy import select

from propsec.extensions import db
from propsec.models import MailMessage, User, Webhook, WebhookDelivery
from propsec.notify import addresses, fanout, secrets

HOOK = "https://hooks.example.net/propsec"


def add_hook(client, **fields):
    return client.call("add-webhook", {"url": HOOK, "events": ["events.alerts"], **fields})


def fan_out(app) -> None:
    with app.app_context():
        while fanout.step() == 0:
            pass
        db.session.remove()


def deliveries(app) -> list[tuple[int, str]]:
    with app.app_context():
        rows = db.session.execute(select(WebhookDelivery.webhook_id, WebhookDelivery.event)
                                  .order_by(WebhookDelivery.event_id, WebhookDelivery.webhook_id)).all()
        db.session.remove()
        return [tuple(r) for r in rows]


@pytest.fixture
def started(app):
    """The fan-out cursor placed at the current end of the log (as at a first start)."""
    fan_out(app)
    return app


@pytest.mark.parametrize("url", ["ftp://example.net/x", "not a url", "http://", "https://:80/",
                                 "http://user:pw@example.net/", "http://example.net:99999/",
                                 "https://example.net/" + "x" * 1990, 5, None, ["http://x"],
                                 "http://" + "a" * 64 + ".example.net/", "http://a..example.net/"])
def test_a_bad_url_is_a_validation_error_naming_url(clients, url):
    expect_error(clients["staff"].call("add-webhook", url=url, events=["events.alerts"]),
                 "validation_error", "url")
    assert expect(clients["staff"].call("get-webhooks"), "data")["webhooks"] == []


@pytest.mark.parametrize("events", [[], ["events.nothing"], "events.alerts", [3], None])
def test_unknown_or_malformed_events_are_a_validation_error_naming_events(clients, events):
    expect_error(clients["staff"].call("add-webhook", url=HOOK, events=events),
                 "validation_error", "events")


@pytest.mark.parametrize("field, value", [("minSeverity", "urgent"), ("minSeverity", 2),
                                          ("propertyId", "twelve"), ("propertyId", True)])
def test_other_bad_fields_are_named(clients, field, value):
    expect_error(add_hook(clients["staff"], **{field: value}), "validation_error", field)


def test_a_2000_character_url_is_accepted_and_the_secret_shown_once(app, clients):
    url = "https://hooks.example.net/" + "p" * (2000 - len("https://hooks.example.net/"))
    added = expect(clients["staff"].call("add-webhook", url=url, events=["events.all"]),
                   "success", "id", "secret")
    [hook] = expect(clients["staff"].call("get-webhooks"), "data")["webhooks"]
    assert hook == {"id": added["id"], "url": url, "events": ["events.all"], "propertyId": None,
                    "minSeverity": None, "active": True, "failures": 0, "userId": "staff"}
    assert added["secret"] not in str(hook)
    with app.app_context():
        stored = db.session.get(Webhook, added["id"]).secret
        assert added["secret"] not in stored  # encrypted at rest
        assert secrets.unseal(stored) == added["secret"]


def test_owners_name_one_of_their_properties(clients, site):
    owner = clients["owner"]
    expect_error(add_hook(owner), "validation_error", "propertyId")
    expect_error(add_hook(owner, propertyId=site["p2"]), "validation_error", "propertyId")
    expect_error(add_hook(owner, propertyId=999_999), "not_found")
    expect(add_hook(owner, propertyId=site["p1"]), "success", "id", "secret")
    expect(add_hook(clients["staff"]), "success")  # staff: site-wide
    expect(add_hook(clients["staff"], propertyId=site["p2"]), "success")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "http://10.1.2.3/x",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/x",
                                 "http://192.168.0.5/", "http://[::ffff:127.0.0.1]/",
                                 "http://localhost:9/x", "http://0.0.0.0/"])
def test_owners_may_not_point_at_private_addresses(app, clients, site, url):
    owner = clients["owner"]
    expect_error(owner.call("add-webhook", url=url, events=["events.alerts"], propertyId=site["p1"]),
                 "validation_error", "url")
    expect(clients["staff"].call("add-webhook", url=url, events=["events.alerts"]), "success")
    app.config["PROPSEC_WEBHOOK_ALLOW_PRIVATE"] = True
    expect(owner.call("add-webhook", url=url, events=["events.alerts"], propertyId=site["p1"]),
           "success")


class FlippingResolver:
    """Stands in for DNS for one name: answers `first` to the first `flip_after` lookups and
    `later` to the rest (a rebinding attacker's name); other names resolve as usual."""

    def __init__(self, monkeypatch, name: str, first: str, later: str, flip_after: int = 1):
        self.name, self.lookups = name, 0
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            if host != self.name:
                return real(host, port, *args, **kwargs)
            address = first if self.lookups < flip_after else later
            self.lookups += 1
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_that_does_not_resolve_yet_is_accepted_and_checked_again_at_send(clients, site, monkeypatch):
    owner = clients["owner"]
    url = "http://not-yet.invalid/hook"
    expect(owner.call("add-webhook", url=url, events=["events.alerts"], propertyId=site["p1"]),
           "success")
    # later it resolves to loopback: the send is refused before any connection is made
    FlippingResolver(monkeypatch, "not-yet.invalid", "127.0.0.1", "127.0.0.1")
    from propsec.notify import webhooks

    status, error = webhooks.send(url, "s3cret", b"{}", "events.alerts", 1, guarded=True)
    assert status is None and error.startswith("refused") and "127.0.0.1" in error


@pytest.mark.parametrize("guarded", [True, False])
def test_a_send_to_an_unusable_host_name_reports_it_and_does_not_raise(guarded):
    """(Stored before add-webhook refused such names.) A label over 63 characters cannot
    be looked up at all; the send says so like any failure instead of raising."""
    from propsec.notify import webhooks

    url = "http://" + "a" * 64 + ".example.net/hook"
    status, error = webhooks.send(url, "s3cret", b"{}", "events.alerts", 1, guarded=guarded)
    assert status is None and error in ("could not connect", "request failed (InvalidURL)",
                                        "request failed (LocationParseError)"), error


def test_a_name_rebound_to_a_private_address_gets_nothing_sent_to_it(monkeypatch):
    """The address checked is the address connected to: a name that passes the check and
    resolves to a private address a moment later (DNS rebinding) receives no request. Here
    127.0.0.2 plays a public receiver and 127.0.0.1 a private one on the same port."""
    from propsec.notify import webhooks

    public = Receiver(host="127.0.0.2")
    private = Receiver(host="127.0.0.1", port=public.port)
    really_forbidden = addresses.forbidden_ip
    monkeypatch.setattr(addresses, "forbidden_ip",
                        lambda a: a != "127.0.0.2" and really_forbidden(a))
    try:
        name = "rebinding.example"
        resolver = FlippingResolver(monkeypatch, name, "127.0.0.2", "127.0.0.1", flip_after=2)
        url = f"http://{name}:{public.port}/hook"
        addresses.check(url)  # what add-webhook does: the first answer is a public address
        # the first send's lookup still answers the public address; every later one, private
        status, error = webhooks.send(url, "s3cret", b'{"n":1}', "events.alerts", 1, guarded=True)
        assert (status, error) == (200, None)
        assert [r["headers"]["Host"] for r in public.requests] == [f"{name}:{public.port}"]
        status, error = webhooks.send(url, "s3cret", b'{"n":2}', "events.alerts", 2, guarded=True)
        assert status is None and error.startswith("refused") and "127.0.0.1" in error
        assert resolver.lookups == 3
        assert private.requests == [] and len(public.requests) == 1
        # staff webhooks (not guarded) may reach private addresses
        status, error = webhooks.send(url, "s3cret", b'{"n":3}', "events.alerts", 3, guarded=False)
        assert (status, error) == (200, None) and len(private.requests) == 1
    finally:
        public.close()
        private.close()


def test_webhooks_are_their_creators_own_and_admins_see_all(clients, site):
    owner, staff, admin = clients["owner"], clients["staff"], clients["admin"]
    mine = expect(add_hook(owner, propertyId=site["p1"]), "success")["id"]
    theirs = expect(add_hook(staff), "success")["id"]
    assert [h["id"] for h in expect(owner.call("get-webhooks"), "data")["webhooks"]] == [mine]
    assert {h["id"] for h in expect(admin.call("get-webhooks"), "data")["webhooks"]} == {mine, theirs}
    for query in ("remove-webhook", "get-webhook-deliveries"):
        expect_error(owner.call(query, webhookId=theirs), "not_found")
    expect(owner.call("get-webhook-deliveries", webhookId=mine), "data", "deliveries")
    expect(admin.call("remove-webhook", webhookId=mine), "success")
    assert expect(owner.call("get-webhooks"), "data")["webhooks"] == []


def test_fan_out_follows_events_property_severity_and_what_the_creator_may_see(app, started, clients, site):
    owner, staff = clients["owner"], clients["staff"]
    alerts_of_p1 = expect(add_hook(owner, propertyId=site["p1"]), "success")["id"]
    high_and_up = expect(add_hook(staff, minSeverity="high"), "success")["id"]
    everything = expect(staff.call("add-webhook", url=HOOK, events=["events.all"]), "success")["id"]
    crimes = expect(staff.call("add-webhook", url=HOOK, events=["events.crimes"]), "success")["id"]
    low_p1 = expect(staff.call("add-alert", propertyId=site["p1"], userId="x", severity="low"),
                    "success")["id"]
    expect(staff.call("add-alert", propertyId=site["p2"], userId="x", severity="critical"), "success")
    expect(staff.call("acknowledge-alert", alertId=low_p1), "success")
    expect(staff.call("add-crime", propertyId=site["p2"]), "success")
    fan_out(app)
    assert deliveries(app) == [
        (alerts_of_p1, "events.alerts"), (everything, "events.alerts"),           # low on p1
        (high_and_up, "events.alerts"), (everything, "events.alerts"),            # critical on p2
        (everything, "events.alert-acknowledged"),
        (everything, "events.crimes"), (crimes, "events.crimes")]
    fan_out(app)  # nothing twice
    assert len(deliveries(app)) == 7


def test_fan_out_writes_nothing_about_the_past(app, clients, site):
    expect(clients["staff"].call("add-alert", propertyId=site["p1"], userId="x"), "success")
    expect(clients["staff"].call("add-webhook", url=HOOK, events=["events.all"]), "success")
    fan_out(app)  # the first step places the cursor at the end
    assert deliveries(app) == []


def test_notification_preferences_default_and_validation(clients):
    owner = clients["owner"]
    assert expect(owner.call("get-notification-preferences"), "data") == {
        "email": False, "minSeverity": "high", "address": None}
    expect(owner.call("set-notification-preferences", email=True, minSeverity="medium"), "success")
    assert expect(owner.call("get-notification-preferences"), "data")["minSeverity"] == "medium"
    for bad in ({"email": "yes", "minSeverity": "low"}, {"email": True, "minSeverity": "loud"},
                {"minSeverity": "low"}):
        field = next(f for f in ("email", "minSeverity") if f not in bad or bad[f] in ("yes", "loud"))
        expect_error(owner.call("set-notification-preferences", bad), "validation_error", field)


def test_mail_goes_to_the_owner_and_opted_in_staff_at_or_above_their_minimum(app, started, clients, site):
    app.config["PROPSEC_SMTP_URL"] = "smtp://127.0.0.1:1"  # (nothing is sent in this test)
    with app.app_context():
        for uid, address in (("owner", "o@example.net"), ("staff", "s@example.net"),
                             ("admin", "a@example.net"), ("neighbour", "n@example.net")):
            db.session.get(User, uid).email = address
        db.session.commit()
        db.session.remove()
    staff = clients["staff"]
    expect(staff.call("set-notification-preferences", email=True, minSeverity="critical"), "success")
    expect(clients["neighbour"].call("set-notification-preferences", email=False, minSeverity="low"),
           "success")  # an owner who switched it off hears nothing
    expect(staff.call("add-alert", propertyId=site["p1"], userId="x", severity="high"), "success")
    expect(staff.call("add-alert", propertyId=site["p1"], userId="x", severity="critical"), "success")
    expect(staff.call("add-alert", propertyId=site["p1"], userId="x", severity="medium"), "success")
    expect(staff.call("add-alert", propertyId=site["p2"], userId="x", severity="critical"), "success")
    fan_out(app)
    with app.app_context():
        sent = db.session.execute(select(MailMessage.recipient_id, MailMessage.subject)
                                  .order_by(MailMessage.id)).all()
        db.session.remove()
    assert [r for r, _ in sent] == ["owner", "owner", "staff", "staff"]
    assert sent[0][1] == "[propsec] HIGH alert at 1 Harbour Road"
