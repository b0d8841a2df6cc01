"""What the write path asks of the database (propsec/sql.py, audit/seal.py, notify/fanout.py):
on PostgreSQL a prepared query's transaction travels in few round trips, with each statement
prepared once per connection; a statement that fails in the last round trip still undoes the
whole request and leaves the connection usable; the audit seal stores a batch with one UPDATE;
a fan-out with nothing to send leaves the database alone."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, func, select, text

from helpers import change_counts, expect, expect_error
from propsec import audit, sql
from propsec.audit import seal
from propsec.extensions import db
from propsec.models import Alert, AuditEntry
from propsec.notify import fanout
from propsec.protocol import targets


# How long the test that holds a property locked holds it at most: a removal that waited
# for the lock would be answered only after it.
LOCK_HELD_SECONDS = 5.0


def raise_alert(client, pid):
    return client.call("add-alert", propertyId=pid, userId="owner", reason="test")


@pytest.fixture
def round_trips(monkeypatch):
    """Every round trip of a request's own transaction: (connection, statements)."""
    sent: list[tuple[int, list[bytes]]] = []
    original = sql._BatchingCursor._send

    def spy(self, statements, fetch):
        sent.append((id(self._connection), list(statements)))
        return original(self, statements, fetch)

    monkeypatch.setattr(sql._BatchingCursor, "_send", spy)
    return sent


def test_add_alert_takes_one_round_trip_once_its_target_is_remembered(
        app, site, connect, backend, round_trips):
    """The first alert on a property reads its target (reserving the alert's id) and then
    commits; every later one is a single round trip: the check of the remembered target,
    the alert, its audit entry and its event, and COMMIT. Ids come from a reserved block,
    fetched once. The reads go ahead of the transaction, which opens and commits in one
    round trip (no transaction id waits on the process). Each statement is prepared once
    per connection."""
    if backend != "postgresql":
        pytest.skip("round trips are PostgreSQL's matter (SQLite runs inside the process)")
    owner = connect("owner")
    ids = [expect(raise_alert(owner, site["p1"]), "success", "id")["id"] for _ in range(12)]
    texts = {s.split()[1]: s for _, statements in round_trips for s in statements
             if s.startswith(b"PREPARE ")}

    def sql_of(statements):  # what each statement runs (EXECUTE by name: its PREPARE)
        return [texts[s.split()[1].split(b"(")[0]] if s.startswith(b"EXECUTE ") else s
                for s in statements]

    trips = [sql_of(statements) for _, statements in round_trips]
    assert len(trips) == 14
    read, commit, refill, *remembered = trips
    # the first: the target's read, which reserves the alert's id; then the commit
    assert b"JOIN properties p" in read[-1] and b"nextval('alerts_id_seq')" in read[-1]
    # the second takes a block of ids for this one and those after it
    assert b"generate_series" in refill[-1]
    for trip in (read, refill):  # both outside any transaction
        assert b"BEGIN" not in trip
    for trip in [commit, *remembered]:  # each opens its transaction and commits it
        assert trip[0] == b"BEGIN" and trip[-1] == b"COMMIT"
        for table in (b"alerts", b"audit_log", b"event_log"):
            assert any(b"INSERT INTO " + table + b" " in s for s in trip), table
    for trip in remembered:  # the remembered target confirmed first
        assert b"propsec_target_changed" in trip[1], trip[:2]
    prepared: dict[int, list[bytes]] = {}
    for connection, statements in round_trips:
        for statement in statements:
            if statement.startswith(b"PREPARE "):
                prepared.setdefault(connection, []).append(statement.split()[1])
    for names in prepared.values():  # never twice on one connection
        assert len(names) == len(set(names))
    # from the second request on a connection, statements run by name only
    assert sum(len(n) for n in prepared.values()) < 12 * 4
    # the reserved ids are the alerts' ids, as the answers said
    with app.app_context():
        stored = db.session.scalars(select(Alert.id).order_by(Alert.id)).all()
        db.session.remove()
    assert stored == sorted(ids) and len(set(ids)) == 12


