"""The event pipeline (issue 10) on two `python app.py` processes sharing PostgreSQL and Redis:

- many writers on both processes, subscribers on both: every event arrives once, in one
  strictly increasing order that is the same on both processes, the same as the log and
  the same as a `since` replay;
- a transaction held open on purpose (a trigger that sleeps after the alert's row is
  written): the other writers' acknowledgements are not held up by it, and the events
  behind it are delivered in order once it commits;
- the event ids on PostgreSQL say which transaction wrote them (no sequence), and a new
  process starts its tailer at the present;
- 32 writers at once on one process reuse the pool's connections (none is opened for a
  request and closed again).

Redis outages and PostgreSQL restarts under write load are in test_faults.py. Skips (or,
with PROPSEC_REQUIRE_SERVICES=1, fails) without PostgreSQL and Redis."""
from __future__ import annotations

import threading
import time

import pytest

from propsec.models import CAMERA
from services import (Recorder, active_property, call, client_factory, cluster, event_log, ok,
                      slow_alert_trigger, sql, until, waiting_backends)

USERS = {"olive": "owner", "nora": "owner", "sam": "staff", "ada": "admin"}
WRITERS_PER_PROCESS = 8
WRITES_PER_WRITER = 12
SLOW_SECONDS = 3.0
FAST_ENOUGH = 1.0  # an acknowledgement that waited for the slow transaction took 3 s


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    with cluster(tmp_path_factory.mktemp("pipeline"), "pipeline", USERS, 2) as pair:
        yield pair


@pytest.fixture
def opened():
    with client_factory() as open_:
        yield open_


def camera_of(admin, pid: int) -> int:
    return ok(admin, "add-equipment", propertyId=pid, equipmentType=CAMERA,
              description="gate camera")["id"]


def ids_of(payloads) -> list[int]:
    return [p["eventId"] for p in payloads]


def settled(recorder, count: int, timeout: float = 30) -> list[dict]:
    recorder.wait(lambda r: len(r.payloads()) >= count, timeout)
    time.sleep(0.5)  # a moment more for anything twice
    return recorder.payloads()


