"""propsec's performance benchmark: `python -m bench.run [--quick] [--database-url URL]`.

Starts its own servers on loopback (propsec as `python app.py`, and the bare Flask-SocketIO
echo server of `bench/echo_server.py` under the same async mode), loads the data, drives
them with `bench/loadgen.py`, stops them, prints the table and writes it to
docs/performance.md (`--quick`: tiny sizes, written to bench/results/quick.md unless
`--output` says otherwise). See docs/performance.md for what each row means."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .chart import Bar, ratio_chart
from .servers import (BENCH_RATE_LIMIT, GENERATOR_CPU, PRIORITY, ROOT, SERVER_CPU, echo_server,
                      pinned, proc_rss_mb, propsec_server)

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Profile:
    name: str
    rtt_seconds: float  # measuring window per round-trip run
    rtt_warmup: float
    fanout_connections: int
    fanout_reps: int
    large: tuple[int, int, int]  # properties, visits, alerts
    latency_count: int  # sequential requests per query for the p50
    whole_map_count: int  # fewer for the unpaged map of a tenth of the large site
    settle: float = 2.0  # seconds the fan-out's connections idle before the RSS is read
    # Round-trip runs alternate echo and propsec this many times; medians are reported.
    rtt_rounds: int = 1

    @property
    def small(self) -> tuple[int, int, int]:
        return tuple(max(1, n // 100) for n in self.large)


FULL = Profile("full", rtt_seconds=5, rtt_warmup=1.5, fanout_connections=1000, fanout_reps=15,
               large=(100_000, 1_000_000, 100_000), latency_count=200, whole_map_count=25,
               rtt_rounds=5)
QUICK = Profile("quick", rtt_seconds=1, rtt_warmup=0.3, fanout_connections=50, fanout_reps=3,
                large=(2_000, 20_000, 2_000), latency_count=20, whole_map_count=5, settle=0.5)


def log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine

def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def machine(database_url: str | None) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    if database_url:
        database = "PostgreSQL " + _pg_version(database_url)
    else:
        database = f"SQLite {sqlite3.sqlite_version}"
    libs = ["flask", "flask-socketio", "python-socketio", "python-engineio", "eventlet", "gevent",
            "sqlalchemy", "pydantic", "orjson", "aiohttp"]
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 1024 ** 2, 1),
            "python": platform.python_version(), "kernel": platform.release(),
            "database": database, "commit": commit,
            "libraries": {name: _version(name) for name in libs},
            "load_before": os.getloadavg()[0]}


# --------------------------------------------------------------------------- databases

def _pg_url(base: str, name: str) -> str:
    parts = urlsplit(base.replace("postgres://", "postgresql://", 1))
    return urlunsplit(parts._replace(path="/" + name))


def _pg_admin(base: str):
    import psycopg2

    conn = psycopg2.connect(_pg_url(base, "postgres"))
    conn.autocommit = True
    return conn


def _pg_version(base: str) -> str:
    with _pg_admin(base) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        return cur.fetchone()[0].split()[0]


def _pg_database_name(base: str) -> str:
    path = urlsplit(base).path.strip("/")
    return path if path and path not in ("postgres", "test", "root") else "propsec_bench"


def fresh_database(base_url: str | None, label: str, sizes: tuple[int, int, int], workdir: Path,
                   reuse: bool, root: Path = ROOT) -> tuple[str, dict]:
    """A database with the site of `sizes` loaded (by the loader and migrations of the
    checkout at `root`); its URL and the loader's description."""
    tag = "-".join(str(n) for n in sizes)
    meta_path = RESULTS / "data" / f"{'pg' if base_url else 'sqlite'}-{label}-{tag}.json"
    if base_url:
        name = f"{_pg_database_name(base_url)}_{label}"
        url = _pg_url(base_url, name)
    else:
        path = (RESULTS / "data" if reuse else workdir) / f"{label}-{tag}.sqlite"
        url = f"sqlite:///{path}"
    if reuse and meta_path.exists():
        log(f"reusing the {label} data set ({tag}) from {meta_path.name}")
        return url, json.loads(meta_path.read_text())
    if base_url:
        conn = _pg_admin(base_url)
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    log(f"loading the {label} data set: {sizes[0]:,} properties, {sizes[1]:,} visits, "
        f"{sizes[2]:,} alerts")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench.dataset", "--database-url", url, "--properties",
         str(sizes[0]), "--visits", str(sizes[1]), "--alerts", str(sizes[2])],
        cwd=root, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PROPSEC_SECRET_KEY": "bench-secret-key"})
    if done.returncode != 0:
        raise RuntimeError(f"loading the {label} data set failed")
    meta = json.loads(done.stdout.strip().splitlines()[-1])
    meta["load_seconds"] = round(time.monotonic() - started, 1)
    log(f"loaded the {label} data set in {meta['load_seconds']} s")
    if reuse:
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        meta_path.write_text(json.dumps(meta))
    return url, meta