def test_a_visit_and_an_entry_read_their_camera_and_allowed_user_with_the_target(
        app, site, connect, backend, round_trips):
    """add-visitor asks whether the camera is the property's, add-auth-entry whether the
    person may come in: on PostgreSQL both are read with the target (targets.Lookup), so
    each request is BEGIN with that read, then its writes with COMMIT, and the answers are
    the ones the reads call for."""
    if backend != "postgresql":
        pytest.skip("round trips are PostgreSQL's matter (SQLite runs inside the process)")
    owner, staff = connect("owner"), connect("staff")
    expect(owner.call("add-allowed-user", propertyId=site["p1"], userId="neighbour"), "success")
    del round_trips[:]
    visit = {"propertyId": site["p1"], "userId": "courier"}
    expect(staff.call("add-visitor", **visit, cameraId=site["camera"]), "success", "id")
    expect_error(staff.call("add-visitor", **visit, cameraId=site["other_camera"]),
                 "validation_error", "cameraId")
    allowed = expect(staff.call("add-auth-entry", propertyId=site["p1"], userId="neighbour"),
                     "success", "authorized")
    stranger = expect(staff.call("add-auth-entry", propertyId=site["p1"], userId="stranger"),
                      "success", "authorized", "alertId")
    assert (allowed["authorized"], stranger["authorized"]) == (True, False)
    with app.app_context():
        with_lookups = {p.compiled(db.engine).server.name.encode()
                        for p in targets._PREFETCH.values()
                        if b"LATERAL" in p.compiled(db.engine).server.prepare}
    assert with_lookups
    shape = [(statements[0], statements[-1].split(b"(")[0]) for _, statements in round_trips]
    # each read its target and lookups ahead of its transaction; the refused visit never
    # opened one, so it has nothing to roll back
    kinds = [b"read", b"commit", b"read", b"read", b"commit", b"read", b"commit"]
    assert [b"commit" if s == (b"BEGIN", b"COMMIT") else b"read" for s in shape] == kinds, shape
    for first, read in (s for s, kind in zip(shape, kinds) if kind == b"read"):
        assert first != b"BEGIN" and read.removeprefix(b"EXECUTE ") in with_lookups


def test_every_prepared_write_answers_with_the_id_it_stored(app, site, connect):
    """add-visitor and add-auth-entry (whose ids are reserved on PostgreSQL) answer with
    the ids of the rows they wrote, on either database."""
    from propsec.models import AuthEntry, Visit
    staff = connect("staff")
    visit = expect(staff.call("add-visitor", propertyId=site["p1"], cameraId=site["camera"],
                              userId="visitor-7"), "success", "id")
    entry = expect(staff.call("add-auth-entry", propertyId=site["p1"], userId="stranger"),
                   "success", "id", "alertId")
    with app.app_context():
        assert db.session.get(Visit, visit["id"]).user_id == "visitor-7"
        assert db.session.get(AuthEntry, entry["id"]).user_id == "stranger"
        alert = db.session.get(Alert, entry["alertId"])
        assert (alert.user_id, alert.property_id) == ("stranger", site["p1"])
        db.session.remove()


def change_directly(app, statement: str, **values) -> None:
    """A change made outside this process's requests (another process, an operator's SQL)."""
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text(statement), values)


def groups_by_source() -> dict[str, float]:
    from propsec.ops import metrics
    return {source: metrics.registry.get_sample_value(
        "propsec_group_targets_total", {"source": source}) or 0.0
        for source in ("memory", "database", "changed")}


def test_a_target_changed_elsewhere_is_never_written_on_from_memory(app, site, connect,
                                                                    backend):
    """Writes remember their targets (PostgreSQL, protocol/target_memory.py); a property
    changed by someone else meanwhile is read again before anything is written on it: the
    owner it no longer belongs to is refused, and nothing of the refused request is kept."""
    owner = connect("owner")
    for _ in range(3):
        expect(raise_alert(owner, site["p1"]), "success", "id")
    before_groups = groups_by_source()
    change_directly(app, "UPDATE properties SET owner_id = 'neighbour' WHERE id = :p",
                    p=site["p1"])
    counts = change_counts(app)
    expect_error(raise_alert(owner, site["p1"]), "forbidden")
    assert change_counts(app) == counts
    if backend == "postgresql":
        after = groups_by_source()
        assert after["changed"] == before_groups["changed"] + 1
    neighbour = connect("neighbour")  # the new owner is let in at once
    expect(raise_alert(neighbour, site["p1"]), "success", "id")
    change_directly(app, "UPDATE properties SET status = 'REMOVED' WHERE id = :p",
                    p=site["p1"])
    expect_error(raise_alert(neighbour, site["p1"]), "conflict")


