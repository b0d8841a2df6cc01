"""Escalation (contract section 13): an alert left open escalates one level per
PROPSEC_ESCALATION_SECONDS, at most 3, each level exactly once, never after it is
acknowledged or resolved; across processes, and after the process that raised it died."""
from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
from helpers import ago, expect, insert
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)

from sqlalchemy import insert as insert_rows
from sqlalchemy import text

from propsec.background.escalation import due_query, escalate_due
from propsec.extensions import db
from propsec.models import Alert
from propsec.models._common import utcnow


def levels(app, alert_id):
    with app.app_context():
        alert = db.session.get(Alert, alert_id)
        result = alert.escalation_level, alert.escalated_at
        db.session.remove()
        return result


def run_escalation(app) -> int:
    with app.app_context():
        try:
            return escalate_due()
        finally:
            db.session.remove()


def backdate_escalation(app, alert_id, seconds: float) -> None:
    with app.app_context():
        alert = db.session.get(Alert, alert_id)
        alert.escalated_at = alert.escalated_at - timedelta(seconds=seconds)
        db.session.commit()


def test_each_level_once_up_to_three_and_only_when_due(app, clients, site):
    app.config["PROPSEC_ESCALATION_SECONDS"] = 60
    staff = clients["staff"]
    expect(staff.call("subscribe", {"id": "events.alert-escalated"}), "status")
    [alert_id] = insert(app, Alert(property_id=site["p1"], user_id="owner", reason="door",
                                   timestamp=ago(seconds=61), severity=3))
    [fresh] = insert(app, Alert(property_id=site["p1"], user_id="owner", reason="new",
                                timestamp=ago(seconds=30)))
    assert run_escalation(app) == 1
    assert run_escalation(app) == 0  # the next level waits another 60 s
    assert levels(app, alert_id)[0] == 1 and levels(app, fresh)[0] == 0
    for level in (2, 3):
        backdate_escalation(app, alert_id, 61)
        assert run_escalation(app) == 1
        assert levels(app, alert_id)[0] == level
    backdate_escalation(app, alert_id, 61)
    assert run_escalation(app) == 0  # never past 3
    events = [p for _, p in staff.events("events.alert-escalated")]
    assert [(e["alertId"], e["level"], e["severity"]) for e in events] == [
        (alert_id, 1, "critical"), (alert_id, 2, "critical"), (alert_id, 3, "critical")]
    assert all(e["propertyId"] == site["p1"] for e in events)


@pytest.mark.parametrize("how", ["acknowledge", "resolve"])
def test_acknowledging_or_resolving_stops_escalation(app, clients, site, how):
    app.config["PROPSEC_ESCALATION_SECONDS"] = 60
    [alert_id] = insert(app, Alert(property_id=site["p1"], user_id="owner", reason="door",
                                   timestamp=ago(seconds=61)))
    assert run_escalation(app) == 1
    if how == "acknowledge":
        expect(clients["staff"].call("acknowledge-alert", alertId=alert_id), "success")
    else:
        expect(clients["staff"].call("resolve-alert", alertId=alert_id, note="ok"), "success")
    backdate_escalation(app, alert_id, 3600)
    assert run_escalation(app) == 0
    assert levels(app, alert_id)[0] == 1


# --------------------------------------------------------------------------- two processes


def test_two_processes_each_level_once_and_the_survivor_takes_over(tmp_path):
    from services import Recorder, active_property, call, cluster, connect, ok

    users = {"olive": "owner", "sam": "staff", "ada": "admin"}
    with cluster(tmp_path, "escalation", users, 2, PROPSEC_ESCALATION_SECONDS="1") as (a, b):
        watchers, clients = [], []
        try:
            for server in (a, b):
                watcher = connect(server.url, server.tokens["sam"])
                watcher.recorder = Recorder(watcher, "events.alert-escalated")
                assert call(watcher, "subscribe", {"id": "events.alert-escalated"})["type"] == "status"
                watchers.append(watcher)
            admin_a = connect(a.url, a.tokens["ada"])
            clients.append(admin_a)
            pid = active_property(admin_a)
            left_open = ok(admin_a, "add-alert", propertyId=pid, userId="olive")["id"]
            seen = ok(admin_a, "add-alert", propertyId=pid, userId="olive")["id"]
            assert watchers[1].recorder.wait(
                lambda r: {p["alertId"] for p in r.payloads()} >= {left_open, seen}, 10)
            ok(admin_a, "acknowledge-alert", alertId=seen)
            a.stop(signal.SIGKILL)  # the process that raised them dies
            assert watchers[1].recorder.wait(
                lambda r: [p["level"] for p in r.payloads() if p["alertId"] == left_open]
                == [1, 2, 3], 20)
            time.sleep(2.5)  # past a further wait: nothing more
            got = [(p["alertId"], p["level"]) for p in watchers[1].recorder.payloads()]
            assert got.count((left_open, 1)) == got.count((left_open, 2)) == 1
            assert [lv for i, lv in got if i == seen] == [1]  # acknowledged after level 1
            assert [lv for i, lv in got if i == left_open] == [1, 2, 3]
        finally:
            for client in watchers + clients:
                if client.connected:
                    client.disconnect()


