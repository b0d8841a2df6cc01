"""Faults (issue 6), each with nothing lost:

- `kill -9` of one of two server processes: its clients reconnect (the SDK by itself, once
  the process is back; a plain client by failing over to the other process) and, through
  `since`, receive every event caused meanwhile, once each, in order;
- a Redis outage: subscribers connected to either process keep receiving every event, in
  order, during the outage and after it, without reconnecting (each process tails the
  shared log; Redis only carries wake-up hints);
- a PostgreSQL restart under write load: requests during the outage get a clear error
  envelope (quickly, no hang), connects are refused with a reason, /healthz says 503, and
  once the database is back requests succeed without restarting propsec; every acknowledged
  write was delivered once, in order, as logged.

(A restart of the server itself, with browsers and SDK clients reconnecting by themselves,
is covered by test_client_sdk.py and e2e/test_reconnect.py.)

Redis and PostgreSQL are private instances started here on free ports, so that restarting
them disturbs nobody else's tests; the two-process set-up uses the shared PostgreSQL of
services.py. Skips (or, with PROPSEC_REQUIRE_SERVICES=1, fails) when they are unavailable."""
from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from live import LiveServer, free_port
from propsec.client import PropsecClient
from services import (Recorder, active_property, call, close_all, connect, event_log, ok,
                      postgres_database, seed_users, start_all, stop_all, unavailable)

USERS = {"olive": "owner", "sam": "staff", "ada": "admin"}


# --------------------------------------------------------------------------- private services


class PrivateRedis:
    """A redis-server of our own on a free port, to stop and start at will."""

    def __init__(self, tmp: Path):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            unavailable("Redis", "redis-server is not installed")
        self.port, self.dir = free_port(), tmp
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.5).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb in a scratch directory, trust auth)."""

    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found and not shutil.which("pg_ctl"):
            unavailable("PostgreSQL", "no pg_ctl/initdb found")
        bindir = Path(found[-1]).parent if found else Path(shutil.which("pg_ctl")).parent
        self.pg_ctl, self.initdb = str(bindir / "pg_ctl"), str(bindir / "initdb")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="propsec-pg-"))
        self.data = self.dir / "data"
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/propsec"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = list(args)
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout[-1000:]} {done.stderr[-1000:]}")

    def create(self) -> None:
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8")
        self.start()
        import psycopg2

        conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE propsec")
        conn.close()

    def start(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")

    def stop(self) -> None:
        """An immediate shutdown: what a crash looks like to the clients."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pair(tmp_path, redis_server):
    """Two server processes on one fresh PostgreSQL database and the private Redis."""
    with postgres_database("faults") as url:
        channel = f"propsec-faults-{os.getpid()}-{secrets.token_hex(3)}"
        servers = [LiveServer(tmp_path, database_url=url, PROPSEC_MESSAGE_QUEUE=redis_server.url,
                              PROPSEC_MESSAGE_QUEUE_CHANNEL=channel) for _ in range(2)]
        tokens = seed_users(servers[0], USERS)
        for server in servers:
            server.tokens = tokens
        try:
            start_all(*servers)
            yield servers
        finally:
            stop_all(*servers)


# --------------------------------------------------------------------------- helpers


class Collector:
    def __init__(self):
        self.items: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, payload: dict) -> None:
        with self.lock:
            self.items.append(payload)

    def wait(self, count: int, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.items) < count:
            time.sleep(0.05)
        time.sleep(0.3)  # a moment more for any duplicate
        with self.lock:
            return list(self.items)


def raise_alerts(client, pid: int, label: str, count: int) -> list[str]:
    reasons = [f"{label}-{n}" for n in range(count)]
    for reason in reasons:
        ok(client, "add-alert", propertyId=pid, userId="olive", reason=reason)
    return reasons


def reasons(payloads: list[dict]) -> list[str]:
    return [p["reason"] for p in payloads]


