"""`flask --app app simulate` against a real server seeded with demo data."""
from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from live import ROOT, LiveServer, free_port
from test_client_sdk import prepare

from propsec.client import PropsecClient


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("simulator"))
    server.token = prepare(server, {"checker": "staff"})["checker"]
    server.flask("seed-demo", "--properties", "20")
    with server:
        yield server


def simulate(server: LiveServer, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", "simulate", *args],
                          cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=180)


def activity(client: PropsecClient) -> dict[str, int]:
    """Today's visits, all entries, alerts and crimes on ACTIVE properties; drones out."""
    today = datetime.now(timezone.utc).date()
    days = {"from": str(today - timedelta(days=1)), "to": str(today)}
    totals = {"visits": 0, "entries": 0, "alerts": 0}
    for prop in client.call("get-map")["properties"]:
        if prop["status"] != "ACTIVE":
            continue
        pid = prop["id"]
        scanned = client.call("get-scanned-visitors", {"propertyId": pid, **days})["visitors"]
        totals["visits"] += sum(day["count"] for day in scanned)
        totals["entries"] += len(client.call("get-auth-entries", propertyId=pid, limit=1000)["authEntries"])
        totals["alerts"] += len(client.call("get-alerts", propertyId=pid, limit=1000)["alerts"])
    totals["crimes"] = client.call("get-crimes-in-area", days=1)["crimes"][0]["count"]
    totals["drones out"] = len(client.call("get-dispatched-drones", limit=1000)["drones"])
    return totals


def summary_row(output: str, action: str) -> tuple[int, int, int]:
    match = re.search(rf"^{re.escape(action)}\s+(\d+)\s+(\d+)\s+(\d+)\s*$", output, re.MULTILINE)
    assert match, f"no summary row for {action}:\n{output}"
    return tuple(int(n) for n in match.groups())


def test_short_run_drives_devices_over_the_wire(demo):
    with PropsecClient(demo.url, demo.token) as checker:
        before = activity(checker)
        run = simulate(demo, "--url", demo.url, "--rate", "20", "--duration", "3", "--seed", "3")
        assert run.returncode == 0, run.stdout + run.stderr
        after = activity(checker)

    out = run.stdout
    assert "active properties" in out
    visits_ok, _, _ = summary_row(out, "add-visitor")
    entries_ok, _, _ = summary_row(out, "add-auth-entry")
    crimes_ok, _, _ = summary_row(out, "add-crime")
    steps = int(re.search(r"^(\d+) actions in", out, re.MULTILINE).group(1))
    unauthorized = int(re.search(r"unauthorized entries \(each raised an alert\): (\d+)", out).group(1))

    assert 10 <= steps <= 60  # paced at 20/s for 3 s (fewer on a slow machine)
    assert sum(summary_row(out, "total")) == steps  # the table counts exactly the actions
    assert visits_ok > 0 and entries_ok > 0
    # Every reported action is a row the server stored, visible through the queries.
    assert after["visits"] - before["visits"] == visits_ok
    assert after["entries"] - before["entries"] == entries_ok
    assert after["alerts"] - before["alerts"] == unauthorized
    assert after["crimes"] - before["crimes"] == crimes_ok
    assert after["drones out"] == before["drones out"]  # the run recalls what it dispatched
    assert "errors by code:" in out


def test_simulator_user_is_created_as_staff(demo):
    run = simulate(demo, "--url", demo.url, "--rate", "5", "--duration", "0.5")
    assert run.returncode == 0, run.stdout + run.stderr
    with PropsecClient(demo.url, demo.token) as checker:
        assert checker.call("get-user", userId="simulator")["fullName"] == "Device simulator"


def test_unreachable_server_is_a_clear_error(demo):
    run = simulate(demo, "--url", f"http://127.0.0.1:{free_port()}", "--duration", "1")
    assert run.returncode != 0
    assert "cannot connect" in run.stderr


def test_without_url_it_finds_the_server_of_its_database_on_any_port(demo):
    # a shell that was not told PROPSEC_PORT: the server (on a free port, not 5000) noted
    # where it serves this database, and the simulator goes there
    env = {k: v for k, v in demo.env.items() if k not in ("PROPSEC_PORT", "PROPSEC_HOST")}
    assert demo.port != 5000
    run = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "simulate", "--rate", "5",
                          "--duration", "0.5"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"at {demo.url} " in run.stdout
    # told a port, it goes there and does not guess
    env["PROPSEC_PORT"] = str(free_port())
    refused = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "simulate",
                              "--duration", "0.5"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode != 0 and "cannot connect" in refused.stderr