def test_a_refusal_is_never_answered_from_memory(app, site, connect, backend):
    """A visit by a camera that is not the property's is refused; once an installer has
    moved that camera to the property, the same request succeeds, though the process
    remembered the camera as someone else's."""
    staff = connect("staff")
    visit = {"propertyId": site["p1"], "userId": "courier", "cameraId": site["other_camera"]}
    expect(staff.call("add-visitor", propertyId=site["p1"], userId="courier",
                      cameraId=site["camera"]), "success", "id")
    for _ in range(2):
        expect_error(staff.call("add-visitor", **visit), "validation_error", "cameraId")
    change_directly(app, "UPDATE equipment SET property_id = :p WHERE id = :c",
                    p=site["p1"], c=site["other_camera"])
    expect(staff.call("add-visitor", **visit), "success", "id")


def test_a_camera_moved_away_elsewhere_no_longer_reports_visits_there(app, site, connect,
                                                                     backend):
    """The other way round from the test above: the process remembers the camera as the
    property's; an installer moves it to another property; the next visit it reports at
    the old property is refused and nothing of it is kept."""
    staff = connect("staff")
    visit = {"propertyId": site["p1"], "userId": "courier", "cameraId": site["camera"]}
    for _ in range(3):
        expect(staff.call("add-visitor", **visit), "success", "id")
    change_directly(app, "UPDATE equipment SET property_id = :p WHERE id = :c",
                    p=site["p2"], c=site["camera"])
    counts = change_counts(app)
    expect_error(staff.call("add-visitor", **visit), "validation_error", "cameraId")
    assert change_counts(app) == counts


@pytest.mark.parametrize("change", [
    "DELETE FROM allowed_users WHERE property_id = :p AND user_id = :u",
    # (their limits changed, not the list: the pass ended)
    "UPDATE allowed_users SET valid_until = '2000-01-01' WHERE property_id = :p AND user_id = :u",
], ids=["taken-off-the-list", "pass-ended"])
def test_a_lookup_changed_elsewhere_is_read_again(app, site, connect, backend, change):
    """A person taken off the allowed list by someone else, or whose pass someone ended, is
    a stranger at the next entry, though the process remembered them as allowed."""
    owner, staff = connect("owner"), connect("staff")
    expect(owner.call("add-allowed-user", propertyId=site["p1"], userId="neighbour"), "success")
    entry = {"propertyId": site["p1"], "userId": "neighbour"}
    for _ in range(2):
        assert expect(staff.call("add-auth-entry", **entry), "success",
                      "authorized")["authorized"] is True
    change_directly(app, change, p=site["p1"], u="neighbour")
    refused = expect(staff.call("add-auth-entry", **entry), "success", "authorized", "alertId")
    assert refused["authorized"] is False
    for _ in range(2):  # and stays one (what was read again is remembered instead)
        assert expect(staff.call("add-auth-entry", **entry), "success",
                      "authorized")["authorized"] is False


def test_a_person_added_elsewhere_is_let_in_though_remembered_as_a_stranger(app, site,
                                                                          connect, backend):
    """The other way round from the test above: the process remembers that nobody is on
    the list under that name, so the entry it writes from memory would be a stranger's
    with an alert; the database says otherwise at the commit, and the entry is written
    as allowed, with no alert."""
    staff = connect("staff")
    entry = {"propertyId": site["p1"], "userId": "neighbour"}
    for _ in range(2):
        assert expect(staff.call("add-auth-entry", **entry), "success", "authorized",
                      "alertId")["authorized"] is False
    alerts = change_counts(app)[0]
    change_directly(app, "INSERT INTO allowed_users (property_id, user_id) VALUES (:p, :u)",
                    p=site["p1"], u="neighbour")
    allowed = expect(staff.call("add-auth-entry", **entry), "success", "authorized")
    assert allowed["authorized"] is True and "alertId" not in allowed
    assert change_counts(app)[0] == alerts