def in_order_once(payloads: list[dict]) -> bool:
    ids = [p["eventId"] for p in payloads]
    return all(x < y for x, y in zip(ids, ids[1:]))


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class WriteLoad:
    """One connection raising alerts back to back on a thread: which were acknowledged, and
    the error envelopes of the rest."""

    def __init__(self, client, pid: int):
        self.client, self.pid = client, pid
        self.acked: list[str] = []
        self.errors: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            reason = f"load-{n}"
            n += 1
            try:
                answer = call(self.client, "add-alert", {"propertyId": self.pid,
                                                         "userId": "olive", "reason": reason})
            except Exception:  # noqa: BLE001 - a timed-out call: neither acked nor an envelope
                continue
            (self.acked if answer["type"] == "success" else self.errors).append(
                reason if answer["type"] == "success" else answer)
            time.sleep(0.02)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)


# --------------------------------------------------------------------------- kill -9


def test_kill_9_of_one_process_loses_no_event(pair):
    a, b = pair
    admin = connect(b.url, b.tokens["ada"])
    pid = active_property(admin)
    got = Collector()
    sdk = PropsecClient(a.url, a.tokens["sam"], transports=["websocket"], reconnection_delay=0.5,
                        reconnection_delay_max=1, randomization_factor=0)
    plain = connect(a.url, a.tokens["sam"])
    failover = None
    try:
        sdk.connect()
        sdk.subscribe("events.alerts", got)
        plain.recorder = Recorder(plain, "events.alerts")
        assert call(plain, "subscribe", {"id": "events.alerts"})["type"] == "status"
        before = raise_alerts(admin, pid, "before", 3)
        assert reasons(got.wait(3)) == before
        assert plain.recorder.wait(lambda r: len(r.payloads()) == 3)
        last_seen = plain.recorder.payloads()[-1]["eventId"]

        a.stop(signal.SIGKILL)
        assert wait_for(lambda: not sdk.connected, 15), "the SDK did not notice the kill"
        away = raise_alerts(admin, pid, "away", 5)  # the surviving process keeps working

        # A plain client fails over to the surviving process and catches up with `since`.
        failover = connect(b.url, b.tokens["sam"])
        failover.recorder = Recorder(failover, "events.alerts")
        answer = call(failover, "subscribe", {"id": "events.alerts", "since": last_seen})
        assert answer["type"] == "status" and answer["data"]["replayed"] == 5, answer

        # The SDK client reconnects by itself once its process is back, and replays.
        a.start(90)
        assert sdk.wait_connected(30), "the SDK did not reconnect"
        after = raise_alerts(admin, pid, "after", 2)
        seen = got.wait(10)
        assert reasons(seen) == before + away + after
        assert in_order_once(seen)
        assert failover.recorder.wait(lambda r: len(r.payloads()) == 7)
        assert reasons(failover.recorder.payloads()) == away + after
        assert in_order_once(failover.recorder.payloads())
        assert sdk.reconnects == 1
    finally:
        sdk.close()
        close_all([c for c in (admin, plain, failover) if c is not None])


# --------------------------------------------------------------------------- Redis restart


def test_redis_outage_loses_nothing_for_connected_subscribers(pair, redis_server):
    """Redis stops with subscribers connected on both processes and writers on both: every
    event reaches every subscriber, in order, without a reconnect, during the outage (the
    tailers poll the shared log) and after it."""
    a, b = pair
    admins = [connect(server.url, server.tokens["ada"]) for server in (a, b)]
    pid = active_property(admins[0])
    listeners = []
    for server in (a, b):
        listener = connect(server.url, server.tokens["sam"])
        listener.recorder = Recorder(listener, "events.alerts")
        assert call(listener, "subscribe", {"id": "events.alerts"})["type"] == "status"
        listeners.append(listener)
    try:
        caused = raise_alerts(admins[1], pid, "before", 2)
        redis_server.stop()
        time.sleep(3)  # long enough for the listeners to notice
        started = time.monotonic()
        for n in range(6):  # requests are answered and committed meanwhile, on both
            caused += raise_alerts(admins[n % 2], pid, f"outage-{n}", 1)
        assert time.monotonic() - started < 10
        for listener in listeners:  # ...and delivered meanwhile, not only after
            assert listener.recorder.wait(lambda r: len(r.payloads()) == len(caused), 10), \
                reasons(listener.recorder.payloads())

        redis_server.start()
        caused += raise_alerts(admins[0], pid, "after", 1) + raise_alerts(admins[1], pid, "after-b", 1)
        logged = [e for e in event_log(admins[0], "events.alerts") if e["propertyId"] == pid]
        assert reasons(logged) == caused
        for listener in listeners:
            assert listener.recorder.wait(lambda r: len(r.payloads()) >= len(caused), 10)
            time.sleep(0.3)
            got = listener.recorder.payloads()
            assert reasons(got) == caused and in_order_once(got)
            assert [p["eventId"] for p in got] == [e["eventId"] for e in logged]
            assert listener.connected  # the same connection throughout
    finally:
        if redis_server.process is None:
            redis_server.start()
        close_all(admins + listeners)


