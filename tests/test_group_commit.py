"""Group commit (propsec/protocol/group_commit.py), on SQLite and PostgreSQL: requests that
arrive together share one transaction, each answered only after that commit, each failure
its own.

The requests run on real threads through the real dispatcher; the gathering pause is
replaced by one that waits until every request of the test has queued, so the group is
known. The server-process tests (test_pipeline.py, test_load.py, the e2e suite) run the
same code under eventlet with the ordinary pause."""
from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import select

from helpers import change_counts
from propsec import sql
from propsec.extensions import db
from propsec.models import Alert
from propsec.ops import metrics
from propsec.protocol import group_commit
from propsec.protocol.access import Principal
from propsec.protocol.dispatcher import dispatch

both = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

STAFF = Principal("staff", "Staff Person", "staff")


class _Connection:
    sid = "group-commit-test"
    address = "127.0.0.1"

    def take_token(self) -> None:
        pass


def gathering_until(groups_of: list[int]):
    """A gather pause that returns once the queue holds the next expected number."""
    sizes = iter(groups_of)

    def gather():
        want = next(sizes)
        while len(group_commit.groups._queue) < want:
            threading.Event().wait(0.005)
    return gather


def at_once(app, payloads: list[tuple[str, dict]]) -> list[dict]:
    """Dispatch every (query, payload) from its own thread; the envelopes in that order."""
    answers: list = [None] * len(payloads)

    def send(n: int, name: str, payload: dict) -> None:
        with app.app_context():
            answers[n] = dispatch(STAFF, _Connection(), "queries." + name, payload)

    threads = [threading.Thread(target=send, args=(n, *p)) for n, p in enumerate(payloads)]
    for thread in threads:
        thread.start()
        threading.Event().wait(0.01)  # the first to arrive leads
    for thread in threads:
        thread.join(10)
    return answers


def group_sizes() -> float:
    return metrics.registry.get_sample_value("propsec_commit_group_size_sum") or 0.0


def alerts_that_fail_after_writing(monkeypatch, failing_reason: str, first=None) -> None:
    """`add-alert` with `failing_reason` writes its alert, then is refused (a conflict);
    `first(reason)` runs before every alert is written."""
    from propsec.handlers import alerts
    from propsec.protocol.errors import Conflict

    real = alerts.raise_alert

    def writes_then_fails(req, user_id, reason, *args, **kwargs):
        if first is not None:
            first(reason)
        made = real(req, user_id, reason, *args, **kwargs)
        if reason == failing_reason:
            raise Conflict("refused after its alert was written")
        return made
    monkeypatch.setattr(alerts, "raise_alert", writes_then_fails)


def sent_statements(monkeypatch) -> list[bytes]:
    """Every statement PostgreSQL's batching cursor sends from now on, in order."""
    sent: list[bytes] = []
    original = sql._BatchingCursor._send

    def spy(self, statements, fetch):
        sent.extend(statements)
        return original(self, statements, fetch)
    monkeypatch.setattr(sql._BatchingCursor, "_send", spy)
    return sent


@pytest.fixture
def grouped(monkeypatch):
    def install(*sizes: int):
        monkeypatch.setattr(group_commit, "groups",
                            group_commit.CommitGroups(gathering_until(list(sizes))))
    return install


@both
def test_requests_that_arrive_together_share_one_commit_and_fail_alone(app, site, grouped):
    grouped(7)
    before, sizes = change_counts(app), group_sizes()
    alert = {"propertyId": site["p1"], "userId": "staff", "reason": "gate forced"}
    visit = {"propertyId": site["p1"], "userId": "courier", "cameraId": site["camera"]}
    answers = at_once(app, [("add-alert", alert), ("add-alert", alert),
                            ("add-alert", {**alert, "propertyId": 999_999}),  # no such property
                            ("add-visitor", visit),
                            # fails after its first statements have reached the database
                            ("add-visitor", {**visit, "cameraId": 999_999}),
                            ("add-alert", {**alert, "propertyId": site["p2"]}),
                            ("add-alert", alert)])
    assert [a["type"] for a in answers] == ["success", "success", "error", "success", "error",
                                            "success", "success"], answers
    assert answers[2]["data"]["code"] == "not_found"
    assert answers[4]["data"]["code"] == "validation_error"
    assert group_sizes() - sizes == 7, "all seven went through one commit"
    alerts, events, entries = (after - then for after, then in zip(change_counts(app), before))
    assert alerts == 4 and entries == 5, "the failed request left nothing; the others all"
    assert events == 6  # four alerts, and the visit's visit and scanned events
    with app.app_context():
        stored = db.session.scalars(select(Alert.id).order_by(Alert.id)).all()[-4:]
        db.session.remove()
    assert sorted(answers[n]["data"]["id"] for n in (0, 1, 5, 6)) == stored, \
        "each request was told its own alert's id"


