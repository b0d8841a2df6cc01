"""The read path of protocol/targets.py: a reading query's target is a snapshot read on a
raw pooled connection, a writing query's the ORM row. Both must answer alike, a reader must
see the latest committed row, and a failing read must end as the usual clean envelope with
its connection back in (or dropped from) the pool, never leaked."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from helpers import expect, expect_error
from propsec.extensions import db
from propsec.models import Property
from propsec.protocol import targets


def test_snapshot_holds_the_same_values_as_the_orm_row(app, site):
    with app.app_context():
        for pid in (site["p1"], site["p2"]):
            snap = targets.snapshot(pid)
            row = db.session.get(Property, pid)
            assert snap.to_dict() == row.to_dict()
            assert (snap.owner_id, snap.removed, snap.centre) == (row.owner_id, row.removed,
                                                                  row.centre)
        assert targets.snapshot(999_999) is None


def test_a_reader_sees_each_committed_change_at_once(app, site, connect):
    owner, admin = connect("owner"), connect("admin")
    pid = site["p1"]
    for width, status in ((31, "INACTIVE"), (44, "ACTIVE")):
        expect(admin.call("change-property-size", propertyId=pid, width=width, height=9),
               "success")
        expect(admin.call("change-property-status", propertyId=pid, status=status), "success")
        prop = expect(owner.call("get-property", propertyId=pid), "data", "property")["property"]
        assert (prop["width"], prop["height"], prop["status"]) == (width, 9, status)


def test_readers_keep_the_access_rules(app, site, connect):
    neighbour = connect("neighbour")
    expect_error(neighbour.call("get-property", propertyId=site["p1"]), "forbidden")
    expect_error(neighbour.call("get-property-detailed", propertyId=site["p1"]), "forbidden")
    expect_error(neighbour.call("get-property", propertyId=999_999), "not_found")
    detailed = expect(connect("owner").call("get-property-detailed", propertyId=site["p1"]),
                      "data", "property")["property"]
    assert (detailed["tier_name"], detailed["owner"]) == ("Standard", "owner")
    assert detailed["owner_full_name"]


def test_a_failed_read_is_a_clean_error_and_returns_its_connection(app, site, connect):
    owner = connect("owner")
    expect(owner.call("get-property", propertyId=site["p1"]), "data")
    with app.app_context():
        pool = db.engine.pool
        # Breaks the snapshot's SELECT (not the pool): the driver raises its own error.
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE properties RENAME TO properties_gone"))
        try:
            answer = owner.call("get-property", propertyId=site["p1"])
            error = expect_error(answer, "internal_error")
            assert "properties" not in error["message"] and "SELECT" not in error["message"]
            assert pool.checkedout() == 0
            expect(owner.call("get-tiers"), "data")  # the connection is still usable
        finally:
            with db.engine.begin() as conn:
                conn.execute(text("ALTER TABLE properties_gone RENAME TO properties"))
    expect(owner.call("get-property", propertyId=site["p1"]), "data")


def test_a_snapshot_read_leaves_its_pooled_connection_as_it_found_it(app, site):
    """The connection goes back to the pool idle, outside any transaction. On PostgreSQL
    the read runs in autocommit, and the connection must be back in transaction mode, or
    the next ORM session on it would not be atomic."""
    with app.app_context():
        db.engine.dispose()
        assert targets.snapshot(site["p1"]).id == site["p1"]
        assert db.engine.pool.checkedin() == 1  # the one connection, back in the pool
        connection = db.engine.raw_connection()  # ... which is that connection again
        try:
            driver = connection.dbapi_connection
            if db.engine.dialect.name == "postgresql":
                import psycopg2.extensions as ext

                assert driver.autocommit is False
                assert driver.get_transaction_status() == ext.TRANSACTION_STATUS_IDLE
            else:
                assert not driver.in_transaction
        finally:
            connection.close()


@pytest.mark.parametrize("query", ["get-property", "add-alert"])
def test_a_connection_lost_before_its_commit_is_replaced_and_the_request_answered(
        app, site, connect, backend, query):
    """Pooled connections are not pinged before use: when the database has dropped them
    (a restart), a request that finds its connection lost before committing runs again
    once, on a fresh connection, and the pool replaces its other old connections."""
    if backend != "postgresql":
        pytest.skip("a SQLite file has no connection to lose")
    staff = connect("staff")
    payload = {"propertyId": site["p1"], "userId": "owner", "reason": "after the drop"}
    for _ in range(3):  # several pooled connections, all idle afterwards
        expect(staff.call("get-property", propertyId=site["p1"]), "data")
    with app.app_context():
        assert db.engine.pool.checkedin() >= 1
        with db.engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    if query == "get-property":
        expect(staff.call(query, propertyId=site["p1"]), "data")
    else:
        expect(staff.call(query, payload), "success")
        alerts = expect(staff.call("get-alerts", propertyId=site["p1"]), "data")["alerts"]
        assert [a["reason"] for a in alerts] == ["after the drop"]  # once, not twice
    expect(staff.call("get-tiers"), "data")


def test_a_subscribe_that_fails_after_replaying_is_not_run_again(app, site, connect,
                                                                   monkeypatch):
    """A lost connection is retried only while nothing has been sent: a subscribe that had
    replayed events before failing answers the error and leaves the room (the client
    subscribes again), rather than replaying everything a second time."""
    from sqlalchemy.exc import OperationalError

    from propsec.pipeline import log as event_log

    owner, staff = connect("owner"), connect("staff")
    for n in range(3):
        owner.ok("add-alert", propertyId=site["p1"], userId="owner", reason=f"r{n}")
    real, calls = event_log.last_visible, {"n": 0}

    def lost_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("SELECT", None, Exception("server closed the connection"),
                                   connection_invalidated=True)
        return real(*args, **kwargs)

    monkeypatch.setattr(event_log, "last_visible", lost_once)
    expect_error(staff.call("subscribe", {"id": "events.alerts", "since": 0}), "internal_error")
    ids = [p["eventId"] for _, p in staff.events("events.alerts")]
    assert len(ids) == 3 and ids == sorted(set(ids))  # the replay, once
    owner.ok("add-alert", propertyId=site["p1"], userId="owner", reason="after")
    assert staff.events("events.alerts") == []  # not left in the room
    data = expect(staff.call("subscribe", {"id": "events.alerts", "since": ids[-1]}), "status")
    assert data["replayed"] == 1


def test_a_prepared_query_that_opens_the_orm_session_commits_nothing(app, site, connect):
    from sqlalchemy import func, select

    from propsec.handlers.alerts import NewAlert, raise_alert
    from propsec.models import Alert, User
    from propsec.protocol import envelopes, registry
    from propsec.protocol.access import Allow

    @registry.websocket_query("test-mixed-probe", NewAlert, allow=Allow.OWNER,
                              target="propertyId", mutates=True, prepared=True)
    def probe(req, data):
        db.session.get(User, "owner")  # the ORM session, in a query declared prepared
        return envelopes.success("ok", id=raise_alert(req, data.userId, data.reason))

    try:
        answer = connect("owner").call("test-mixed-probe", propertyId=site["p1"],
                                       userId="owner", reason="half")
        expect_error(answer, "internal_error")
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(Alert)) == 0
    finally:
        registry._REGISTRY.pop("queries.test-mixed-probe", None)
        registry._DECLARATIONS[:] = [d for d in registry._DECLARATIONS
                                     if d.name != "queries.test-mixed-probe"]
