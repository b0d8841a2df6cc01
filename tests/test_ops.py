"""Operations (contract section 19): /metrics in the Prometheus format with counters that
move, access limited to the allowed networks or the token; JSON log lines that all parse and
hold no secrets; /healthz with the tailer's lag and the workers. Real server processes."""
from __future__ import annotations

import json
import re
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from services import connect, form_login, ok, seed_users

from live import LiveServer


def scrape(server, **headers) -> dict:
    answer = requests.get(server.url + "/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LiveServer(tmp_path_factory.mktemp("ops"), PROPSEC_METRICS_TOKEN="scrape-token-123",
                   PROPSEC_LOG_FORMAT="json")
    seed_users(s, {"ada": "admin", "olive": "owner"})
    s.create_user("olive", "owner", "olive-password-1")
    with s:
        yield s


def test_metrics_parse_and_move_with_requests_errors_and_events(server):
    before = scrape(server)
    admin = connect(server.url, server.tokens["ada"])
    try:
        ok(admin, "subscribe", {"id": "events.alerts"})
        ok(admin, "get-tiers")
        admin.call("queries.get-property", {"propertyId": "x"}, namespace="/propsec", timeout=10)
        admin.call("queries.no-such-thing", {}, namespace="/propsec", timeout=10)
        pid = ok(admin, "add-property", location="1 Metric Way", tier=1, x=0, y=0,
                 description="", clientId="olive")["id"]
        ok(admin, "change-property-status", propertyId=pid, status="ACTIVE")
        ok(admin, "add-alert", propertyId=pid, userId="olive")
        time.sleep(0.5)
        after = scrape(server)
        assert value(after, "propsec_connections") >= 1
        assert value(after, "propsec_subscriptions") >= 1
        grew = lambda name, **l: value(after, name, **l) - value(before, name, **l)  # noqa: E731
        assert grew("propsec_requests_total", query="queries.get-tiers", outcome="ok") == 1
        assert grew("propsec_requests_total", query="queries.get-property",
                    outcome="validation_error") == 1
        assert grew("propsec_requests_total", query="unknown", outcome="unknown_query") == 1
        assert grew("propsec_request_duration_seconds_count", query="queries.get-tiers") == 1
        assert grew("propsec_events_total", event="events.alerts") == 1
        assert grew("propsec_event_delivery_lag_seconds_count") >= 3
    finally:
        admin.disconnect()


def test_metrics_are_refused_outside_the_allowed_networks_without_the_token(tmp_path):
    s = LiveServer(tmp_path, PROPSEC_METRICS_ALLOW="10.0.0.0/8", PROPSEC_METRICS_TOKEN="t0ken-abc")
    s.init_db()
    with s:
        assert requests.get(s.url + "/metrics", timeout=10).status_code == 403
        wrong = requests.get(s.url + "/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 403
        right = requests.get(s.url + "/metrics", headers={"Authorization": "Bearer t0ken-abc"},
                             timeout=10)
        assert right.status_code == 200 and "propsec_connections" in right.text


def test_healthz_reports_the_tailer_lag_and_the_workers(server):
    admin = connect(server.url, server.tokens["ada"])
    admin.disconnect()
    body = requests.get(server.url + "/healthz", timeout=10).json()
    assert body["eventLagSeconds"] is not None and body["eventLagSeconds"] < 5
    assert body["workers"] | {"eventTailer": True, "webhooks": True, "escalation": True,
                              "auditSeal": True} == body["workers"]


def test_json_log_lines_all_parse_and_carry_no_secrets(server):
    form_login(server.url, "olive", "hunter2-not-hers")
    token = server.tokens["olive"]
    client = connect(server.url, token)
    client.call("queries.get-property", {"propertyId": 10**6}, namespace="/propsec", timeout=10)
    client.disconnect()
    time.sleep(0.5)
    lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
    assert lines, "the server wrote nothing"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
    text = server.log_path.read_text()
    for secret in ("hunter2-not-hers", "olive-password-1", token, "scrape-token-123"):
        assert secret not in text
    assert not re.search(r"SELECT|INSERT|Traceback", text)
    answered = [r for r in records if r.get("query") == "queries.get-property"]
    assert answered and answered[-1]["outcome"] == "not_found" and answered[-1]["user"] == "olive"
    assert any(r["message"].startswith("failed login") for r in records)