def test_an_escalation_passes_over_alerts_another_process_is_raising(app, site, backend):
    """PostgreSQL: an alert whose row another transaction holds (another process raising it)
    is skipped, not waited for; the others are raised at once, and it is raised by a later
    step. (Two processes that waited for each other's alerts deadlocked, each holding back
    the event horizon until PostgreSQL noticed.)"""
    if backend != "postgresql":
        pytest.skip("row locks between processes: PostgreSQL (SQLite has one writer)")
    import threading

    import psycopg2

    app.config["PROPSEC_ESCALATION_SECONDS"] = 60
    alerts = insert(app, *(Alert(property_id=site["p1"], user_id="owner", reason=f"door {n}",
                                 timestamp=ago(seconds=61)) for n in range(4)))
    other = psycopg2.connect(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with other.cursor() as cursor:  # the other process, mid-way through raising one
            cursor.execute("SELECT id FROM alerts WHERE id = %s FOR UPDATE", (alerts[0],))
        done: list[int] = []
        step = threading.Thread(target=lambda: done.append(run_escalation(app)), daemon=True)
        step.start()
        step.join(10)
        assert done == [3], "the step waited for the alert held elsewhere"
        assert levels(app, alerts[0])[0] == 0
        assert [levels(app, a)[0] for a in alerts[1:]] == [1, 1, 1]
    finally:
        other.rollback()
        other.close()
    assert run_escalation(app) == 1 and levels(app, alerts[0])[0] == 1


def test_the_scan_reads_only_due_alerts_through_its_index(app, site):
    """3,000 open alerts, none due: the worker's query goes through the partial index of
    due alerts (ix_alerts_escalation_due) instead of reading every open alert; and the
    planner can use it at all only because the query repeats the index's conditions."""
    with app.app_context():
        now = utcnow()
        db.session.execute(insert_rows(Alert), [
            {"property_id": site["p1"], "user_id": f"u{n}", "reason": "", "timestamp": now,
             "severity": 2} for n in range(3000)])
        db.session.commit()
        query = due_query(now)
        compiled = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ANALYZE alerts"))
            plan = db.session.scalars(text("EXPLAIN " + compiled)).all()
        else:
            db.session.execute(text("ANALYZE"))
            plan = [row[-1] for row in db.session.execute(text("EXPLAIN QUERY PLAN " + compiled))]
        db.session.remove()
    assert any("ix_alerts_escalation_due" in line for line in plan), plan
    assert run_escalation(app) == 0



def test_raising_looks_each_due_alert_up_by_its_id_even_on_stale_statistics(app, site, backend):
    """PostgreSQL: the statement that raises the due alerts finds each by its primary key,
    whatever the planner believes about the table: analysed while it was nearly empty, then
    grown to 3,000 open alerts, a planner given `state = 'open'` with the ids went through
    every open alert (with tens of thousands, over a second, holding back the event horizon
    all along)."""
    if backend != "postgresql":
        pytest.skip("the statement is PostgreSQL's")
    from sqlalchemy.dialects import postgresql

    from propsec.background import escalation

    now = utcnow()
    with app.app_context():
        db.session.execute(text("ANALYZE alerts"))  # (next to empty)
        db.session.execute(insert_rows(Alert), [
            {"property_id": site["p1"], "user_id": f"u{n}", "reason": "", "timestamp": now,
             "severity": 2} for n in range(3000)])
        db.session.commit()
        ids = db.session.scalars(text("SELECT id FROM alerts ORDER BY id DESC LIMIT 100")).all()
        statement = str(escalation._RAISE_DUE.statement.compile(dialect=postgresql.dialect()))
        params = {"ids": ids, "levels": [0] * 100, "properties": [site["p1"]] * 100,
                  "owners": ["owner"] * 100, "payloads": ["{}"] * 100,
                  "ordinals": list(range(100)), "now": now, "open": "open",
                  "event": escalation.ESCALATED}
        connection = db.session.connection().connection.dbapi_connection
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + statement, params)
            plan = [row[0] for row in cursor.fetchall()]
        db.session.rollback()
        db.session.remove()
    scans = [line for line in plan if "Scan" in line and " on alerts" in line]
    assert scans and all("alerts_pkey" in line for line in scans), plan


def test_a_burst_larger_than_one_batch_goes_up_batch_after_batch(app, site):
    """250 alerts left open together: the worker raises 100, asks to run again at once, raises
    the next 100, then the last 50, longest waiting first, and only then goes back to
    looking every tenth of the wait (before, one batch every 5 s: the last of a burst of
    1,000 went up almost a minute late)."""
    from propsec.background import escalation

    app.config["PROPSEC_ESCALATION_SECONDS"] = 60
    ids = insert(app, *[Alert(property_id=site["p1"], user_id=f"u{n}", reason="burst",
                              timestamp=ago(seconds=400 - n)) for n in range(250)])
    waits, raised = [], []
    for _ in range(3):
        with app.app_context():
            waits.append(escalation._step())
        raised.append([i for i in ids if levels(app, i)[0] == 1])
    assert [len(r) for r in raised] == [100, 200, 250]
    assert raised[0] == ids[:100] and raised[1] == ids[:200]  # the oldest first
    assert waits[0] == waits[1] == 0  # (again at once: more may be due)
    assert waits[2] == 5.0  # (a tenth of 60 s, capped at 5 s)
    assert run_escalation(app) == 0
