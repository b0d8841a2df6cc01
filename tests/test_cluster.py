"""Two `python app.py` processes on one PostgreSQL database sharing one Redis message queue.

A client on either process sees every event exactly once, in eventId order, whichever
process caused it; `subscribe` with `since` replays from the shared log on either process;
/healthz reports the queue and answers 503 naming it when Redis is unreachable.
The processes read the log by themselves only once a minute here (`POLL_SECONDS`), so what
crosses from one process to the other in these tests' seconds was carried by a wake-up hint.
Skips when PostgreSQL or Redis is unreachable (see services.py)."""
from __future__ import annotations

import threading

import pytest
import requests

from live import LiveServer, free_port
from services import (Recorder, active_property, call, client_factory, cluster, connect,
                      event_log, ok)

USERS = {"olive": "owner", "nora": "owner", "sam": "staff", "ada": "admin"}
WRITERS_PER_PROCESS = 6
ALERTS_PER_WRITER = 5
POLL_SECONDS = "60"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    dead_queue = LiveServer(tmp, PROPSEC_MESSAGE_QUEUE=f"redis://127.0.0.1:{free_port()}/0")
    dead_queue.expect_healthy = False
    with cluster(tmp, "cluster", USERS, 2, dead_queue,
                 PROPSEC_EVENT_POLL_SECONDS=POLL_SECONDS) as (a, b):
        a.name, b.name = "A", "B"
        a.dead_queue = dead_queue
        yield a, b


@pytest.fixture
def clients():
    with client_factory() as open_:
        yield open_


def event_ids(payloads: list[dict]) -> list[int]:
    return [p["eventId"] for p in payloads]


def strictly_increasing(ids: list[int]) -> bool:
    return all(x < y for x, y in zip(ids, ids[1:]))


def quiet(recorder, expected: int, timeout: float = 15.0) -> list:
    """Wait until `expected` payloads arrived, then a moment more for any duplicate."""
    recorder.wait(lambda r: len(r.payloads()) >= expected, timeout)
    threading.Event().wait(0.5)
    return recorder.payloads()


def test_event_caused_on_b_reaches_a_exactly_once(servers, clients):
    a, b = servers
    staff_a = clients(a, "sam", "events.property-added", "events.all")
    owner_a = clients(a, "olive", "events.property-added")
    other_owner_a = clients(a, "nora", "events.property-added")
    admin_b = clients(b, "ada")

    pid = ok(admin_b, "add-property", location="1 Remote Road", tier=2, x=5, y=5,
             description="caused on B", clientId="olive")["id"]

    staff_events = quiet(staff_a.recorder, 2)
    [added] = staff_a.recorder.payloads("events.property-added")
    [copy] = staff_a.recorder.payloads("events.all")
    assert len(staff_events) == 2
    assert added["id"] == pid and added["location"] == "1 Remote Road"
    assert copy["event"] == "events.property-added" and copy["eventId"] == added["eventId"]
    assert event_ids(quiet(owner_a.recorder, 1)) == [added["eventId"]]
    assert other_owner_a.recorder.payloads() == []  # not nora's property


