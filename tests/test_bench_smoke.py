"""The benchmark harness end to end on tiny sizes: it starts both servers, loads data,
drives them and writes the table. No timing is asserted; benchmarks are not tests."""
from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("aiohttp")

from bench.run import QUICK, run  # noqa: E402

TINY = replace(QUICK, name="smoke", rtt_seconds=0.3, rtt_warmup=0.1, fanout_connections=5,
               fanout_reps=2, large=(300, 1_000, 300), latency_count=3, whole_map_count=2,
               settle=0.1)

EXPECTED_ROWS = [
    "1. get-property, 1 conn: round trips/s", "1. get-property, 1 conn: p50 ms",
    "1. get-property, 1 conn: p99 ms", "1. get-property, 16 conn: round trips/s",
    "1. get-property, 16 conn: p50 ms", "1. get-property, 16 conn: p99 ms",
    "2. add-alert to 5 subscribers", "3. get-properties, search", "3. get-map, a viewport",
    "3. get-map, a tenth of the whole site", "3. get-scanned-visitors, 30 days",
    "3. get-alerts", "4. server RSS, 5 idle authenticated connections",
]


def test_quick_profile_produces_every_row(tmp_path):
    report = tmp_path / "performance.md"
    results = run(TINY, output=report)

    labels = [row[0] for row in results["table"]]
    assert len(labels) == len(EXPECTED_ROWS)
    for expected, label in zip(EXPECTED_ROWS, labels):
        assert label.startswith(expected), (expected, label)
    for row in results["table"]:
        assert row[1] not in ("", "nan"), row
    assert results["fanout_propsec"]["join_errors"] == 0
    assert all(r["errors"] == 0 for r in results["rtt"].values())
    text = report.read_text()
    assert "| measurement | propsec | floor | ratio | target | met |" in text
    # The chart beside the report: one bar per measurement with a target (4 round-trip
    # rows, fan-out, 4 growth rows, memory), linked from the report.
    chart = (tmp_path / "performance.svg").read_text()
    assert chart.startswith("<svg") and chart.rstrip().endswith("</svg>")
    assert chart.count('height="18" fill="#') == 10  # the bars (the background is not one)
    for label in ("throughput vs echo", "p99 vs echo", "vs bare room emit",
                  "large data p50 vs 1%", "vs 300 MB"):
        assert label in chart
    assert "![Each ratio against its target](performance.svg)" in text
    assert "2. add-alert to 5 subscribers" in text



def _need_node() -> None:
    from bench.run import node_generator_ready
    from services import unavailable

    if not node_generator_ready():
        unavailable("Node.js", "node and `npm ci`'s node_modules/socket.io-client are needed")


@pytest.mark.parametrize("generator", ["node", "python"])
def test_write_benchmark_checks_every_subscriber_against_the_log(tmp_path, monkeypatch,
                                                                 generator):
    """Both load generators (the official Node client, python-socketio) drive the same job
    and report the same fields: every write acknowledged, every event checked."""
    from bench import write
    from bench.write import QUICK as WRITE_QUICK

    if generator == "node":
        _need_node()
    monkeypatch.setitem(write.GENERATOR, "name", generator)
    report = tmp_path / "performance.md"
    results = write.run(WRITE_QUICK, None, "redis://127.0.0.1:6379/0", "eventlet", report,
                        "python -m bench.write --quick")
    [(label, run_)] = results["runs"].items()
    assert label == "sqlite-4" and results["generator"] == generator
    for side in ("propsec", "echo"):
        measured = run_[side]
        assert measured["throughput"] > 0 and measured["errors"] == 0, side
        assert measured["check"] == {"lost": 0, "duplicates": 0, "out_of_order": 0}, side
        assert 0 < measured["p50_ms"] <= measured["p99_ms"], side
        assert 0 < measured["delivery_p50_ms"] <= measured["delivery_p99_ms"], side
        assert measured["server_cpu"][0] > 0 and measured["generator_cpu"] > 0, side
    text = report.read_text()
    assert "| set-up | writes/s |" in text
    assert ("Node process" in text) == (generator == "node")
    assert (tmp_path / "performance-write.svg").read_text().startswith("<svg")


def test_capacity_benchmark_fills_both_servers_and_fans_out(tmp_path):
    from bench.capacity.__main__ import main as capacity

    _need_node()
    report = tmp_path / "capacity.md"
    capacity(["--connections", "40", "--reps", "2", "--hold", "2", "--output", str(report)])
    text = report.read_text()
    assert "| connections opened (of 40) | 40 | 40 |" in text
    assert "| connections dropped while held idle for 2 s | 0 |" in text
    assert "one alert to all 40" in text


def test_ab_compares_two_checkouts_in_interleaved_pairs():
    """bench/ab.py checks a revision out into a worktree, serves it beside the working tree
    and drives both in turn; every run's subscriber is checked against the log."""
    import subprocess

    from bench.ab import compare
    from bench.servers import ROOT

    before = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True,
                            text=True).stdout
    found = compare("HEAD", ".", "sqlite", writers=2, pairs=2, seconds=0.3,
                    database_url=None, redis_url="redis://127.0.0.1:6379/0")
    assert len(found["ratios"]) == 2 and all(r > 0 for r in found["ratios"])
    assert found["writes"]["A"] > 0 and found["writes"]["B"] > 0
    assert found["cpu_ms"]["A"] > 0 and found["cpu_ms"]["B"] > 0
    assert found["faults"] == 0  # no error, and nothing lost, doubled or out of order
    after = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True,
                           text=True).stdout
    assert after == before  # its worktree is gone again
