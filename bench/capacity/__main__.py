"""`python -m bench.capacity`: see the package's docstring."""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import socketio

from ..loadgen import percentile
from ..run import DOC, RESULTS, fresh_database, log, markdown_table, run_lines, timed_run, write_report
from ..servers import GENERATOR_CPU, ROOT, echo_server, pinned, proc_rss_mb, propsec_server

BEGIN, END = "<!-- bench:capacity:begin -->", "<!-- bench:capacity:end -->"
NAMESPACE = "/propsec"
FULL_CONNECTIONS = 10_000
RSS_MAX_MB = 1024  # issue 11: 10,000 idle subscribed connections within 1 GiB
FANOUT_MAX = 1.5  # issue 11: fan-out to all of them within 1.5x the bare room emit


def _more_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Node:
    """The Node load generator, one JSON line in and one out per command."""

    def __init__(self):
        if not shutil.which("node"):
            raise SystemExit("bench.capacity needs Node.js (node) on the PATH")
        if not (ROOT / "node_modules" / "socket.io-client").exists():
            raise SystemExit("run `npm ci` first: bench.capacity uses node_modules/socket.io-client")
        argv = pinned(GENERATOR_CPU, ["node", str(ROOT / "bench" / "capacity" / "loadgen.mjs")])
        self.process = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True,
                                        preexec_fn=_more_files)

    def ask(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the load generator stopped during {command['cmd']}")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.ask(cmd="close")
        finally:
            self.process.wait(30)


def _client(url: str, token: str | None) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(url, namespaces=[NAMESPACE], transports=["websocket"],
                   auth={"token": token} if token else None, wait_timeout=30)
    return client


class Prober:
    """get-property in a loop on its own connection while `active` is set: its latencies."""

    def __init__(self, url: str, token: str, property_id: int):
        self.client = _client(url, token)
        self.property_id = property_id
        self.active = threading.Event()
        self.stopped = threading.Event()
        self.samples: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            if not self.active.wait(0.1):
                continue
            started = time.perf_counter()
            self.client.call("queries.get-property", {"propertyId": self.property_id},
                             namespace=NAMESPACE, timeout=60)
            self.samples.append(time.perf_counter() - started)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(60)
        self.client.disconnect()


def fill_and_fan_out(server, node: Node, mode: str, connections: int, reps: int, hold: float,
                     token: str | None, property_id: int, settle: float) -> dict:
    result: dict = {"rss_empty_mb": proc_rss_mb(server.pid)}
    log(f"{mode}: opening {connections:,} connections")
    opened = node.ask(cmd="open", url=server.url, count=connections, token=token, mode=mode)
    result.update(opened=opened["opened"], failed=opened["failed"], errors=opened["errors"],
                  open_seconds=opened["seconds"])
    time.sleep(settle)
    result["rss_full_mb"] = proc_rss_mb(server.pid)
    result["kb_per_connection"] = ((result["rss_full_mb"] - result["rss_empty_mb"]) * 1024
                                   / max(1, opened["opened"]))
    log(f"{mode}: {opened['opened']:,} open in {opened['seconds']:.1f} s, RSS "
        f"{result['rss_full_mb']:.0f} MB; fan-out x{reps}")
    trigger = _client(server.url, token)
    prober = Prober(server.url, token, property_id) if mode == "propsec" else None
    times = []
    try:
        for rep in range(reps):
            time.sleep(0.3)
            node.process.stdin.write(json.dumps({"cmd": "watch"}) + "\n")
            node.process.stdin.flush()
            time.sleep(0.05)  # the generator has the command before the event can come
            if prober:
                prober.active.set()
            started = time.perf_counter()
            if mode == "propsec":
                answer = trigger.call("queries.add-alert", {
                    "propertyId": property_id, "userId": "bench-staff",
                    "reason": f"capacity fan-out {rep}"}, namespace=NAMESPACE, timeout=60)
                if answer.get("type") != "success":
                    raise RuntimeError(f"add-alert failed: {answer}")
            else:
                trigger.call("fanout", {"propertyId": property_id, "user": "bench-staff",
                                        "alertId": -(rep + 1), "reason": "capacity fan-out"},
                             namespace=NAMESPACE, timeout=60)
            line = json.loads(node.process.stdout.readline())
            times.append((time.perf_counter() - started) * 1e3)
            if prober:
                prober.active.clear()
            result.setdefault("generator_ms", []).append(line["ms"])
    finally:
        if prober:
            prober.close()
        trigger.disconnect()
    result["fanout_ms"] = statistics.median(times)
    result["fanout_all_ms"] = [round(t, 1) for t in times]
    if prober:
        samples = sorted(prober.samples)
        result["probe_count"] = len(samples)
        result["probe_p50_ms"] = percentile(samples, 0.5) * 1e3
        result["probe_p99_ms"] = percentile(samples, 0.99) * 1e3
    if hold:
        log(f"{mode}: holding {opened['opened']:,} idle connections for {hold:.0f} s")
        held = node.ask(cmd="hold", seconds=hold)
        result.update(held_seconds=hold, dropped=held["dropped"])
    return result


def measure(connections: int, reps: int, hold: float, async_mode: str, workdir: Path) -> dict:
    url, meta = fresh_database(None, "capacity", (10, 1, 1), workdir, reuse=False)
    token, property_id = meta["tokens"]["staff"], 1
    results: dict = {"connections": connections, "async_mode": async_mode, "reps": reps,
                     "hold_seconds": hold}
    settle = 3.0 if connections >= 1000 else 1.0
    for mode in ("echo", "propsec"):
        server = (echo_server(async_mode, workdir) if mode == "echo" else
                  propsec_server(url, async_mode, workdir,
                                 PROPSEC_MAX_CONNECTIONS=str(connections + 10)))
        server.env["BENCH_MAX_CONNECTIONS"] = str(connections + 100)
        with server:
            node = Node()
            try:
                results[mode] = fill_and_fan_out(server, node, mode, connections, reps, hold,
                                                 token if mode == "propsec" else None,
                                                 property_id, settle)
            finally:
                node.close()
    return results


def _ok(good: bool) -> str:
    return "yes" if good else "**NO**"


def rows(results: dict) -> list[list[str]]:
    p, e = results["propsec"], results["echo"]
    n = results["connections"]
    ratio = p["fanout_ms"] / e["fanout_ms"]
    table = [
        [f"connections opened (of {n:,})", f"{p['opened']:,}", f"{e['opened']:,}", "-",
         f"{n:,}", _ok(p["opened"] == n)],
        [f"server RSS with {p['opened']:,} idle subscribed connections, MB",
         f"{p['rss_full_mb']:.0f}", f"{e['rss_full_mb']:.0f}", "-",
         f"≤ {RSS_MAX_MB} MB", _ok(p["rss_full_mb"] <= RSS_MAX_MB)
         if n == FULL_CONNECTIONS else "(below)"],
        ["memory per connection, KB (RSS full − empty) / connections",
         f"{p['kb_per_connection']:.0f}", f"{e['kb_per_connection']:.0f}",
         f"{p['kb_per_connection'] / e['kb_per_connection']:.2f}×", "-", ""],
    ]
    if n != FULL_CONNECTIONS:
        at_full = p["rss_empty_mb"] + p["kb_per_connection"] * FULL_CONNECTIONS / 1024
        table.append([f"server RSS extrapolated to {FULL_CONNECTIONS:,} connections, MB",
                      f"{at_full:.0f}", "-", "-", f"≤ {RSS_MAX_MB} MB",
                      _ok(at_full <= RSS_MAX_MB) + " (extrapolated)"])
    table += [
        [f"one alert to all {p['opened']:,}: ms until the last has it (median of "
         f"{results['reps']})", f"{p['fanout_ms']:.0f}", f"{e['fanout_ms']:.0f}",
         f"{ratio:.2f}×", f"≤ {FANOUT_MAX}×", _ok(ratio <= FANOUT_MAX)],
        ["get-property on another connection during the fan-outs: p50 / p99 ms",
         f"{p.get('probe_p50_ms', float('nan')):.1f} / {p.get('probe_p99_ms', float('nan')):.1f}",
         "-", "-", "-", ""],
    ]
    if "dropped" in p:
        table.append([f"connections dropped while held idle for {p['held_seconds']:.0f} s",
                      str(p["dropped"]), str(e.get("dropped", "-")), "-", "0",
                      _ok(p["dropped"] == 0)])
    return table


def render(results: dict, info: dict) -> str:
    parts = [*run_lines(results, info), "",
             "- One Node process (socket.io-client, websocket transport) opens the connections, "
             "200 at a time, and holds them; the servers and the generator are started fresh "
             "for each side. RSS from /proc after a settling pause.", "",
             markdown_table(["measurement", "propsec", "floor", "ratio", "target", "met"],
                            rows(results)), ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=FULL_CONNECTIONS)
    parser.add_argument("--reps", type=int, default=7, help="fan-outs per server")
    parser.add_argument("--hold", type=float, default=180.0,
                        help="seconds the connections are held idle (0: skip)")
    parser.add_argument("--async-mode", default="eventlet", choices=("eventlet", "gevent"))
    parser.add_argument("--output", type=Path, help="where to write the report")
    args = parser.parse_args(argv)
    _more_files()
    command = "python -m bench.capacity" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    results, info, stamp = timed_run("capacity", None, command, lambda workdir: measure(
        args.connections, args.reps, args.hold, args.async_mode, workdir))
    results["profile"] = {"name": f"{args.connections}-connections"}
    section = render(results, info)
    print(section)
    (RESULTS / f"{stamp}-capacity.json").write_text(json.dumps(results, indent=1))
    full = args.connections == FULL_CONNECTIONS and args.hold >= 180
    target = args.output or (DOC if full else RESULTS / f"capacity-{args.connections}.md")
    write_report(target, section, BEGIN, END, "Capacity (issue 11)")
    log(f"wrote {target}")


if __name__ == "__main__":
    main()