@both
def test_a_failed_commit_fails_every_request_of_the_group_and_keeps_nothing(app, site, grouped,
                                                                            monkeypatch):
    grouped(3)
    before = change_counts(app)

    def full_disk(self):
        raise sql.DBAPIError.instance("COMMIT", None, sqlite3.OperationalError("database or disk is full"),
                                      sqlite3.Error, hide_parameters=True)
    monkeypatch.setattr(sql.OwnTransaction, "commit", full_disk)
    alert = {"propertyId": site["p1"], "userId": "staff", "reason": "window"}
    answers = at_once(app, [("add-alert", alert)] * 3)
    assert [(a["type"], a["data"]["code"]) for a in answers] == [("error", "internal_error")] * 3
    assert all("unavailable" in a["data"]["message"] for a in answers)
    assert change_counts(app) == before


@sqlite_only
def test_when_sqlite_drops_the_whole_transaction_the_earlier_members_fail_too(app, site,
                                                                             grouped, monkeypatch):
    """SQLite rolls back the whole transaction on some errors (a full disk, an I/O error):
    the requests before the failing one lose their changes, so they must not be told
    success; the ones after it start a new transaction and succeed."""
    grouped(4)
    before = change_counts(app)
    from propsec.handlers import alerts

    real = alerts.raise_alert

    def sometimes_drops(req, user_id, reason, *args, **kwargs):
        if reason == "drop":
            sql.in_transaction().plain("ROLLBACK")
            raise sql.DBAPIError.instance("INSERT", None, sqlite3.OperationalError("disk I/O error"),
                                          sqlite3.Error, hide_parameters=True)
        return real(req, user_id, reason, *args, **kwargs)
    monkeypatch.setattr(alerts, "raise_alert", sometimes_drops)
    alert = {"propertyId": site["p1"], "userId": "staff", "reason": "fence"}
    answers = at_once(app, [("add-alert", alert), ("add-alert", {**alert, "reason": "drop"}),
                            ("add-alert", alert), ("add-alert", alert)])
    assert [a["type"] for a in answers] == ["error", "error", "success", "success"], answers
    alerts_added, events, entries = (after - then for after, then in zip(change_counts(app), before))
    assert (alerts_added, events, entries) == (2, 2, 2)


@both
def test_a_request_alone_is_committed_at_once(app, site):
    before, sizes = change_counts(app), group_sizes()
    with app.app_context():
        answer = dispatch(STAFF, _Connection(), "queries.add-alert",
                          {"propertyId": site["p1"], "userId": "staff", "reason": "door"})
    assert answer["type"] == "success"
    assert group_sizes() - sizes == 1
    assert change_counts(app)[0] == before[0] + 1
    with app.app_context():
        refused = dispatch(STAFF, _Connection(), "queries.add-alert",
                           {"propertyId": 999_999, "userId": "staff", "reason": "door"})
        again = dispatch(STAFF, _Connection(), "queries.add-alert",
                         {"propertyId": site["p1"], "userId": "staff", "reason": "door"})
    assert refused["data"]["code"] == "not_found" and again["type"] == "success"
    assert change_counts(app)[0] == before[0] + 2


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_statement_postgresql_refuses_fails_its_own_request_and_the_others_run_again(
        app, site, grouped, monkeypatch):
    """On PostgreSQL a request's statements travel with others' (at the latest with the
    group's COMMIT), so a refused one cannot be told apart: the group is rolled back and each
    request runs again alone, getting the answer it would have had alone."""
    grouped(4, 1, 1, 1, 1)  # the group of four, then each again by itself
    before, sizes = change_counts(app), group_sizes()
    from propsec.handlers import alerts

    real = alerts.raise_alert

    def refused_by_the_server(req, user_id, reason, *args, **kwargs):
        if reason == "poison":  # a statement nobody reads the answer of, failing there
            sql.in_transaction().queue(b"SELECT 1 / 0")
        return real(req, user_id, reason, *args, **kwargs)
    monkeypatch.setattr(alerts, "raise_alert", refused_by_the_server)
    alert = {"propertyId": site["p1"], "userId": "staff", "reason": "fence"}
    answers = at_once(app, [("add-alert", alert), ("add-alert", {**alert, "reason": "poison"}),
                            ("add-alert", {**alert, "propertyId": 999_999}),
                            ("add-alert", alert)])
    assert [a["type"] for a in answers] == ["success", "error", "error", "success"], answers
    assert answers[1]["data"]["code"] == "internal_error"
    assert answers[2]["data"]["code"] == "not_found", "its own answer, not run again"
    assert group_sizes() - sizes == 2, "the refused group is not counted, nor the request refused alone"
    alerts_added, events, entries = (after - then for after, then in zip(change_counts(app), before))
    assert (alerts_added, events, entries) == (2, 2, 2)
    with app.app_context():
        stored = db.session.scalars(select(Alert.id).order_by(Alert.id)).all()[-2:]
        db.session.remove()
    assert sorted(answers[n]["data"]["id"] for n in (0, 3)) == stored


