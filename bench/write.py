"""propsec's write benchmark: `python -m bench.write [--quick] [--database-url URL]`.

Event-producing requests (`add-alert`, `add-visitor`, `add-auth-entry` in turn: 1, 2 and 2
events) from 8 and 32 writer connections in a closed loop, with one staff subscriber to
`events.all` on every server process, against the floor: a bare Flask-SocketIO handler that
emits its argument to a room as many times as the propsec request makes events, and
acknowledges (`bench/echo_server.py`'s `fanout`), driven the same way in the same run, the
two taking turns round by round. Set-ups: SQLite with one process; and, with
`--database-url`, PostgreSQL with one process and two processes sharing PostgreSQL and
Redis (`--redis-url`, default the local one), their writers spread over both.

Reported per run: acknowledged writes/s, ack p50/p99, delivery latency p50/p99 (from the
event row's timestamp, taken in the writing transaction, to its arrival at a subscriber),
and a check of every subscriber against the log: lost, duplicated, out of order (all must
be 0). Writes its section of docs/performance.md (`--quick`: bench/results/write-quick.md)
and a chart beside it."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .chart import Bar, ratio_chart
from .run import (DOC, RESULTS, fresh_database, generate, log, markdown_table,
                  node_generator_ready, run_lines, timed_run, write_report)
from .servers import (GENERATOR_CPU, SERVER_CPU, database_on, echo_server,
                      propsec_server)

BEGIN, END = "<!-- bench:write:begin -->", "<!-- bench:write:end -->"
# Where the propsec processes run, by their number (taskset cores). The two processes of
# the two-process set-up may run on both cores, as a deployment gives each process a core
# (beside the load generator and PostgreSQL here); `--one-core` pins them to the server
# core with the floor's single process instead, where two can never pass one
# (docs/performance.md, fourteenth round).
SPREAD = "0,1"
PLACEMENT: dict[int, str] = {2: SPREAD}
# Where the local PostgreSQL server runs during its set-ups (`--database-core`; None, the
# default: where the kernel puts it). Beside the load generator, the propsec process has its
# core to itself as the floor's server has (in a deployment the database is elsewhere);
# measured, that changed the ratios by no more than the noise (docs/performance.md).
DATABASE_CPU: dict[str, str | None] = {"core": None}
# Which load generator drives the write job (`--generator`): the official Node
# socket.io-client (bench/write_generator.mjs), the default where Node and `npm ci`'s
# node_modules are here, or python-socketio (bench/loadgen.py, as the other benchmarks).
# Why Node by default: docs/performance.md, fourteenth round.
GENERATOR = {"name": "python"}
# Issue 10's targets: writes/s as a share of the floor's, and the delivery p99.
TARGETS = {"sqlite": 0.6, "postgresql": 0.5, "postgresql+redis": 0.5}
DELIVERY_P99_MAX_MS = 50.0


@dataclass(frozen=True)
class Profile:
    name: str
    seconds: float
    warmup: float
    rounds: int
    writers: tuple[int, ...] = (8, 32)
    properties: int = 200


FULL = Profile("full", seconds=6, warmup=2, rounds=3)
QUICK = Profile("quick", seconds=1, warmup=0.5, rounds=1, writers=(4,), properties=20)


def write_job(mode: str, urls: list[str], token: str | None, writers: int, profile: Profile,
              property_ids: list[int], pids: list[int]) -> dict:
    return generate({"kind": "write", "mode": mode, "urls": urls, "token": token,
                     "writers": writers, "duration": profile.seconds, "warmup": profile.warmup,
                     "property_ids": property_ids, "server_pids": pids},
                    generator=GENERATOR["name"])


def median_of(runs: list[dict]) -> dict:
    keys = ("throughput", "p50_ms", "p99_ms", "delivery_p50_ms", "delivery_p99_ms")
    merged = {k: statistics.median(r[k] for r in runs) for k in keys}
    merged["errors"] = sum(r["errors"] for r in runs)
    merged["rounds"] = [round(r["throughput"]) for r in runs]
    merged["server_cpu"] = [round(statistics.median(r["server_cpu"][i] for r in runs), 2)
                            for i in range(len(runs[0]["server_cpu"]))]
    merged["generator_cpu"] = statistics.median(r["generator_cpu"] for r in runs)
    merged["check"] = {k: sum(r["check"].get(k, 0) for r in runs)
                       for k in ("lost", "duplicates", "out_of_order")}
    merged["first_error"] = next((r["first_error"] for r in runs if r.get("first_error")), None)
    return merged


def setups(database_url: str | None, redis_url: str,
           only: tuple[str, ...] | None = None) -> list[tuple[str, str | None, int, dict]]:
    """(label, database, processes, extra settings) of each set-up to measure."""
    out = [("sqlite", None, 1, {})]
    if database_url:
        channel = f"propsec-bench-{os.getpid()}"
        out += [("postgresql", database_url, 1, {}),
                ("postgresql+redis", database_url, 2,
                 {"PROPSEC_MESSAGE_QUEUE": redis_url, "PROPSEC_MESSAGE_QUEUE_CHANNEL": channel})]
    return [s for s in out if only is None or s[0] in only]


def measure(profile: Profile, database_url: str | None, redis_url: str, async_mode: str,
            workdir: Path, only: tuple[str, ...] | None = None) -> dict:
    results: dict = {"profile": asdict(profile), "async_mode": async_mode, "runs": {},
                     "database_cpu": DATABASE_CPU["core"] if database_url else None,
                     "generator": GENERATOR["name"], "spread": PLACEMENT.get(2)}
    sizes = (profile.properties, 1, 1)
    with echo_server(async_mode, workdir) as echo:
        for label, base, processes, extra in setups(database_url, redis_url, only):
            url, meta = fresh_database(base, f"write_{label.replace('+', '_')}", sizes, workdir,
                                       reuse=False)
            # bench.dataset makes lots 1-90 of every site ACTIVE (no conflict for writes)
            ids = list(range(1, min(profile.properties, 90) + 1))
            database_cpu = DATABASE_CPU["core"] if base else None
            servers = []
            try:
                with database_on(database_cpu):
                    servers.extend(propsec_server(url, async_mode, workdir,
                                                  PLACEMENT.get(processes, SERVER_CPU),
                                                  **extra).start() for _ in range(processes))
                    _rounds(profile, label, echo, servers, meta, ids, processes, results)
            finally:
                for server in servers:
                    server.stop()
    return results


def _rounds(profile: Profile, label: str, echo, servers: list, meta: dict, ids: list[int],
            processes: int, results: dict) -> None:
    """Every writer count of one set-up, propsec and the floor taking turns."""
    for writers in profile.writers:
        rounds: dict[str, list[dict]] = {"echo": [], "propsec": []}
        for index in range(profile.rounds):
            order = ("echo", "propsec") if index % 2 == 0 else ("propsec", "echo")
            for name in order:
                log(f"{label}, {writers} writers, round {index + 1} of {profile.rounds}: {name}")
                if name == "echo":
                    rounds[name].append(write_job("echo", [echo.url], None, writers, profile,
                                                  ids, [echo.pid]))
                else:
                    rounds[name].append(write_job(
                        "propsec", [s.url for s in servers], meta["tokens"]["staff"], writers,
                        profile, ids, [s.pid for s in servers]))
        results["runs"][f"{label}-{writers}"] = {
            "setup": label, "writers": writers, "processes": processes,
            "propsec": median_of(rounds["propsec"]), "echo": median_of(rounds["echo"])}


def _ok(good: bool) -> str:
    return "yes" if good else "**NO**"


def rows(results: dict) -> list[list[str]]:
    table = []
    for run in results["runs"].values():
        p, e = run["propsec"], run["echo"]
        ratio = p["throughput"] / e["throughput"]
        target = TARGETS[run["setup"]]
        check = p["check"]
        clean = not any(check.values()) and not p["errors"]
        table.append([
            f"{run['setup']}, {run['processes']} process{'es' if run['processes'] > 1 else ''}, "
            f"{run['writers']} writers",
            f"{p['throughput']:,.0f}", f"{e['throughput']:,.0f}", f"{ratio:.2f}×",
            f"≥ {target}×", _ok(ratio >= target),
            f"{p['p50_ms']:.1f} / {p['p99_ms']:.1f}", f"{e['p50_ms']:.1f} / {e['p99_ms']:.1f}",
            f"{p['delivery_p50_ms']:.1f} / {p['delivery_p99_ms']:.1f}",
            _ok(p["delivery_p99_ms"] < DELIVERY_P99_MAX_MS),
            f"{check['lost']} / {check['duplicates']} / {check['out_of_order']}"
            + ("" if clean else f" ({p['errors']} errors) **NO**")])
    return table


def chart_bars(results: dict) -> list[Bar]:
    out = []
    for run in results["runs"].values():
        p, e = run["propsec"], run["echo"]
        out.append(Bar(f"{run['setup']}, {run['writers']} writers: writes/s vs floor",
                       p["throughput"] / e["throughput"], TARGETS[run["setup"]], True))
        out.append(Bar(f"{run['setup']}, {run['writers']} writers: delivery p99 vs 50 ms",
                       p["delivery_p99_ms"] / DELIVERY_P99_MAX_MS, 1.0, False))
    return out


def render(results: dict, info: dict) -> str:
    profile = results["profile"]
    cpu_rows = []
    for run in results["runs"].values():
        for name in ("propsec", "echo"):
            r = run[name]
            cpu_rows.append([f"{run['setup']}, {run['writers']} writers: {name}",
                             ", ".join(f"{100 * c:.0f}%" for c in r["server_cpu"]),
                             f"{100 * r['generator_cpu']:.0f}%",
                             ", ".join(f"{t:,}" for t in r["rounds"]), str(r["errors"])])
    parts = [
        *run_lines(results, info),
        f"- The floor's server and propsec's single process pinned to core {SERVER_CPU}, "
        + (f"the two processes of the two-process set-up each free to run on either of cores "
           f"{results['spread']} (deployed, each process would have a core of its own)"
           if results.get("spread") else "the two processes of the two-process set-up too "
           "(`--one-core`)")
        + f", the load generator ({_GENERATOR_TEXT[results.get('generator', 'python')]}) "
        f"to core {GENERATOR_CPU}; the PostgreSQL server "
        + (f"on core {results['database_cpu']} with the generator. "
           if results.get("database_cpu") else "unpinned. ")
        + f"Each run: {profile['seconds']} s measured after {profile['warmup']} s warm-up, "
        f"{profile['rounds']} rounds taking turns with the floor, medians.",
        "- Writes: `add-alert` (1 event), `add-visitor` (2) and `add-auth-entry` by a "
        f"stranger (2: the entry and its alert) in turn on {profile['properties']} "
        "properties; the floor emits as many events to a room, then acknowledges. "
        "Delivery: from the event row's timestamp (taken in the writing transaction, "
        "before its commit) to its arrival at the subscriber; the floor's from "
        "the send. Check: each subscriber's eventIds against the log (`get-events`).",
        "",
        markdown_table(["set-up", "writes/s", "floor writes/s", "ratio", "target", "met",
                        "ack p50 / p99 ms", "floor ack p50 / p99 ms",
                        "delivery p50 / p99 ms", "p99 < 50 ms", "lost / twice / out of order"],
                       rows(results)),
        "",
        markdown_table(["run", "server CPU (each process)", "generator CPU",
                        "each round, writes/s", "errors"], cpu_rows),
    ]
    return "\n".join(parts) + "\n"


_GENERATOR_TEXT = {"python": "one asyncio process of python-socketio clients",
                   "node": "one Node process of the official socket.io-client, "
                           "`--generator node`"}


def run(profile: Profile, database_url: str | None, redis_url: str, async_mode: str,
        output: Path | None, command: str, only: tuple[str, ...] | None = None) -> dict:
    results, info, stamp = timed_run("write", database_url, command, lambda workdir: measure(
        profile, database_url, redis_url, async_mode, workdir, only))
    section = render(results, info)
    print(section)
    (RESULTS / f"{stamp}-write-{profile.name}.json").write_text(json.dumps(results, indent=1))
    partial = only is not None or profile.name not in ("full",)
    target = output or (RESULTS / f"write-{profile.name}.md" if partial else DOC)
    chart = target.with_name(target.stem + "-write.svg")
    chart.write_text(ratio_chart(chart_bars(results), f"propsec writes against the floor: "
                                                      f"{info['date']}, {results['async_mode']}"))
    section += f"\n![Each write ratio against its target]({chart.name})\n"
    write_report(target, section, BEGIN, END, "Latest write results")
    log(f"done in {results['seconds']} s; wrote {target} and {chart.name}")
    results["table"] = rows(results)
    return results


def add_generator_option(parser: argparse.ArgumentParser) -> None:
    default = "node" if node_generator_ready() else "python"
    parser.add_argument("--generator", choices=("node", "python"), default=default,
                        help="the load generator: the official Node socket.io-client (the "
                             "default when node and `npm ci`'s node_modules are here; "
                             f"here: {default}) or python-socketio")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.write",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, under a minute")
    parser.add_argument("--database-url", help="PostgreSQL server URL (adds the PostgreSQL set-ups)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                        help="Redis for the two-process set-up")
    parser.add_argument("--async-mode", default="eventlet",
                        choices=("eventlet", "gevent", "threading"))
    parser.add_argument("--output", type=Path, help="where to write the report")
    parser.add_argument("--only", help="comma-separated set-ups: " + ", ".join(TARGETS)
                        + " (a partial run writes to bench/results/)")
    parser.add_argument("--writers", help="comma-separated writer counts (default 8,32)")
    parser.add_argument("--rounds", type=int, help="rounds per measurement (default 3)")
    parser.add_argument("--database-core", default="none",
                        help="core(s) for the local PostgreSQL server during its set-ups, "
                             f"e.g. {GENERATOR_CPU} (the load generator's); default: unpinned")
    parser.add_argument("--one-core", action="store_true",
                        help="pin the two-process set-up's processes to the server core "
                             "(by default they may run on both cores)")
    add_generator_option(parser)
    args = parser.parse_args(argv)
    GENERATOR["name"] = args.generator
    profile = QUICK if args.quick else FULL
    if args.one_core:
        PLACEMENT.pop(2, None)
    DATABASE_CPU["core"] = None if args.database_core == "none" else args.database_core
    if args.writers or args.rounds:
        profile = replace(profile, name=profile.name + "-custom",
                          writers=tuple(int(w) for w in args.writers.split(","))
                          if args.writers else profile.writers,
                          rounds=args.rounds or profile.rounds)
    command = "python -m bench.write" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    run(profile, args.database_url, args.redis_url, args.async_mode, args.output, command,
        tuple(args.only.split(",")) if args.only else None)


if __name__ == "__main__":
    main()