def test_removing_a_drone_does_not_wait_for_its_property(app, site, connect, backend):
    """A drone's dispatch locks its property and then the drone; the removal of a drone
    must not lock them the other way round (the trigger that marks a property changed when
    its cameras change leaves drones alone), or the two would deadlock. Here the property
    is held locked by another transaction, as a dispatch holds it: the removal is answered
    while the lock is still held."""
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's matter (SQLite has one writer)")
    owner = connect("owner")
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold_property():
        with app.app_context(), db.engine.begin() as connection:
            connection.execute(text("SELECT id FROM properties WHERE id = :p FOR UPDATE"),
                               {"p": site["p1"]})
            locked.set()
            release.wait(LOCK_HELD_SECONDS)
            # (whether the lock was given up before the removal was answered)
            unanswered_at_release.append(not done.is_set())

    unanswered_at_release: list[bool] = []
    holder = threading.Thread(target=hold_property)
    holder.start()
    try:
        assert locked.wait(10)
        expect(owner.call("remove-equipment", propertyId=site["p1"],
                          equipmentId=site["drones"][0]), "success")
        done.set()
    finally:
        release.set()
        holder.join()
    assert unanswered_at_release == [False]  # answered while the property was still locked


def test_newest_first_lists_the_newest_when_writes_come_from_memory(app, site, connect):
    """Ids reserved ahead for writes served from memory never go back behind an id a read
    has just taken: the newest alert is the first one listed."""
    owner, neighbour = connect("owner"), connect("neighbour")
    for _ in range(3):  # p1 remembered, and ids held for alerts
        expect(raise_alert(owner, site["p1"]), "success", "id")
    for reason in ("first", "second", "third"):  # p2: first read, then from memory
        expect(neighbour.call("add-alert", propertyId=site["p2"], userId="neighbour",
                              reason=reason), "success", "id")
    listed = expect(neighbour.call("get-alerts", propertyId=site["p2"]), "data",
                    "alerts")["alerts"]
    assert [a["reason"] for a in listed] == ["third", "second", "first"]