# --------------------------------------------------------------------------- PostgreSQL restart


@pytest.fixture(scope="module")
def private_postgres():
    try:
        import psycopg2  # noqa: F401
    except ImportError as exc:
        unavailable("PostgreSQL", f"psycopg2 is not installed ({exc})")
    server = PrivatePostgres()
    try:
        server.create()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        server.destroy()
        unavailable("PostgreSQL", f"cannot run a private cluster: {exc}")
    yield server
    server.destroy()


def test_postgres_restart_gives_clear_errors_then_recovers(tmp_path, private_postgres):
    server = LiveServer(tmp_path, database_url=private_postgres.url)
    tokens = seed_users(server, USERS)
    server.tokens = tokens
    with server:
        admin = connect(server.url, tokens["ada"])
        listener = connect(server.url, tokens["sam"])
        listener.recorder = Recorder(listener, "events.alerts")
        admin_writer = connect(server.url, tokens["ada"])
        pid = active_property(admin)
        load = WriteLoad(admin_writer, pid)
        try:
            assert call(listener, "subscribe", {"id": "events.alerts"})["type"] == "status"
            load.start()
            assert wait_for(lambda: len(load.acked) >= 5, 10), "the write load did not start"
            private_postgres.stop()
            for event, data in (("add-alert", {"propertyId": pid, "userId": "olive"}),
                                ("get-property", {"propertyId": pid}), ("get-tiers", {})):
                started = time.monotonic()
                answer = call(admin, event, data)
                assert time.monotonic() - started < 15, f"{event} hung while the database was down"
                assert answer["type"] == "error", answer
                assert answer["data"]["code"] == "internal_error", answer
                assert "database" in answer["data"]["message"], answer
            health = requests.get(server.url + "/healthz", timeout=15)
            assert health.status_code == 503 and "database" in health.json()["down"]
            refused = PropsecClient(server.url, tokens["olive"], reconnection=False)
            with pytest.raises(Exception, match="unavailable"):
                refused.connect(timeout=15)
            refused.close()
            assert admin.connected and listener.connected  # live connections are kept

            during = len(load.acked)
            time.sleep(1)
            private_postgres.start()
            assert wait_for(lambda: call(admin, "get-tiers")["type"] == "data", 15)
            assert wait_for(lambda: len(load.acked) > during + 5, 15), "writes did not resume"
            load.stop()
            ok(admin, "add-alert", propertyId=pid, userId="olive", reason="after the outage")
            assert listener.recorder.wait(
                lambda r: reasons(r.payloads())[-1:] == ["after the outage"], 15)
            assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
            with PropsecClient(server.url, tokens["olive"]) as olive:
                assert olive.call("get-property", propertyId=pid)["property"]["id"] == pid
            # Every refusal was a clear envelope; every acknowledged alert was delivered once,
            # in order, exactly as logged; nothing half-done was kept.
            assert load.errors and all(e["data"]["code"] == "internal_error" and
                                       "database" in e["data"]["message"] for e in load.errors)
            got = listener.recorder.payloads()
            assert in_order_once(got)
            delivered = reasons(got)
            assert set(load.acked) <= set(delivered)
            logged = [e for e in event_log(admin, "events.alerts") if e["propertyId"] == pid]
            assert [e["eventId"] for e in logged] == [p["eventId"] for p in got]
            alerts = ok(admin, "get-alerts", propertyId=pid, limit=1000)["alerts"]
            assert sorted(a_["reason"] for a_ in alerts) == sorted(delivered)
            assert delivered[-1] == "after the outage"
        finally:
            load.stop()
            close_all([admin, listener, admin_writer])
        log = server.log_path.read_text()
    assert "Traceback" not in log and "[SQL:" not in log