def write_concurrently(writers, work) -> list:
    """Run work(n, writer) on a thread per writer, started together; their failures."""
    barrier = threading.Barrier(len(writers))
    failures: list = []

    def run(n, writer):
        barrier.wait(30)
        failures.extend(work(n, writer))

    threads = [threading.Thread(target=run, args=(n, w)) for n, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return failures


def test_many_writers_on_both_processes_one_order_everywhere(servers, opened):
    a, b = servers
    admin = opened(a, "ada")
    pid = active_property(admin)
    camera = camera_of(admin, pid)
    start = event_log(admin)[-1]["eventId"]
    watchers = [opened(server, "sam", "events.all") for server in (a, b)]
    owners = [opened(server, "olive", "events.all") for server in (a, b)]
    others = [opened(server, "nora", "events.all") for server in (a, b)]
    writers = [opened(server, user) for server in (a, b) for user in ("ada", "sam")
               for _ in range(WRITERS_PER_PROCESS // 2)]

    def work(n, writer):
        failed = []
        for i in range(WRITES_PER_WRITER):
            query, data = [("add-alert", {"propertyId": pid, "userId": "olive",
                                          "reason": f"w{n}-{i}"}),
                           ("add-visitor", {"propertyId": pid, "userId": f"v{n}",
                                            "cameraId": camera}),
                           ("add-auth-entry", {"propertyId": pid, "userId": "olive"})][i % 3]
            answer = call(writer, query, data)
            if answer["type"] != "success":
                failed.append(answer)
        return failed

    assert write_concurrently(writers, work) == []
    # alert: 1 event, visit: 2 (visits, scanned), authorized entry: 1
    expected = len(writers) * WRITES_PER_WRITER * 4 // 3
    # get-events gives final rows only: a transaction still open anywhere in the cluster (a
    # background step sealing the audit trail, say) holds the newest back for a moment
    deadline = time.monotonic() + 5
    while len(logged := ids_of(e for e in event_log(admin, since=start))) < expected \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(logged) == expected
    assert logged == sorted(logged) and len(set(logged)) == len(logged)
    for recorder in [w.recorder for w in watchers + owners]:
        assert ids_of(settled(recorder, len(logged))) == logged
    assert all(o.recorder.payloads() == [] for o in others)  # not nora's property

    # A newcomer on either process replaying from `start` gets the very same sequence.
    for server in (a, b):
        late = opened(server, "sam")
        late.recorder = Recorder(late, "events.all")
        answer = call(late, "subscribe", {"id": "events.all", "since": start})
        assert answer["data"]["replayed"] == len(logged), answer
        assert answer["data"]["lastEventId"] == logged[-1]
        assert ids_of(settled(late.recorder, len(logged))) == logged


def test_a_transaction_held_open_delays_only_its_own_ack(servers, opened):
    a, b = servers
    url = a.database_url
    admin = opened(a, "ada")
    pid = active_property(admin)
    # AFTER INSERT: the slow request has written its alert (so holds a transaction id) and
    # sleeps before it writes its event and commits.
    slow_alert_trigger(url, "held", SLOW_SECONDS, timing="AFTER")
    try:
        watchers = [opened(server, "sam", "events.alerts") for server in (a, b)]
        slow_writer, *writers = [opened(server, "ada") for server in (a, b, a, b, a)]
        slow: dict = {}

        def held():
            started = time.monotonic()
            slow["answer"] = call(slow_writer, "add-alert",
                                  {"propertyId": pid, "userId": "olive", "reason": "held"})
            slow["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=held)
        thread.start()
        assert until(lambda: sleeping(url) == 1), "the held transaction never started"
        acks, reasons = [], []
        for n, writer in enumerate(writers * 3):
            started = time.monotonic()
            ok(writer, "add-alert", propertyId=pid, userId="olive", reason=f"meanwhile-{n}")
            acks.append(time.monotonic() - started)
            reasons.append(f"meanwhile-{n}")
        still_held = sleeping(url) == 1
        delivered_meanwhile = [w.recorder.payloads() for w in watchers]
        thread.join(30)

        assert max(acks) < FAST_ENOUGH, acks
        assert still_held, "the other writes should have finished inside the held transaction"
        # Their events wait behind the older, still running transaction: nothing overtakes it.
        assert delivered_meanwhile == [[], []]
        assert slow["answer"]["type"] == "success" and slow["seconds"] >= SLOW_SECONDS - 0.2
        logged = [e for e in event_log(admin, "events.alerts") if e["propertyId"] == pid]
        assert [e["reason"] for e in logged] == ["held"] + reasons
        for watcher in watchers:
            got = settled(watcher.recorder, len(logged))
            assert ids_of(got) == ids_of(logged)
    finally:
        sql(url, "DROP TRIGGER IF EXISTS propsec_test_slow ON alerts")


def test_event_ids_name_their_transaction(servers, opened):
    a, _ = servers
    admin = opened(a, "ada")
    pid = active_property(admin)
    camera = camera_of(admin, pid)
    # two events in one transaction
    ok(admin, "add-visitor", propertyId=pid, userId="visitor-1", cameraId=camera)
    visit, scanned = event_log(admin)[-2:]
    assert (visit["event"], scanned["event"]) == ("events.visits", "events.scanned")
    assert scanned["eventId"] == visit["eventId"] + 1
    assert visit["eventId"] >> 16 == scanned["eventId"] >> 16  # the same transaction
    assert sql(a.database_url, "SELECT count(*) FROM pg_class WHERE relname = 'event_log_id_seq'") \
        == [(0,)]


def sleeping(url: str) -> int:
    return waiting_backends(url, "wait_event = 'PgSleep'")


def test_event_ids_keep_growing_after_a_move_to_a_new_cluster():
    """A logical restore into another cluster keeps the events but meets transaction ids
    that start again: init_db (run by every start) then continues the ids after the stored
    ones, and the tailer's horizon follows."""
    from services import postgres_database
    from support import make_app

    from propsec.database import init_db
    from propsec.extensions import db

    with postgres_database("restore") as url:
        app = make_app(url)
        with app.app_context():
            init_db(app)
            restored = sql(url, "SELECT (pg_current_xact_id()::text::bigint + 50000) << 16")[0][0]
            sql(url, "INSERT INTO event_log (id, name, property_id, owner_id, payload, "
                     f"created_at) VALUES ({restored}, 'events.alerts', 1, 'o', '{{}}', now())")
            assert sql(url, "SELECT propsec_next_event_id()")[0][0] < restored  # the problem
            init_db(app)
            assert sql(url, "SELECT propsec_next_event_id()")[0][0] > restored
            assert sql(url, "SELECT propsec_event_horizon()")[0][0] > restored
            init_db(app)  # a second start changes nothing more
            assert sql(url, "SELECT propsec_next_event_id()")[0][0] < restored + (2000 << 16)
            db.session.remove()
            db.engine.dispose()


def test_busy_writers_reuse_their_database_connections(servers, opened):
    """32 writers at once on one process: every connection the database sees during the
    burst is still open after it. None is opened for a request and closed again (each would
    cost a server backend and preparing every statement anew): the pool keeps as many as
    such a load needs."""
    import psycopg2

    a, _ = servers
    admin = opened(a, "ada")
    pid = active_property(admin)
    writers = [opened(a, "sam") for _ in range(32)]

    def burst() -> list:
        return write_concurrently(writers, lambda n, writer: [
            answer for answer in (call(writer, "add-alert", {"propertyId": pid, "userId": "olive",
                                                             "reason": f"b{n}"})
                                  for _ in range(15)) if answer["type"] != "success"])

    assert burst() == []  # warm-up: the pool grows to what the load needs
    watcher = psycopg2.connect(a.database_url)
    watcher.autocommit = True
    seen: set[int] = set()
    stop = threading.Event()

    def backends() -> set[int]:
        with watcher.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
            return {row[0] for row in cur.fetchall()}

    def watch():
        while not stop.is_set():
            seen.update(backends())
            time.sleep(0.01)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        assert burst() == []
    finally:
        stop.set()
        thread.join(10)
    try:
        churned = seen - backends()
    finally:
        watcher.close()
    assert seen and not churned, f"{len(churned)} connection(s) opened and closed in the burst"
