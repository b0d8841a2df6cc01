"""CSV exports and the incident page (contract section 17): columns, filters, access as the
matching queries, bearer tokens and sessions; and a million-row export from a real server
whose memory does not grow."""
from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta

import pytest
import requests
from helpers import expect
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)
from sqlalchemy import insert

from propsec.extensions import db
from propsec.models import Visit


def get(app, tokens, path, user="staff", **params):
    headers = {"Authorization": f"Bearer {tokens[user]}"} if user else {}
    return app.test_client().get(path, query_string=params, headers=headers)


def table(answer) -> list[dict]:
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))


def test_each_kind_has_the_contract_columns(app, tokens, clients, site):
    staff = clients["staff"]
    expect(staff.call("add-alert", propertyId=site["p1"], userId="x", reason="=cmd|' /C calc'!A0"),
           "success")
    expect(staff.call("add-visitor", propertyId=site["p1"], userId="v1", cameraId=site["camera"]),
           "success")
    expect(staff.call("add-auth-entry", propertyId=site["p1"], userId="owner"), "success")
    expect(staff.call("add-crime", propertyId=site["p2"], description="bike"), "success")
    headers = {kind: get(app, tokens, f"/export/{kind}.csv").get_data(as_text=True).splitlines()[0]
               for kind in ("alerts", "visits", "entries", "crimes")}
    assert headers == {
        "alerts": "id,userId,timestamp,reason,acknowledgedBy,acknowledgedAt,propertyId,severity,"
                  "state,assignee,resolvedBy,resolvedAt,note,escalationLevel",
        "visits": "id,propertyId,userId,cameraId,timestamp",
        "entries": "id,propertyId,userId,authorized,timestamp",
        "crimes": "id,propertyId,clientId,description,timestamp"}
    [alert] = table(get(app, tokens, "/export/alerts.csv"))
    assert (alert["severity"], alert["state"], alert["propertyId"]) == ("high", "open", str(site["p1"]))
    assert alert["reason"].startswith("'=")  # a formula is never handed to a spreadsheet
    [entry] = table(get(app, tokens, "/export/entries.csv"))
    assert entry["authorized"] == "true" and entry["userId"] == "owner"
    [crime] = table(get(app, tokens, "/export/crimes.csv"))
    assert (crime["clientId"], crime["description"]) == ("staff", "bike")


def test_access_follows_the_queries(app, tokens, site):
    p1, p2 = site["p1"], site["p2"]
    assert get(app, tokens, "/export/visits.csv", user=None).status_code == 401
    assert get(app, tokens, "/export/visits.csv", user="owner").status_code == 403  # whole site
    assert get(app, tokens, "/export/visits.csv", user="owner", propertyId=p2).status_code == 403
    assert get(app, tokens, "/export/visits.csv", user="owner", propertyId=p1).status_code == 200
    assert get(app, tokens, "/export/visits.csv", user="owner", propertyId=999999).status_code == 404
    assert get(app, tokens, "/export/audit.csv", user="staff").status_code == 403
    assert get(app, tokens, "/export/audit.csv", user="admin").status_code == 200
    assert get(app, tokens, "/export/secrets.csv").status_code == 404
    assert get(app, tokens, "/export/visits.csv", **{"from": "yesterday"}).status_code == 400
    answer = app.test_client().get("/export/visits.csv", headers={"Authorization": "Bearer ps_nope"})
    assert answer.status_code == 401


def test_property_and_dates_filter_inclusively(app, tokens, site):
    base = datetime(2026, 3, 10, 12, 0)
    with app.app_context():
        db.session.execute(insert(Visit), [
            {"property_id": pid, "camera_id": site["camera"], "user_id": f"v{day}",
             "timestamp": base + timedelta(days=day)}
            for day in range(5) for pid in (site["p1"], site["p2"])])
        db.session.commit()
        db.session.remove()
    rows = table(get(app, tokens, "/export/visits.csv", propertyId=site["p1"],
                     **{"from": "2026-03-11", "to": "2026-03-13"}))
    assert [r["userId"] for r in rows] == ["v1", "v2", "v3"]
    assert {r["propertyId"] for r in rows} == {str(site["p1"])}
    assert len(table(get(app, tokens, "/export/visits.csv"))) == 10


def test_the_audit_export_lists_the_trail(app, tokens, clients, site):
    expect(clients["admin"].call("set-arming", propertyId=site["p1"], mode="away"), "success")
    rows = table(get(app, tokens, "/export/audit.csv", user="admin"))
    assert rows[-1]["action"] == "queries.set-arming" and rows[-1]["actor"] == "admin"
    assert '"mode": "away"' in rows[-1]["detail"]


def test_the_incident_page_shows_the_alert_and_its_hour(app, tokens, clients, site):
    staff = clients["staff"]
    alert = expect(staff.call("add-alert", propertyId=site["p1"], userId="x", reason="glass"),
                   "success")["id"]
    expect(staff.call("add-visitor", propertyId=site["p1"], userId="courier", cameraId=site["camera"]),
           "success")
    expect(staff.call("resolve-alert", alertId=alert, note="window cleaner"), "success")
    page = get(app, tokens, f"/incident/{alert}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for text in ("Incident report: alert #", "glass", "window cleaner", "courier", "alert-resolved"):
        assert text in html, text
    assert get(app, tokens, f"/incident/{alert}", user="neighbour").status_code == 403
    assert get(app, tokens, f"/incident/{alert}", user="owner").status_code == 200
    assert get(app, tokens, "/incident/999999").status_code == 404


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs /proc")
def test_a_million_row_export_streams_in_flat_memory(tmp_path):
    from live import LiveServer
    from services import seed_users

    rows = 1_000_000
    server = LiveServer(tmp_path)
    tokens = seed_users(server, {"sam": "staff", "olive": "owner"})
    with server.local_app().app_context():
        from propsec.models import Property

        prop = Property(owner_id="olive", location="1 Big Street", tier_id=1, x=0, y=0,
                        description="", status="ACTIVE")
        db.session.add(prop)
        db.session.commit()
        start = datetime(2026, 1, 1)
        for first in range(0, rows, 100_000):
            db.session.execute(insert(Visit), [
                {"property_id": prop.id, "camera_id": 1, "user_id": f"visitor-{n % 5000}",
                 "timestamp": start + timedelta(seconds=n)} for n in range(first, first + 100_000)])
            db.session.commit()
        db.session.remove()
    with server:
        pid = server.process.pid
        before = _rss_kib(pid)
        peak, lines, started = before, 0, time.monotonic()
        with requests.get(server.url + "/export/visits.csv", stream=True, timeout=300,
                          headers={"Authorization": f"Bearer {tokens['sam']}"}) as answer:
            assert answer.status_code == 200
            for n, _ in enumerate(answer.iter_lines(chunk_size=1 << 16)):
                lines += 1
                if n % 50_000 == 0:
                    peak = max(peak, _rss_kib(pid))
        took = time.monotonic() - started
    assert lines == rows + 1  # the header and every row
    grew_mib = (peak - before) / 1024
    print(f"exported {rows:,} rows in {took:.1f}s; server memory grew {grew_mib:.1f} MiB")
    assert grew_mib < 40, f"the server's memory grew by {grew_mib:.0f} MiB while streaming"