@both
def test_a_group_of_different_queries_reads_each_ones_lookups_at_the_edges_of_the_id_range(
        app, site, grouped):
    """Members with and without lookups, values at the top of the id range: each gets the
    answer it would get alone (on PostgreSQL all of them come from the group's one read)."""
    from propsec.protocol.schemas import MAX_ID

    grouped(5)
    alert = {"propertyId": site["p1"], "userId": "staff", "reason": "gate"}
    answers = at_once(app, [
        ("add-alert", alert),
        ("add-visitor", {"propertyId": site["p1"], "userId": "courier", "cameraId": MAX_ID}),
        ("add-auth-entry", {"propertyId": site["p1"], "userId": "owner"}),
        ("add-alert", {**alert, "propertyId": MAX_ID}),
        ("add-visitor", {"propertyId": site["p2"], "userId": "courier",
                         "cameraId": site["other_camera"]})])
    assert [(a["type"], a["data"].get("code")) for a in answers] == [
        ("success", None), ("error", "validation_error"), ("success", None),
        ("error", "not_found"), ("success", None)], answers
    assert answers[2]["data"]["authorized"] is True, "the owner may always come in"


@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgresql_sends_a_savepoint_only_for_a_request_that_read_mid_way(
        app, site, grouped, monkeypatch):
    """A member whose statements all wait for the COMMIT is undone by dropping them, so it
    needs no SAVEPOINT (one would cost the server a subtransaction); one that read something
    mid-way has sent its first statements, and its savepoint undoes them when it fails."""
    grouped(4)
    sent = sent_statements(monkeypatch)
    read_mid_way = sql.Prepared(select(Alert.id).limit(1))

    def first(reason: str) -> None:
        if reason.startswith("mid-way"):
            read_mid_way.first(sql.in_transaction())  # a round trip: its SAVEPOINT goes too
    alerts_that_fail_after_writing(monkeypatch, "mid-way, then fails", first)
    before = change_counts(app)
    alert = {"propertyId": site["p1"], "userId": "staff", "reason": "fence"}
    answers = at_once(app, [("add-alert", alert),
                            ("add-alert", {**alert, "reason": "mid-way, then fails"}),
                            ("add-alert", {**alert, "reason": "mid-way"}),
                            ("add-alert", alert)])
    assert [a["type"] for a in answers] == ["success", "error", "success", "success"], answers
    controls = [s for s in sent if s.split()[0] in (b"SAVEPOINT", b"RELEASE", b"ROLLBACK")]
    assert controls == [b"SAVEPOINT propsec_request", b"ROLLBACK TO propsec_request",
                        b"RELEASE propsec_request",  # the one that failed
                        b"SAVEPOINT propsec_request", b"RELEASE propsec_request"], controls
    assert [after - then for after, then in zip(change_counts(app), before)] == [3, 3, 3], \
        "the failed request's alert, event and audit entry were undone"
    with app.app_context():
        stored = db.session.scalars(select(Alert.reason).order_by(Alert.id)).all()[-3:]
        db.session.remove()
    assert stored == ["fence", "mid-way", "fence"]