# --------------------------------------------------------------------------- load generator

# The write job's generators: python-socketio in asyncio (bench/loadgen.py), or the official
# Node socket.io-client (bench/write_generator.mjs; `npm ci` once). Other jobs are Python's.
GENERATORS = {"python": [sys.executable, "-m", "bench.loadgen"],
              "node": ["node", str(ROOT / "bench" / "write_generator.mjs")]}


def node_generator_ready() -> bool:
    """Whether Node and the official client (`npm ci`) are here for the Node generator."""
    return bool(shutil.which("node")) and (ROOT / "node_modules" / "socket.io-client").is_dir()


def generate(job: dict, processes: int = 1, generator: str = "python") -> dict | list[dict]:
    """Run a job in `processes` generator processes pinned to the generator's core."""
    argv = pinned(GENERATOR_CPU, GENERATORS[generator])
    if processes > 1:  # line the measuring windows up on the wall clock
        job = {**job, "start_at": time.time() + job.get("warmup", 0) + 3}
    children = [subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True) for _ in range(processes)]
    results = []
    for child in children:
        child.stdin.write(json.dumps(job))
        child.stdin.close()
    for child in children:
        out = child.stdout.read()
        if child.wait() != 0:
            raise RuntimeError(f"load generator failed on {job['kind']}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results[0] if processes == 1 else results


def rtt(url: str, token: str | None, event: str, payloads: list, connections: int,
        profile: Profile, server_pid: int, processes: int = 1) -> dict:
    job = {"kind": "rtt", "url": url, "token": token, "event": event, "payloads": payloads,
           "connections": connections // processes, "duration": profile.rtt_seconds,
           "warmup": profile.rtt_warmup, "server_pid": server_pid}
    if processes == 1:
        return generate(job)
    parts = generate(job, processes)
    return {"throughput": sum(p["throughput"] for p in parts),
            "p50_ms": max(p["p50_ms"] for p in parts), "p99_ms": max(p["p99_ms"] for p in parts),
            "errors": sum(p["errors"] for p in parts),
            "generator_cpu": sum(p["generator_cpu"] for p in parts),
            "server_cpu": sum(p["server_cpu"] for p in parts) / len(parts),
            "processes": processes}


# --------------------------------------------------------------------------- measurements

def growth_queries(meta: dict, small_site: dict, count: int, whole_map_count: int) -> list[dict]:
    ids = meta["property_ids"]
    today = datetime.now(timezone.utc).date()
    month = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
    site = meta["site"]

    def box(side: float) -> dict:
        cx, cy = site["width"] / 2, site["height"] / 2
        return {"minX": int(cx - side / 2), "minY": int(cy - side / 2),
                "maxX": int(cx + side / 2), "maxY": int(cy + side / 2)}

    tenth = 0.1 ** 0.5
    return [
        {"name": "get-properties", "event": "queries.get-properties", "count": count,
         "payloads": [{"search": meta["search"], "limit": 10}]},
        {"name": "get-map", "event": "queries.get-map", "count": count,
         "payloads": [box(tenth * min(small_site["width"], small_site["height"]))]},
        {"name": "get-map-site", "event": "queries.get-map", "count": whole_map_count,
         "warmup": 1, "payloads": [box(tenth * min(site["width"], site["height"]))]},
        {"name": "get-scanned-visitors", "event": "queries.get-scanned-visitors", "count": count,
         "payloads": [{"propertyId": i, **month} for i in ids]},
        {"name": "get-alerts", "event": "queries.get-alerts", "count": count,
         "payloads": [{"propertyId": i} for i in ids]},
    ]


PARTS = ("rtt", "fanout", "growth")


def measure(profile: Profile, database_url: str | None, async_mode: str, reuse: bool,
            workdir: Path, parts: tuple[str, ...] = PARTS) -> dict:
    results: dict = {"profile": asdict(profile), "async_mode": async_mode}
    small_url, small = fresh_database(database_url, "small", profile.small, workdir, reuse)
    results["data"] = {"small": small["sizes"], "load_seconds": {"small": small.get("load_seconds")}}
    if "growth" in parts:
        large_url, large = fresh_database(database_url, "large", profile.large, workdir, reuse)
        results["data"].update(large=large["sizes"])
        results["data"]["load_seconds"]["large"] = large.get("load_seconds")
    staff = small["tokens"]["staff"]
    property_payloads = [{"propertyId": i} for i in small["property_ids"]]

    if "rtt" in parts or "fanout" in parts:
        with echo_server(async_mode, workdir) as echo, \
                propsec_server(small_url, async_mode, workdir) as server:
            log(f"servers up: echo pid {echo.pid}, propsec pid {server.pid} (core {SERVER_CPU}); "
                f"load generator on core {GENERATOR_CPU}")
            if "rtt" in parts:
                results["rtt"] = round_trips(profile, echo, server, staff, property_payloads)
            if "fanout" in parts:
                results.update(fan_out(profile, echo, server, staff, small["property_ids"][0]))

    if "growth" in parts:
        with propsec_server(small_url, async_mode, workdir) as small_server, \
                propsec_server(large_url, async_mode, workdir) as large_server:
            log("query latency, the small and the large data set taking turns")
            targets = {label: {"url": server.url, "token": meta["tokens"]["staff"],
                               "queries": growth_queries(meta, small["site"],
                                                         profile.latency_count,
                                                         profile.whole_map_count)}
                       for label, server, meta in (("small", small_server, small),
                                                   ("large", large_server, large))}
            latency = generate({"kind": "latency", "targets": targets})
        results["latency_small"], results["latency_large"] = latency["small"], latency["large"]
    return results


def round_trips(profile: Profile, echo, server, token: str, payloads: list) -> dict:
    """Measurement 1, alternating with the floor so both see the same machine: rounds of
    (echo, propsec) and (propsec, echo) in turn, each figure the median over the rounds.
    16 connections are driven from 2 generator processes; one echo run from 1 process
    beside it shows whether the generator was holding the floor back."""
    runs = {}
    targets = {"echo": (echo.url, None, "echo", echo.pid),
               "propsec": (server.url, token, "queries.get-property", server.pid)}
    for connections, processes in ((1, 1), (16, 2)):
        rounds: dict[str, list[dict]] = {"echo": [], "propsec": []}
        for index in range(profile.rtt_rounds):
            for name in ("echo", "propsec") if index % 2 == 0 else ("propsec", "echo"):
                log(f"round trips, {connections} connection(s), round {index + 1} of "
                    f"{profile.rtt_rounds}: {name}")
                url, run_token, event, pid = targets[name]
                rounds[name].append(rtt(url, run_token, event, payloads, connections, profile,
                                        pid, processes=processes))
        for name, results in rounds.items():
            runs[f"{name}-{connections}"] = median_run(results)
    log("round trips, 16 connections from 1 generator process: echo")
    runs["echo-16-1proc"] = rtt(echo.url, None, "echo", payloads, 16, profile, echo.pid)
    return runs


def median_run(results: list[dict]) -> dict:
    """Each figure's median over the rounds (errors summed); the rounds' throughputs kept."""
    merged = {key: statistics.median(r[key] for r in results)
              for key in ("throughput", "p50_ms", "p99_ms", "server_cpu", "generator_cpu")}
    merged["errors"] = sum(r["errors"] for r in results)
    merged["rounds"] = [round(r["throughput"]) for r in results]
    return merged


def fan_out(profile: Profile, echo, server, token: str, property_id: int) -> dict:
    """Measurements 2 and 4: one connection set per server, RSS while idle, then fan-out."""
    n = profile.fanout_connections
    payload = {"propertyId": property_id, "user": "bench-staff", "reason": "bench fan-out 0",
               "eventId": 123456,
               "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    log(f"fan-out to {n} connections: bare room emit")
    echo_rss = proc_rss_mb(echo.pid)
    fanout_echo = generate({"kind": "fanout", "mode": "echo", "url": echo.url, "connections": n,
                            "reps": profile.fanout_reps, "payload": payload,
                            "server_pid": echo.pid, "settle": profile.settle})
    fanout_echo["rss_start_mb"] = echo_rss
    log(f"{n} idle connections, then fan-out to them: propsec add-alert")
    rss_start = proc_rss_mb(server.pid)
    fanout_propsec = generate({"kind": "fanout", "mode": "propsec", "url": server.url,
                               "token": token, "connections": n, "reps": profile.fanout_reps,
                               "server_pid": server.pid, "settle": profile.settle,
                               "property_id": property_id, "user_id": "bench-staff"})
    fanout_propsec["rss_start_mb"] = rss_start
    return {"fanout_echo": fanout_echo, "fanout_propsec": fanout_propsec}


# --------------------------------------------------------------------------- report

# Issue 5's targets, read by the table and the chart alike.
THROUGHPUT_MIN = 0.75  # get-property throughput / the echo's
P99_MAX = 1.5  # get-property p99 / the echo's
FANOUT_MAX = 1.5  # add-alert fan-out time / a bare room emit's
GROWTH_MAX = 2.0  # p50 on the large data set / on the 1% one
RSS_MAX_MB = 300  # server RSS with the idle connections


def _ok(value: float, limit: float, lower_is_better: bool = True) -> str:
    if value != value:  # NaN
        return "?"
    return "yes" if (value <= limit if lower_is_better else value >= limit) else "**NO**"


def rows(results: dict) -> list[list[str]]:
    """The figures table: what, propsec, the floor, the ratio, the target, met."""
    table = []
    runs = results.get("rtt", {})
    for c in (1, 16) if runs else ():
        p, e = runs[f"propsec-{c}"], runs[f"echo-{c}"]
        ratio = p["throughput"] / e["throughput"]
        table.append([f"1. get-property, {c} conn: round trips/s", f"{p['throughput']:,.0f}",
                      f"{e['throughput']:,.0f}", f"{ratio:.2f}×", f"≥ {THROUGHPUT_MIN}×",
                      _ok(ratio, THROUGHPUT_MIN, False)])
        table.append([f"1. get-property, {c} conn: p50 ms", f"{p['p50_ms']:.2f}",
                      f"{e['p50_ms']:.2f}", f"{p['p50_ms'] / e['p50_ms']:.2f}×", "-", ""])
        ratio = p["p99_ms"] / e["p99_ms"]
        table.append([f"1. get-property, {c} conn: p99 ms", f"{p['p99_ms']:.2f}",
                      f"{e['p99_ms']:.2f}", f"{ratio:.2f}×", f"≤ {P99_MAX}×", _ok(ratio, P99_MAX)])
    fp, fe = results.get("fanout_propsec"), results.get("fanout_echo")
    if fp:
        ratio = fp["median_ms"] / fe["median_ms"]
        table.append([f"2. add-alert to {fp['connections']:,} subscribers: ms until the last "
                      f"has it (median of {fp['reps']})", f"{fp['median_ms']:.1f}",
                      f"{fe['median_ms']:.1f}", f"{ratio:.2f}×", f"≤ {FANOUT_MAX}×",
                      _ok(ratio, FANOUT_MAX)])
    small, large = results.get("latency_small"), results.get("latency_large")
    names = {"get-properties": "get-properties, search, p50 ms",
             "get-map": "get-map, a viewport of a tenth of the small site, p50 ms",
             "get-map-site": "get-map, a tenth of the whole site (unpaged), p50 ms",
             "get-scanned-visitors": "get-scanned-visitors, 30 days, p50 ms",
             "get-alerts": "get-alerts, p50 ms"}
    for key, label in names.items() if large else ():
        s, g = small[key], large[key]
        ratio = g["p50_ms"] / s["p50_ms"]
        target = f"≤ {GROWTH_MAX:g}×" if key != "get-map-site" else "(result 100× larger)"
        table.append([f"3. {label} [rows {g['rows']:,.0f} vs {s['rows']:,.0f}]",
                      f"{g['p50_ms']:.2f}", f"{s['p50_ms']:.2f} (1% data)", f"{ratio:.2f}×",
                      target, _ok(ratio, GROWTH_MAX) if key != "get-map-site" else ""])
    if fp:
        table.append([f"4. server RSS, {fp['connections']:,} idle authenticated connections, MB",
                      f"{fp['rss_idle_mb']:.0f}", f"{fe['rss_idle_mb']:.0f} (echo)", "-",
                      f"≤ {RSS_MAX_MB} MB", _ok(fp["rss_idle_mb"], RSS_MAX_MB)])
    return table


def chart_bars(results: dict) -> list[Bar]:
    """The chart's bars: every row of the table that has a target, as a ratio."""
    out = []
    runs = results.get("rtt", {})
    for c in (1, 16) if runs else ():
        p, e = runs[f"propsec-{c}"], runs[f"echo-{c}"]
        out.append(Bar(f"get-property, {c} conn: throughput vs echo",
                       p["throughput"] / e["throughput"], THROUGHPUT_MIN, True))
        out.append(Bar(f"get-property, {c} conn: p99 vs echo", p["p99_ms"] / e["p99_ms"],
                       P99_MAX, False))
    fp, fe = results.get("fanout_propsec"), results.get("fanout_echo")
    if fp:
        out.append(Bar(f"add-alert to {fp['connections']:,}: vs bare room emit",
                       fp["median_ms"] / fe["median_ms"], FANOUT_MAX, False))
    small, large = results.get("latency_small"), results.get("latency_large")
    for key in ("get-properties", "get-map", "get-scanned-visitors", "get-alerts") if large else ():
        out.append(Bar(f"{key}: large data p50 vs 1%", large[key]["p50_ms"] / small[key]["p50_ms"],
                       GROWTH_MAX, False))
    if fp:
        out.append(Bar(f"RSS, {fp['connections']:,} idle connections: vs {RSS_MAX_MB} MB",
                       fp["rss_idle_mb"] / RSS_MAX_MB, 1.0, False))
    return out


def generator_rows(results: dict) -> list[list[str]]:
    runs = results.get("rtt", {})
    table = []
    for key, label in () if not runs else (("echo-1", "echo, 1 conn"), ("propsec-1", "get-property, 1 conn"),
                       ("echo-16", "echo, 16 conns (2 generator processes)"),
                       ("propsec-16", "get-property, 16 conns (2 generator processes)"),
                       ("echo-16-1proc", "echo, 16 conns from 1 generator process")):
        r = runs.get(key)
        if r is None:
            continue
        per_trip = 1e6 * r["server_cpu"] / r["throughput"] if r["throughput"] else float("nan")
        table.append([label, f"{r['throughput']:,.0f}", f"{100 * r['server_cpu']:.0f}%",
                      f"{per_trip:,.0f}", f"{100 * r['generator_cpu']:.0f}%", str(r["errors"]),
                      ", ".join(f"{t:,}" for t in r.get("rounds", ())) or "-"])
    for key, label in (("fanout_echo", "fan-out, bare room emit"),
                       ("fanout_propsec", "fan-out, add-alert")):
        if key not in results:
            continue
        r = results[key]
        table.append([label, "-", "-", f"{r.get('server_cpu_ms', float('nan')):,.0f} ms per "
                      "fan-out", f"{100 * r['generator_cpu']:.0f}% (of the wait)",
                      str(r["join_errors"])])
    return table


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def run_lines(results: dict, info: dict) -> list[str]:
    """The report's opening: the command, the commit, the machine and the libraries."""
    libs = ", ".join(f"{k} {v}" for k, v in info["libraries"].items())
    return [
        f"Run `{results['command']}` on {info['date']} at commit `{info['commit']}` "
        f"(profile `{results['profile']['name']}`).",
        "",
        f"- Machine: {info['nproc']} cores ({info['cpu']}), {info['memory_gib']} GiB, "
        f"Linux {info['kernel']}; load average {info['load_before']:.2f} before, "
        f"{info['load_after']:.2f} after (1 min).",
        f"- Python {info['python']}; {libs}; {info['database']}; async mode "
        f"`{results['async_mode']}`.",
    ]


def render(results: dict, info: dict) -> str:
    data = results["data"]
    large = data.get("large", {"properties": 0, "visits": 0, "alerts": 0})
    profile = results["profile"]
    parts = [
        *run_lines(results, info),
        f"- Placement: each server pinned to core {SERVER_CPU}, the load generator (one asyncio "
        f"process of python-socketio AsyncClients) to core {GENERATOR_CPU} (`taskset`); "
        f"rate limit `PROPSEC_RATE_LIMIT={BENCH_RATE_LIMIT}` (the default 200/100 would refuse "
        f"the benchmark's floods)"
        + (f"; both under `nice -n {results['nice']}`." if results.get("nice") else "."),
        f"- Data: large {large['properties']:,} properties, {large['visits']:,} "
        f"visits, {large['alerts']:,} alerts (loaded in {data['load_seconds'].get('large')} s); "
        f"small (1%) {data['small']['properties']:,} / {data['small']['visits']:,} / "
        f"{data['small']['alerts']:,}. Measurements 1, 2 and 4 run on the small data set.",
        f"- Round trips: closed loop, {profile['rtt_seconds']} s measured after "
        f"{profile['rtt_warmup']} s warm-up, {profile['rtt_rounds']} rounds alternating "
        f"with the floor, medians; fan-out: median of {profile['fanout_reps']}; "
        f"p50s: {profile['latency_count']} sequential requests per query and data set, the "
        f"two data sets' servers taking turns request by request "
        f"({profile['whole_map_count']} for the whole-site map).",
        "",
        markdown_table(["measurement", "propsec", "floor", "ratio", "target", "met"],
                       rows(results)),
        "",
        "Is the load generator the bottleneck? CPU used in the measuring window, as a share of "
        "one core:",
        "",
        markdown_table(["run", "round trips/s", "server CPU", "server CPU µs per round trip",
                        "generator CPU", "errors", "each round, round trips/s"],
                       generator_rows(results)),
    ]
    return "\n".join(parts) + "\n"


SKELETON = """# Performance

How propsec compares with the framework's own floor: a bare Flask-SocketIO server under the
same async mode (`bench/echo_server.py`), measured again in every run. Issue 5 sets the
targets.

## Running it

    python -m bench.run            # full run, < 15 minutes; writes this file
    python -m bench.run --quick    # tiny sizes, < 1 minute; writes bench/results/quick.md

Options: `--database-url postgres://postgres@127.0.0.1:5432` runs on PostgreSQL (the harness
drops and creates the databases `propsec_bench_small` and `propsec_bench_large`),
`--async-mode eventlet|gevent|threading`, `--reuse-data` keeps the loaded data sets in
`bench/results/data/` for the next run, `--only rtt,fanout,growth` runs a part (written to
`bench/results/`), `--nice -10` puts servers and generator ahead of other work on a shared
machine (root only), `--output PATH` writes the report elsewhere. Every run also leaves its
raw figures in `bench/results/<time>-<profile>.json` and the servers' logs beside them.

## Latest results

{begin}
{end}
"""


def write_report(path: Path, section: str, begin: str = BEGIN, end: str = END,
                 heading: str = "Latest results") -> None:
    """Put `section` between the markers `begin` and `end` of the report (added at its end,
    under `heading`, when missing)."""
    text = path.read_text() if path.exists() else SKELETON.format(begin=BEGIN, end=END)
    if begin not in text or end not in text:
        text = text.rstrip() + f"\n\n## {heading}\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{begin}\n{section}{end}{tail}")


def timed_run(label: str, database_url: str | None, command: str, measure) -> tuple:
    """Run `measure(workdir)` in a fresh folder of bench/results/, noting the machine, the
    load after and the time taken; returns (results, machine info, time stamp)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = RESULTS / f"{label}-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    info = machine(database_url)
    started = time.monotonic()
    results = measure(workdir)
    info["load_after"] = os.getloadavg()[0]
    results.update(command=command, machine=info, seconds=round(time.monotonic() - started))
    return results, info, stamp


def run(profile: Profile, database_url: str | None = None, async_mode: str = "eventlet",
        output: Path | None = None, reuse: bool = False, command: str = "python -m bench.run",
        parts: tuple[str, ...] = PARTS) -> dict:
    results, info, stamp = timed_run("run", database_url, command, lambda workdir: measure(
        profile, database_url, async_mode, reuse, workdir, parts))
    results["nice"] = PRIORITY["nice"]
    section = render(results, info)
    print(section)
    (RESULTS / f"{stamp}-{profile.name}.json").write_text(json.dumps(results, indent=1))
    partial = tuple(parts) != PARTS
    target = output or (DOC if profile is FULL and not partial else RESULTS / f"{profile.name}.md")
    chart = target.with_suffix(".svg")
    chart.parent.mkdir(parents=True, exist_ok=True)
    chart.write_text(ratio_chart(chart_bars(results), f"propsec against its floor: {info['date']}, "
                                          f"{info['database']}, {results['async_mode']}"))
    section += f"\n![Each ratio against its target]({chart.name})\n"
    write_report(target, section)
    log(f"done in {results['seconds']} s; wrote {target} and {chart.name}")
    results["table"] = rows(results)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, under a minute")
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: SQLite files)")
    parser.add_argument("--async-mode", default="eventlet",
                        choices=("eventlet", "gevent", "threading"))
    parser.add_argument("--output", type=Path, help="where to write the report")
    parser.add_argument("--reuse-data", action="store_true",
                        help="keep loaded data sets in bench/results/data/ and reuse them")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(PARTS)
                        + " (a partial run writes to bench/results/, never to docs/)")
    parser.add_argument("--nice", type=int, default=0,
                        help="run servers and generator under `nice -n N` (negative: ahead of "
                             "other work on a shared machine; needs root)")
    args = parser.parse_args(argv)
    PRIORITY["nice"] = args.nice
    parts = tuple(p for p in PARTS if p in args.only.split(",")) if args.only else PARTS
    command = "python -m bench.run" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    run(QUICK if args.quick else FULL, args.database_url, args.async_mode, args.output,
        args.reuse_data, command, parts)


if __name__ == "__main__":
    main()