@pytest.fixture
def refusing_audit(app):
    """A trigger that makes the audit entry of every add-alert fail (the statement that
    travels with COMMIT); removed afterwards."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            statements = [
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN IF NEW.action LIKE '%add-alert' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$",
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW "
                "EXECUTE FUNCTION refuse_audit()"]
            undo = ["DROP TRIGGER IF EXISTS refuse_audit ON audit_log",
                    "DROP FUNCTION IF EXISTS refuse_audit()"]
        else:
            statements = ["CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                          "WHEN NEW.action LIKE '%add-alert' BEGIN SELECT RAISE(ABORT, 'refused'); END"]
            undo = ["DROP TRIGGER IF EXISTS refuse_audit"]
        with db.engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))

    def lift():
        with app.app_context(), db.engine.begin() as connection:
            for statement in undo:
                connection.execute(text(statement))

    yield lift
    lift()


def test_a_statement_failing_with_the_commit_undoes_the_request(app, site, connect, backend,
                                                                  refusing_audit):
    owner = connect("owner")
    before = change_counts(app)
    for _ in range(6):  # more than one pooled connection meets the failure
        answer = raise_alert(owner, site["p1"])
        # (SQLite's RAISE(ABORT) is a constraint failure: "conflict")
        error = expect_error(answer, "internal_error" if backend == "postgresql" else "conflict")
        assert "refused" not in error["message"] and "INSERT" not in error["message"]
    assert change_counts(app) == before  # no alert, no event, no audit entry
    refusing_audit()
    # Every connection that failed (some with a PREPARE in the failed round trip) serves
    # the same query again.
    ids = [expect(raise_alert(owner, site["p1"]), "success", "id")["id"] for _ in range(12)]
    assert len(set(ids)) == 12
    alerts, events, entries = change_counts(app)
    assert (alerts, events, entries) == (before[0] + 12, before[1] + 12, before[2] + 12)


def test_the_seal_stores_a_batch_with_one_statement(app, backend, monkeypatch):
    """...and on PostgreSQL in autocommit: the cursor's move and the INSERT of the batch's
    seals, run by propsec_advance_cursor(). The entries themselves are never updated."""
    sent: list[bytes] = []
    original = sql._Cursor._execute

    def spy(self, text, statement, *args, **kwargs):
        sent.append(statement if isinstance(statement, bytes) else statement.encode())
        return original(self, text, statement, *args, **kwargs)

    with app.app_context():
        for n in range(seal.BATCH * 2 + 50):
            audit.record("test-entry", actor="admin", detail={"n": n})
        db.session.commit()
        monkeypatch.setattr(sql._Cursor, "_execute", spy)
        seal.seal_all()
        monkeypatch.undo()
        if backend == "postgresql":
            stores = [s for s in sent if b"INSERT INTO audit_seals" in s]
            assert len(stores) == 3, stores
            for statement in stores:
                assert statement.count(b"INSERT INTO audit_seals") == 1 and b"BEGIN" not in statement
        assert not [s for s in sent if b"UPDATE audit_log" in s]
        ok, sealed, problem = seal.verify()
        assert ok, problem
        assert sealed >= seal.BATCH * 2 + 50
        db.session.remove()


def test_a_fan_out_with_nothing_to_send_leaves_the_database_alone(app, site, connect):
    owner, admin = connect("owner"), connect("admin")
    statements = []

    def count(*_):
        statements.append(1)

    with app.app_context():
        fanout.step()  # places its cursor
        expect(raise_alert(owner, site["p1"]), "success")
        fanout.step()  # nothing to send: moves past the alert, then idles
        db.session.remove()
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            for _ in range(5):
                assert fanout.step() > 0
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        db.session.remove()
    assert statements == []
    # A webhook ends the idling at once: the next alert becomes a delivery.
    expect(admin.call("add-webhook", url="https://hooks.example.net/x",
                      events=["events.alerts"]), "success", "id")
    expect(raise_alert(owner, site["p1"]), "success")
    with app.app_context():
        while fanout.step() == 0:
            pass
        from propsec.models import WebhookDelivery
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
        db.session.remove()


def test_a_statement_never_sent_prepares_nothing(app, backend):
    if backend != "postgresql":
        pytest.skip("statements are prepared on PostgreSQL only")
    with app.app_context():
        db.engine.dispose()  # one connection from here on: the next two take the same one
        with sql.transaction(True) as tx:
            audit.record("never-sent", actor="admin")  # waits for a round trip; none comes
            first = id(tx._driver)
        with sql.transaction(True) as tx:
            audit.record("sent", actor="admin")
            assert id(tx._driver) == first
            tx.commit()
        actions = db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.in_(["never-sent", "sent"]))).all()
        assert actions == ["sent"]
        db.session.remove()


def test_a_deallocation_never_sent_is_done_later(app, backend):
    """After a failed round trip the connection owes a DEALLOCATE ALL; if the transaction
    that was to carry it ends unsent, the next one still carries it."""
    if backend != "postgresql":
        pytest.skip("statements are prepared on PostgreSQL only")
    with app.app_context():
        db.engine.dispose()
        with sql.transaction(True) as tx:
            audit.record("first", actor="admin")
            tx.commit()
            sql._OnServer.of(tx._pooled.info).unsure = True  # as after a failed round trip
        with sql.transaction(True) as tx:
            audit.record("never-sent", actor="admin")  # DEALLOCATE ALL waits with it
        with sql.transaction(True) as tx:
            audit.record("sent", actor="admin")
            tx.commit()
        actions = db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.in_(["first", "never-sent", "sent"]))
            .order_by(AuditEntry.id)).all()
        assert actions == ["first", "sent"]
        db.session.remove()