@sqlite_only
def test_sqlite_runs_members_without_savepoints_and_starts_again_without_one_that_wrote_then_failed(
        app, site, grouped, monkeypatch):
    """SQLite's members take no savepoints: one that fails before changing a row leaves
    nothing behind; one that changed rows and then failed takes the transaction back, and
    the members before it run again, so each request is told the id of a row that is kept."""
    grouped(5)
    statements: list[str] = []
    original = sql._Cursor.plain

    def spy(self, statement):
        statements.append(statement)
        return original(self, statement)
    monkeypatch.setattr(sql._Cursor, "plain", spy)
    alerts_that_fail_after_writing(monkeypatch, "then fails")
    before = change_counts(app)
    alert = {"propertyId": site["p1"], "userId": "staff", "reason": "fence"}
    answers = at_once(app, [("add-alert", alert), ("add-alert", {**alert, "reason": "gate"}),
                            ("add-alert", {**alert, "propertyId": 999_999}),
                            ("add-alert", {**alert, "reason": "then fails"}),
                            ("add-alert", {**alert, "reason": "door"})])
    assert [a["type"] for a in answers] == ["success", "success", "error", "error",
                                            "success"], answers
    assert answers[2]["data"]["code"] == "not_found"
    assert answers[3]["data"]["code"] == "conflict"
    assert not [s for s in statements if s.startswith(("SAVEPOINT", "RELEASE"))], statements
    assert statements.count("ROLLBACK") == 1, "started again once, for the one that wrote"
    alerts_added, events, entries = (after - then for after, then in zip(change_counts(app), before))
    assert (alerts_added, events, entries) == (3, 3, 3)
    with app.app_context():
        stored = db.session.execute(select(Alert.id, Alert.reason).order_by(Alert.id)).all()[-3:]
        db.session.remove()
    assert [r.reason for r in stored] == ["fence", "gate", "door"]
    assert [answers[n]["data"]["id"] for n in (0, 1, 4)] == [r.id for r in stored], \
        "each was told the id of its alert as kept"


@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgresql_writes_a_groups_new_rows_as_one_insert_per_table_in_order(
        app, site, grouped, monkeypatch):
    """The new alerts, event rows and audit entries travel as one multi-row INSERT per table
    at the end of the batch, not one EXECUTE each; ids keep the requests' order and awkward
    text arrives whole."""
    from propsec.models import AuditEntry, EventRecord

    grouped(4)
    sent = sent_statements(monkeypatch)
    reasons = ["gate", "it's \\ a 'quote' -- ; $1 %s %(x)s", "ünïcödé ✓", "door"]
    answers = at_once(app, [("add-alert", {"propertyId": site["p1"], "userId": "staff",
                                           "reason": reason}) for reason in reasons])
    assert [a["type"] for a in answers] == ["success"] * 4, answers
    inserts = [s for s in sent if s.startswith(b"INSERT INTO")]
    assert [s.split(b" (")[0] for s in inserts] == [
        b"INSERT INTO alerts", b"INSERT INTO audit_log", b"INSERT INTO event_log"], inserts
    assert all(s.count(b"), (") == 3 for s in inserts), "four rows each"
    assert sent.index(inserts[-1]) < sent.index(b"COMMIT")
    with app.app_context():
        events = db.session.execute(select(EventRecord.id, EventRecord.payload)
                                    .order_by(EventRecord.id)).all()[-4:]
        audited = db.session.scalars(select(AuditEntry.detail)
                                     .order_by(AuditEntry.id)).all()[-4:]
        db.session.remove()
    by_request = sorted(range(4), key=lambda n: answers[n]["data"]["id"])
    assert [e.payload["reason"] for e in events] == [reasons[n] for n in by_request], \
        "event ids follow the order the requests ran in, text whole"
    assert [d["reason"] for d in audited] == [reasons[n] for n in by_request]
    with app.app_context():
        kept = db.session.scalars(select(Alert.reason).order_by(Alert.id)).all()[-4:]
        db.session.remove()
    assert kept == [reasons[n] for n in by_request]