def test_event_ids_increase_system_wide_under_concurrent_writes(servers, clients):
    a, b = servers
    watchers = [clients(server, "sam", "events.alerts") for server in (a, b)]
    owner_watcher = clients(b, "olive", "events.all")
    pid = active_property(clients(a, "ada"))
    writers = [clients(server, "ada") for server in (a, b) for _ in range(WRITERS_PER_PROCESS)]
    total = len(writers) * ALERTS_PER_WRITER
    barrier = threading.Barrier(len(writers))
    failures = []

    def write(n, writer):
        barrier.wait(30)
        for i in range(ALERTS_PER_WRITER):
            answer = call(writer, "add-alert", {"propertyId": pid, "userId": "olive",
                                                 "reason": f"writer {n} alert {i}"})
            if answer["type"] != "success":
                failures.append(answer)

    threads = [threading.Thread(target=write, args=(n, w)) for n, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures[:3]

    logged = [e["eventId"] for e in event_log(writers[0], "events.alerts")
              if e["propertyId"] == pid]
    assert len(logged) == total
    for watcher in watchers:
        received = quiet(watcher.recorder, total)
        ids = event_ids(received)
        assert strictly_increasing(ids), ids
        assert ids == logged  # every one, once, in log order, on either process
    owner_ids = [p["eventId"] for p in quiet(owner_watcher.recorder, total)
                 if p["event"] == "events.alerts"]
    assert owner_ids == logged


@pytest.mark.parametrize("replay_on", ["A", "B"])
def test_subscribe_since_replays_on_either_process(servers, clients, replay_on):
    a, b = servers
    admin_a, admin_b = clients(a, "ada"), clients(b, "ada")
    pid = active_property(admin_a)
    since = event_log(admin_a)[-1]["eventId"]
    caused = []
    for n in range(6):  # alternate the process that causes each event
        writer = (admin_a, admin_b)[n % 2]
        caused.append(ok(writer, "add-alert", propertyId=pid, userId="olive", reason=f"r{n}")["id"])

    server = a if replay_on == "A" else b
    late = connect(server.url, server.tokens["sam"])
    try:
        recorder = Recorder(late, "events.alerts")
        answer = call(late, "subscribe", {"id": "events.alerts", "since": since})
        assert answer["type"] == "status" and answer["data"]["replayed"] == len(caused), answer
        replayed = quiet(recorder, len(caused))
        assert [p["alertId"] for p in replayed] == caused
        assert strictly_increasing(event_ids(replayed))

        # ...then it goes on live, with events caused on the other process too.
        other = admin_b if server is a else admin_a
        live_alert = ok(other, "add-alert", propertyId=pid, userId="olive", reason="live")["id"]
        after = quiet(recorder, len(caused) + 1)
        assert [p["alertId"] for p in after] == caused + [live_alert]
        assert strictly_increasing(event_ids(after))
    finally:
        late.disconnect()


def test_subscribe_since_while_the_other_process_writes(servers, clients):
    """Events of B still on their way through Redis when a client subscribes on A with
    `since` arrive once, in order: in the replay or live, never both (no gap either)."""
    a, b = servers
    pid = active_property(clients(a, "ada"))
    writers = [clients(b, "ada") for _ in range(4)]
    stop = threading.Event()

    def write(writer):
        while not stop.wait(0.01):
            call(writer, "add-alert", {"propertyId": pid, "userId": "olive", "reason": "busy"})

    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    histories = []
    try:
        reader = clients(a, "sam", "events.alerts")  # live: the latest ids, to replay from
        for _ in range(6):
            threading.Event().wait(0.3)
            recent = event_ids(reader.recorder.payloads())
            since = recent[-3] if len(recent) >= 3 else 0
            late = clients(a, "sam")
            late.recorder = Recorder(late, "events.alerts")
            answer = call(late, "subscribe", {"id": "events.alerts", "since": since})
            assert answer["type"] == "status", answer
            histories.append((since, late.recorder))
        threading.Event().wait(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    threading.Event().wait(0.5)
    logged = event_ids(event_log(writers[0], "events.alerts", min(s for s, _ in histories)))
    for since, recorder in histories:
        # (pushed from the log as each row becomes final: the last ones may still be on their way)
        want = len([i for i in logged if i > since])
        recorder.wait(lambda r: len(r.payloads()) >= want, 10)
        ids = event_ids(recorder.payloads())
        assert strictly_increasing(ids), (since, ids)
        assert ids == [i for i in logged if i > since], since  # no gap, nothing twice


def test_healthz_reports_the_queue(servers):
    for server in servers:
        answer = requests.get(server.url + "/healthz", timeout=10)
        assert answer.status_code == 200
        assert answer.json()["queue"] == "ok" and answer.json()["database"] == "ok"


def test_healthz_is_503_naming_a_dead_queue(servers):
    dead = servers[0].dead_queue
    for answer in (dead.first_health, requests.get(dead.url + "/healthz", timeout=10)):
        assert answer.status_code == 503
        body = answer.json()
        assert body["queue"] == "down" and body["down"] == ["queue"]
        assert body["database"] == "ok"
