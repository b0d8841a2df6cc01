"""Dashboard benchmark (not a test): how long from navigation to a fully drawn map of
10,000 properties, and what applying live events at 200 per second costs the page.

    python -m bench.dashboard.bench_dashboard [--properties 10310] [--rate 200] [--seconds 15]

10,310 lots are loaded because bench.dataset removes 3 % of them: about 10,000 are
visible. The server is `python app.py` (eventlet, SQLite, pinned to one core by
bench.servers); Debian's Chromium drives the page headless at 1440 x 900.
Figures go to stdout, and as JSON to bench/results/dashboard-<time>.json."""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import socketio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.dataset import load  # noqa: E402
from bench.servers import propsec_server  # noqa: E402

CHROMIUM = os.environ.get("PROPSEC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
PASSWORD = "bench-password"
NAMESPACE = "/propsec"

# Installed in the page before the burst: per-event handling cost, delivery latency
# (page clock - event timestamp, same machine), frame intervals and long tasks.
INSTRUMENT = """() => {
  const b = window.__bench = { cost: [], latency: [], frames: [], longtasks: [], stop: false };
  const conn = window.propsec.conn;
  const receive = conn.receive.bind(conn);
  conn.receive = (name, payload) => {
    const t0 = performance.now();
    receive(name, payload);
    b.cost.push(performance.now() - t0);
    if (payload.timestamp) b.latency.push(Date.now() - Date.parse(payload.timestamp));
  };
  try {
    new PerformanceObserver((list) => list.getEntries().forEach((e) => b.longtasks.push(e.duration)))
      .observe({ type: "longtask" });
  } catch (e) { /* not supported */ }
  let last = performance.now();
  const tick = (t) => { b.frames.push(t - last); last = t; if (!b.stop) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}"""

# The page alone: synthetic events handed straight to the page's receive path at a
# fixed rate (same mix as the server burst), so the server's speed is out of it.
INJECT = """async ({ rate, seconds }) => {
  const P = window.propsec;
  const ids = [...P.store.properties.keys()];
  let eventId = 1e9;
  const frames = [];
  let last = performance.now();
  let stop = false;
  const tick = (t) => { frames.push(t - last); last = t; if (!stop) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  const t0 = performance.now();
  let n = 0;
  let cost = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      while (n < due) {
        const pid = ids[(n * 7919) % ids.length];
        let name;
        let p;
        if (n % 3 === 0) { name = "events.alerts"; p = { propertyId: pid, user: "bench-staff", alertId: 1e6 + n, reason: "bench" }; }
        else if (n % 3 === 1) { name = "events.property-status-change"; p = { propertyId: pid, status: n % 2 ? "ACTIVE" : "INACTIVE" }; }
        else { name = "events.property-size-changed"; p = { propertyId: pid, width: 18 + (n % 8), height: 16 + (n % 8), size: 0 }; }
        p.eventId = ++eventId;
        p.timestamp = new Date().toISOString();
        const c0 = performance.now();
        P.conn.receive(name, p);
        cost += performance.now() - c0;
        n += 1;
      }
      if (performance.now() - t0 > seconds * 1000) { clearInterval(timer); resolve(); }
    }, 5);
  });
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  return { n, elapsed: (performance.now() - t0) / 1000, cost, frames: frames.slice(1) };
}"""

DRAWN = """() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve({
  drawnAt: performance.now(),
  rects: document.querySelectorAll('#map [data-property-id]').length,
  snapshotMs: Number(document.getElementById('map').dataset.loadedMs),
  domContentLoaded: performance.getEntriesByType('navigation')[0]?.domContentLoadedEventEnd,
  marks: Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name.replace('propsec:', ''), m.startTime])),
}))))"""


def chromium_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("chromium", "chrome"):
                    pids.add(int(entry.name))
            except OSError:
                pass
    return pids


def cpu_seconds(pids: set[int]) -> dict:
    """CPU time (user + system) of our Chromium, by process kind (--type=renderer, gpu-process...)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {"all": 0.0, "renderer": 0.0, "gpu-process": 0.0, "browser": 0.0}
    for pid in pids:
        try:
            # child processes rewrite their command line into one string: search it
            found = re.search(rb"--type=([\w-]+)", Path(f"/proc/{pid}/cmdline").read_bytes())
            kind = found.group(1).decode() if found else "browser"
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
        used["all"] += seconds
        used[kind] = used.get(kind, 0.0) + seconds
    return used


def cpu_share(before: dict, after: dict, seconds: float) -> dict:
    return {k: (after.get(k, 0.0) - before.get(k, 0.0)) / seconds for k in set(before) | set(after)}


def cores(share: dict) -> str:
    """'renderer 45 %, gpu 30 %, all 80 %' (percent of one core)."""
    names = [("renderer", "renderer"), ("gpu-process", "gpu/compositor"), ("browser", "browser"), ("all", "all Chromium")]
    return ", ".join(f"{label} {100 * share.get(key, 0.0):.0f} %" for key, label in names) + " of one core"


def pct(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def prepare(tmp: Path, properties: int) -> tuple[str, dict]:
    url = f"sqlite:///{tmp / 'bench.sqlite'}"
    site = load(url, properties, visits=0, alerts=0)
    from propsec import create_app
    from propsec.extensions import db
    from propsec.models import User
    from propsec.security import hash_password

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "PROPSEC_ASYNC_MODE": "threading"})
    with app.app_context():
        for user_id in ("bench-staff", "bench-admin"):
            db.session.get(User, user_id).password_hash = hash_password(PASSWORD)
        db.session.commit()
        db.engine.dispose()
    return url, site


def client(url: str, token: str) -> socketio.Client:
    c = socketio.Client(reconnection=False)
    c.connect(url, namespaces=[NAMESPACE], auth={"token": token}, transports=["websocket"],
              wait_timeout=10)
    return c


def generate(url: str, tokens: dict, property_ids: list[int], rate: float, seconds: float,
             threads: int = 8) -> dict:
    """Cause events at `rate` per second in total: alerts, status flips, small moves."""
    stats = {"sent": 0, "errors": 0, "ack_ms": []}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(n: int):
        rng = random.Random(n)
        staff = client(url, tokens["staff"])
        admin = client(url, tokens["admin"])
        interval = threads / rate
        next_at = time.monotonic() + n * interval / threads
        k = 0
        while next_at < stop_at:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pid = rng.choice(property_ids)
            kind = k % 3
            t0 = time.monotonic()
            if kind == 0:
                reply = staff.call("queries.add-alert", {"propertyId": pid, "userId": "bench-staff",
                                                         "reason": "bench"}, namespace=NAMESPACE)
            elif kind == 1:
                status = rng.choice(["ACTIVE", "INACTIVE"])
                reply = admin.call("queries.change-property-status", {"propertyId": pid, "status": status},
                                   namespace=NAMESPACE)
            else:
                reply = admin.call("queries.change-property-size",
                                   {"propertyId": pid, "width": 18 + rng.randrange(8),
                                    "height": 16 + rng.randrange(8)}, namespace=NAMESPACE)
            with lock:
                stats["sent"] += 1
                stats["ack_ms"].append((time.monotonic() - t0) * 1000)
                if reply.get("type") == "error":
                    stats["errors"] += 1
            k += 1
            next_at += interval
        staff.disconnect()
        admin.disconnect()

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    stats["elapsed"] = time.monotonic() - started
    return stats


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--properties", type=int, default=10310)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--loads", type=int, default=3, help="page loads to time")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    results: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                 "python": platform.python_version(),
                                 "load_average_at_start": os.getloadavg()},
                     "properties_loaded": args.properties}
    with tempfile.TemporaryDirectory(prefix="propsec-dash-bench-") as tmpdir:
        tmp = Path(tmpdir)
        t0 = time.monotonic()
        url_db, site = prepare(tmp, args.properties)
        print(f"dataset: {args.properties:,} properties in {time.monotonic() - t0:.1f}s", flush=True)
        server = propsec_server(url_db, "eventlet", tmp)
        server.start()
        try:
            with sync_playwright() as pw:
                others = chromium_pids()
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                results["chromium"] = browser.version
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(server.url + "/login")
                page.fill("input[name=username]", "bench-staff")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_selector("#map[data-property-count]", state="attached", timeout=120000)

                loads = []
                for _ in range(args.loads):
                    page.goto(server.url + "/")
                    page.wait_for_selector("#map[data-property-count]", state="attached", timeout=120000)
                    loads.append(page.evaluate(DRAWN))
                drawn = [round(x["drawnAt"]) for x in loads]
                phases = {
                    "page_ready_ms": [round(x["domContentLoaded"] or 0) for x in loads],
                    "get_map_sent_ms": [round(x["marks"]["get-map-sent"]) for x in loads],
                    "get_map_round_trip_ms": [round(x["marks"]["get-map-answered"] - x["marks"]["get-map-sent"]) for x in loads],
                    "alerts_and_drones_ms": [round(x["marks"]["snapshot-complete"] - x["marks"]["get-map-answered"]) for x in loads],
                    "apply_snapshot_ms": [round(x["marks"]["snapshot-applied"] - x["marks"]["snapshot-complete"]) for x in loads],
                    "navigation_to_map_painted_ms": [round(x["marks"]["map-painted"]) for x in loads],
                    "navigation_to_index_ready_ms": [round(x["marks"]["index-ready"]) for x in loads],
                    "navigation_to_settled_ms": drawn,
                }
                results["load"] = {"navigation_to_drawn_ms": drawn, "median_ms": statistics.median(drawn),
                                   "phases": phases,
                                   "snapshot_ms": [x["snapshotMs"] for x in loads],
                                   "dom_content_loaded_ms": [round(x["domContentLoaded"] or 0) for x in loads],
                                   "properties_drawn": loads[-1]["rects"]}
                painted = phases["navigation_to_map_painted_ms"]
                results["load"]["median_painted_ms"] = statistics.median(painted)
                print(f"load: {loads[-1]['rects']:,} properties; navigation -> map painted {painted} ms "
                      f"(median {statistics.median(painted):.0f} ms); -> index and hooks ready, next frame "
                      f"{drawn} ms (median {statistics.median(drawn):.0f} ms)", flush=True)
                for name, values in phases.items():
                    print(f"  {name:<24} {values}", flush=True)

                # zooming the full map: frame intervals during two animated zooms
                page.evaluate(INSTRUMENT)
                page.evaluate("() => { const m = window.propsec.mapView.map; m.zoomIn(1); }")
                time.sleep(1.2)
                page.evaluate("() => { const m = window.propsec.mapView.map; m.zoomOut(1); }")
                time.sleep(1.2)
                zoom_frames = page.evaluate("() => { const f = window.__bench.frames.slice(1); window.__bench.stop = true; return f; }")
                results["zoom"] = {"frames": len(zoom_frames), "median_frame_ms": statistics.median(zoom_frames),
                                   "p95_frame_ms": pct(zoom_frames, 95), "max_frame_ms": max(zoom_frames)}
                print(f"zoom in/out of the whole map: frame median {results['zoom']['median_frame_ms']:.1f} ms, "
                      f"p95 {results['zoom']['p95_frame_ms']:.1f} ms, max {results['zoom']['max_frame_ms']:.1f} ms",
                      flush=True)

                # the page alone, events injected at the target rate
                page.reload()
                page.wait_for_selector("#map[data-property-count]", state="attached", timeout=120000)
                time.sleep(1)
                ours = chromium_pids() - others
                idle0, t0 = cpu_seconds(ours), time.monotonic()
                time.sleep(3)
                idle = cpu_share(idle0, cpu_seconds(ours), time.monotonic() - t0)
                results["idle_cpu_cores"] = idle
                print(f"idle page: CPU {cores(idle)}", flush=True)
                ours = chromium_pids() - others
                cpu0, t0 = cpu_seconds(ours), time.monotonic()
                inj = page.evaluate(INJECT, {"rate": args.rate, "seconds": args.seconds})
                inj_cpu = cpu_share(cpu0, cpu_seconds(ours), time.monotonic() - t0)
                f = inj["frames"]
                results["injected"] = {"events": inj["n"], "rate": inj["n"] / inj["elapsed"],
                                       "handle_ms_mean": inj["cost"] / max(1, inj["n"]),
                                       "main_thread_share_handling": inj["cost"] / 1000 / inj["elapsed"],
                                       "frames": len(f), "fps": len(f) / inj["elapsed"],
                                       "frame_ms_median": statistics.median(f), "frame_ms_p95": pct(f, 95),
                                       "frame_ms_max": max(f),
                                       "cpu_cores": inj_cpu}
                r = results["injected"]
                print(f"page alone, {r['rate']:.0f} events/s injected for {args.seconds:.0f}s: handling "
                      f"{r['handle_ms_mean']:.2f} ms/event ({100 * r['main_thread_share_handling']:.0f} % of the main "
                      f"thread); {r['fps']:.1f} frames/s, frame median {r['frame_ms_median']:.0f} ms, "
                      f"p95 {r['frame_ms_p95']:.0f} ms, max {r['frame_ms_max']:.0f} ms; CPU {cores(inj_cpu)}",
                      flush=True)

                # live events at the target rate, caused through the server
                page.reload()
                page.wait_for_selector("#map[data-property-count]", state="attached", timeout=120000)
                time.sleep(1)
                page.evaluate(INSTRUMENT)
                before = page.evaluate("() => window.propsec.conn.lastEventId")
                cpu0, t0 = cpu_seconds(ours), time.monotonic()
                gen = generate(server.url, site["tokens"], site["property_ids"], args.rate, args.seconds)
                watcher = client(server.url, site["tokens"]["admin"])
                newest = before or 0
                while True:
                    events = watcher.call("queries.get-events", {"since": newest, "limit": 1000},
                                          namespace=NAMESPACE)["data"]["events"]
                    if not events:
                        break
                    newest = events[-1]["eventId"]
                watcher.disconnect()
                caught_up_at = time.monotonic()
                deadline = caught_up_at + 60
                while time.monotonic() < deadline:
                    seen = page.evaluate("() => window.propsec.conn.lastEventId")
                    if seen is not None and seen >= newest:
                        break
                    time.sleep(0.05)
                behind_s = time.monotonic() - caught_up_at
                live_cpu = cpu_share(cpu0, cpu_seconds(ours), time.monotonic() - t0)
                b = page.evaluate("() => { window.__bench.stop = true; const b = window.__bench; "
                                  "return { cost: b.cost, latency: b.latency, frames: b.frames.slice(1), longtasks: b.longtasks }; }")
                browser.close()
        finally:
            server.stop()

    received = len(b["cost"])
    rate_sent = gen["sent"] / gen["elapsed"]
    results["events"] = {
        "target_rate": args.rate, "seconds": args.seconds, "sent": gen["sent"], "errors": gen["errors"],
        "sent_rate": rate_sent, "server_ack_ms_p50": pct(gen["ack_ms"], 50), "server_ack_ms_p95": pct(gen["ack_ms"], 95),
        "received": received, "page_done_after_generator_s": behind_s,
        "handle_ms_mean": statistics.fmean(b["cost"]) if b["cost"] else None,
        "handle_ms_p95": pct(b["cost"], 95), "handle_ms_max": max(b["cost"] or [0]),
        "latency_ms_p50": pct(b["latency"], 50), "latency_ms_p95": pct(b["latency"], 95),
        "latency_ms_max": max(b["latency"] or [0]),
        "frames": len(b["frames"]), "frame_ms_median": statistics.median(b["frames"]),
        "frame_ms_p95": pct(b["frames"], 95), "frame_ms_max": max(b["frames"]),
        "frames_over_50ms": sum(1 for f in b["frames"] if f > 50),
        "longtasks": len(b["longtasks"]), "longtask_ms_total": sum(b["longtasks"]),
        "cpu_cores": live_cpu,
        "page_errors": errors,
    }
    e = results["events"]
    print(f"events: {gen['sent']} sent in {gen['elapsed']:.1f}s ({rate_sent:.0f}/s, target {args.rate:.0f}/s, "
          f"{gen['errors']} errors; server ack p50 {e['server_ack_ms_p50']:.1f} ms, p95 {e['server_ack_ms_p95']:.1f} ms)")
    print(f"  page received {received}; caught up {behind_s:.2f}s after the last ack; "
          f"handling per event mean {e['handle_ms_mean']:.2f} ms, p95 {e['handle_ms_p95']:.2f} ms, "
          f"max {e['handle_ms_max']:.1f} ms")
    print(f"  delivery latency (event timestamp -> page) p50 {e['latency_ms_p50']:.0f} ms, "
          f"p95 {e['latency_ms_p95']:.0f} ms, max {e['latency_ms_max']:.0f} ms")
    print(f"  frames: median {e['frame_ms_median']:.1f} ms, p95 {e['frame_ms_p95']:.1f} ms, "
          f"max {e['frame_ms_max']:.1f} ms, {e['frames_over_50ms']} of {e['frames']} over 50 ms; "
          f"long tasks {e['longtasks']} ({e['longtask_ms_total']:.0f} ms in all)")
    print(f"  CPU {cores(live_cpu)}")
    if errors:
        print(f"  page errors: {errors[:3]}")
    results["machine"]["load_average_at_end"] = os.getloadavg()
    print(f"machine: {os.cpu_count()} cpus, load average {results['machine']['load_average_at_start'][0]:.1f} "
          f"at start, {results['machine']['load_average_at_end'][0]:.1f} at end (other work on the machine "
          f"inflates every figure)")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"dashboard-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
