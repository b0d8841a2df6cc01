"""The load generator: one asyncio process driving many python-socketio `AsyncClient`
websocket connections (aiohttp underneath). `python -m bench.loadgen < job.json` runs one
job and prints its result as one JSON line; the harness (`bench.run`) writes the jobs.

Jobs:
- `rtt`: closed-loop round trips (`emit` with an acknowledgement, then the next) on N
  connections for a fixed time; throughput, p50, p99, and the CPU that this process and
  the server used in the window (the evidence that the generator is not the bottleneck).
- `latency`: one connection per target server, each query asked `count` times in a row,
  the targets taking turns; p50 and result size per target.
- `fanout`: N receiving connections; server RSS while they are idle; then each joins the
  fan-out (propsec: `subscribe events.alerts` as staff; echo: `join`) and a separate
  trigger connection asks for one event per repetition: the time from the trigger's emit
  until the last of the N has received it."""
from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime

import aiohttp
import socketio

from .servers import proc_cpu_seconds, proc_rss_mb

NAMESPACE = "/propsec"
CONNECT_CONCURRENCY = 25


def _cpu(pid: int | None) -> float:
    return 0.0 if pid is None else proc_cpu_seconds(pid)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class Pool:
    """Websocket connections sharing one aiohttp session."""

    def __init__(self, url: str, token: str | None):
        self.url, self.token = url, token
        self.clients: list[socketio.AsyncClient] = []
        self.session: aiohttp.ClientSession | None = None

    async def open(self, count: int) -> list[socketio.AsyncClient]:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one() -> socketio.AsyncClient:
            client = socketio.AsyncClient(reconnection=False, http_session=self.session)
            async with gate:
                await client.connect(self.url, namespaces=[NAMESPACE], transports=["websocket"],
                                     auth={"token": self.token} if self.token else None,
                                     wait_timeout=30)
            return client

        made = await asyncio.gather(*(one() for _ in range(count)))
        self.clients.extend(made)
        return list(made)

    async def close(self) -> None:
        await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)
        if self.session is not None:
            await self.session.close()


def _is_error(answer) -> bool:
    return not isinstance(answer, dict) or answer.get("type") == "error"


async def rtt(job: dict) -> dict:
    pool = Pool(job["url"], job.get("token"))
    clients = await pool.open(job["connections"])
    payloads, event = job["payloads"], job["event"]
    latencies: list[float] = []
    errors = 0
    state = {"measuring": False, "stop": False}

    async def loop(index: int, client: socketio.AsyncClient) -> None:
        nonlocal errors
        n = index
        while not state["stop"]:
            payload = payloads[n % len(payloads)]
            n += 1
            started = time.perf_counter()
            answer = await client.call(event, payload, namespace=NAMESPACE, timeout=30)
            elapsed = time.perf_counter() - started
            if state["measuring"]:
                latencies.append(elapsed)
                errors += _is_error(answer)

    tasks = [asyncio.create_task(loop(i, c)) for i, c in enumerate(clients)]
    # Windows of several generator processes line up on the wall clock.
    start_at = job.get("start_at") or time.time() + job["warmup"]
    await asyncio.sleep(max(0.0, start_at - time.time()))
    state["measuring"] = True
    cpu0, server0, wall0 = time.process_time(), _cpu(job.get("server_pid")), time.perf_counter()
    await asyncio.sleep(job["duration"])
    state["measuring"] = False
    wall = time.perf_counter() - wall0
    cpu, server = time.process_time() - cpu0, _cpu(job.get("server_pid")) - server0
    state["stop"] = True
    await asyncio.gather(*tasks)
    await pool.close()
    latencies.sort()
    return {"count": len(latencies), "seconds": wall, "throughput": len(latencies) / wall,
            "p50_ms": percentile(latencies, 0.5) * 1e3, "p99_ms": percentile(latencies, 0.99) * 1e3,
            "errors": errors, "generator_cpu": cpu / wall, "server_cpu": server / wall}


def _result_size(answer) -> int:
    data = answer.get("data") if isinstance(answer, dict) else None
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, list):
                return len(value)
    return 0


async def latency(job: dict) -> dict:
    """Each query `count` times in a row on one connection per target; the targets (the
    small and the large data set's servers) take turns request by request, so both see
    the same machine at the same moments."""
    targets = job["targets"]
    pools = {label: Pool(t["url"], t.get("token")) for label, t in targets.items()}
    clients = {label: (await pool.open(1))[0] for label, pool in pools.items()}
    results: dict = {label: {} for label in targets}
    names = [q["name"] for q in next(iter(targets.values()))["queries"]]
    for index, name in enumerate(names):
        stats = {label: {"samples": [], "sizes": [], "errors": 0} for label in targets}
        query0 = next(iter(targets.values()))["queries"][index]
        warmup, count = query0.get("warmup", 3), query0["count"]
        for n in range(warmup + count):
            for label, target in targets.items():
                query, st = target["queries"][index], stats[label]
                payload = query["payloads"][n % len(query["payloads"])]
                started = time.perf_counter()
                answer = await clients[label].call(query["event"], payload, namespace=NAMESPACE,
                                                   timeout=120)
                elapsed = time.perf_counter() - started
                if n >= warmup:
                    st["samples"].append(elapsed)
                    st["sizes"].append(_result_size(answer))
                    st["errors"] += _is_error(answer)
                    if _is_error(answer) and st["errors"] == 1:
                        results[label].setdefault("_first_errors", {})[name] = answer
        for label, st in stats.items():
            samples = sorted(st["samples"])
            results[label][name] = {"p50_ms": percentile(samples, 0.5) * 1e3,
                                    "p90_ms": percentile(samples, 0.9) * 1e3,
                                    "rows": sum(st["sizes"]) / max(1, len(st["sizes"])),
                                    "errors": st["errors"], "count": len(samples)}
    for pool in pools.values():
        await pool.close()
    return results


async def fanout(job: dict) -> dict:
    pool = Pool(job["url"], job.get("token"))
    n = job["connections"]
    receivers = await pool.open(n)
    (trigger,) = await pool.open(1)
    await asyncio.sleep(job.get("settle", 2.0))
    result: dict = {"connections": n}
    if job.get("server_pid"):
        result["rss_idle_mb"] = proc_rss_mb(job["server_pid"])

    counts: dict = {}
    finished: dict = {}
    completed = asyncio.Event()

    def on_alert(payload):
        key = payload.get("alertId") if isinstance(payload, dict) else None
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == n:
            finished[key] = time.perf_counter()
            completed.set()

    for client in receivers:
        client.on("events.alerts", on_alert, namespace=NAMESPACE)
    if job["mode"] == "propsec":
        joins = [c.call("subscribe", {"id": "events.alerts"}, namespace=NAMESPACE, timeout=60)
                 for c in receivers]
    else:
        joins = [c.call("join", {}, namespace=NAMESPACE, timeout=60) for c in receivers]
    answers = await asyncio.gather(*joins)
    result["join_errors"] = sum(_is_error(a) for a in answers)
    await asyncio.sleep(0.5)

    times, acks, cpu_share, server_cpu = [], [], [], []
    server_pid = job.get("server_pid")
    for rep in range(job["reps"]):
        if job["mode"] == "propsec":
            event, payload = "queries.add-alert", {"propertyId": job["property_id"],
                                                   "userId": job["user_id"],
                                                   "reason": f"bench fan-out {rep}"}
        else:  # the same payload as propsec's events.alerts, as a bare room emit
            event, payload = "fanout", {**job["payload"], "alertId": -(rep + 1)}
        await asyncio.sleep(0.05)  # let the server's writers go idle before the clock starts
        server0 = _cpu(server_pid)
        started, cpu0 = time.perf_counter(), time.process_time()
        answer = await trigger.call(event, payload, namespace=NAMESPACE, timeout=60)
        acked = time.perf_counter()
        if job["mode"] == "propsec":
            key = answer.get("data", {}).get("id") if isinstance(answer, dict) else None
            if key is None:
                raise RuntimeError(f"add-alert failed: {answer}")
        else:
            key = payload["alertId"]
        deadline = time.monotonic() + 60
        while key not in finished:
            completed.clear()
            if key in finished:
                break
            await asyncio.wait_for(completed.wait(), max(0.1, deadline - time.monotonic()))
        elapsed = finished[key] - started
        server_cpu.append(_cpu(server_pid) - server0)
        times.append(elapsed)
        acks.append(acked - started)
        cpu_share.append((time.process_time() - cpu0) / elapsed)
        await asyncio.sleep(job.get("pause", 0.3))
    await pool.close()
    ordered = sorted(times)
    result.update({"median_ms": percentile(ordered, 0.5) * 1e3, "min_ms": ordered[0] * 1e3,
                   "max_ms": ordered[-1] * 1e3,
                   "ack_median_ms": percentile(sorted(acks), 0.5) * 1e3,
                   "generator_cpu": percentile(sorted(cpu_share), 0.5), "reps": len(times),
                   "server_cpu_ms": percentile(sorted(server_cpu), 0.5) * 1e3})
    return result


# Events per write: add-alert 1; add-visitor 2 (visits, scanned); add-auth-entry by a
# stranger 2 (auth-entries, alerts).
WRITE_EVENTS = (1, 2, 2)


def _writes(job: dict, index: int) -> tuple[str, dict]:
    """The n-th write request: propsec's event-producing queries in turn, or the floor's
    bare emit-to-room (its payload carries the send time, for delivery latency)."""
    kind = index % 3
    if job["mode"] == "echo":  # as many events as propsec's request of the same turn makes
        return "fanout", {"n": index, "sent": time.time(), "reason": "bench write",
                          "copies": WRITE_EVENTS[kind]}
    pid = job["property_ids"][index % len(job["property_ids"])]
    if kind == 0:
        return "queries.add-alert", {"propertyId": pid, "userId": "bench-staff",
                                     "reason": "bench write"}
    if kind == 1:
        # (bench.dataset gives property n the camera n)
        return "queries.add-visitor", {"propertyId": pid, "userId": "bench-visitor",
                                       "cameraId": pid}
    return "queries.add-auth-entry", {"propertyId": pid, "userId": "bench-staff"}


async def _log_ids(client, after: int, until: float) -> list[int]:
    """Every eventId in the log after `after`, through get-events (pages of 1,000)."""
    ids: list[int] = []
    while True:
        answer = await client.call("queries.get-events", {"since": after, "limit": 1000},
                                   namespace=NAMESPACE, timeout=60)
        page = answer["data"]["events"]
        ids += [e["eventId"] for e in page]
        if len(page) < 1000 or time.monotonic() > until:
            return ids
        after = page[-1]["eventId"]


async def write(job: dict) -> dict:
    """Closed-loop writers spread over the servers' URLs, one subscriber (staff,
    `events.all`) per server. Reports acknowledged writes per second, ack p50/p99, delivery
    latency p50/p99 (propsec: the row's timestamp, taken in the writing transaction, to
    arrival; the floor: send to arrival), and checks every subscriber against the log:
    nothing lost, nothing twice, strictly increasing eventIds."""
    urls, echo = job["urls"], job["mode"] == "echo"
    pools = [Pool(url, job.get("token")) for url in urls]
    subscribers = [(await pool.open(1))[0] for pool in pools]
    writers = []
    for n in range(job["writers"]):
        writers += await pools[n % len(pools)].open(1)
    received: list[list[tuple[int, float]]] = [[] for _ in subscribers]
    delays: list[float] = []
    state = {"measuring": False, "stop": False}

    def on_event(bucket, payload):
        now = time.time()
        if echo:
            bucket.append((payload["n"], now))
            if state["measuring"]:
                delays.append(now - payload["sent"])
            return
        bucket.append((payload["eventId"], now))
        if state["measuring"]:
            delays.append(now - datetime.fromisoformat(payload["timestamp"]).timestamp())

    starts = []
    for sub, bucket in zip(subscribers, received):
        name = "events.alerts" if echo else "events.all"
        sub.on(name, lambda p, b=bucket: on_event(b, p), namespace=NAMESPACE)
        answer = await sub.call("join" if echo else "subscribe", {} if echo else {"id": name},
                                namespace=NAMESPACE, timeout=60)
        if _is_error(answer):
            raise RuntimeError(f"subscribe failed: {answer}")
        starts.append(0 if echo else answer["data"]["lastEventId"])

    latencies: list[float] = []
    errors, counter = 0, [0]
    first_error: dict = {}

    async def loop(client) -> None:
        nonlocal errors
        while not state["stop"]:
            counter[0] += 1
            event, payload = _writes(job, counter[0])
            started = time.perf_counter()
            answer = await client.call(event, payload, namespace=NAMESPACE, timeout=60)
            if state["measuring"]:
                latencies.append(time.perf_counter() - started)
                if _is_error(answer):
                    errors += 1
                    first_error.setdefault("answer", answer)

    tasks = [asyncio.create_task(loop(c)) for c in writers]
    await asyncio.sleep(job["warmup"])
    state["measuring"] = True
    cpu0, wall0 = time.process_time(), time.perf_counter()
    servers0 = [_cpu(pid) for pid in job.get("server_pids", [])]
    await asyncio.sleep(job["duration"])
    state["measuring"] = False
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    server_cpu = [(_cpu(pid) - c0) / wall for pid, c0 in zip(job.get("server_pids", []), servers0)]
    state["stop"] = True
    await asyncio.gather(*tasks)
    total_writes = counter[0]

    # Quiet: wait until no subscriber has received anything for a second.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        before = [len(b) for b in received]
        await asyncio.sleep(1.0)
        if [len(b) for b in received] == before:
            break
    check: dict = {"subscribers": len(received)}
    if echo:
        sent = sum(WRITE_EVENTS[n % 3] for n in range(1, total_writes + 1))
        check.update(lost=sum(sent - len(b) for b in received), duplicates=0, out_of_order=0)
    else:
        logged = await _log_ids(subscribers[0], min(starts), time.monotonic() + 120)
        lost = duplicates = disorder = 0
        for bucket, start in zip(received, starts):
            ids = [i for i, _ in bucket]
            expected = [i for i in logged if i > start]
            duplicates += len(ids) - len(set(ids))
            disorder += sum(1 for x, y in zip(ids, ids[1:]) if y <= x)
            lost += len(set(expected) - set(ids))
        check.update(lost=lost, duplicates=duplicates, out_of_order=disorder,
                     logged=len(logged))
    for pool in pools:
        await pool.close()
    latencies.sort()
    delays.sort()
    return {"count": len(latencies), "seconds": wall, "throughput": len(latencies) / wall,
            "p50_ms": percentile(latencies, 0.5) * 1e3, "p99_ms": percentile(latencies, 0.99) * 1e3,
            "delivery_p50_ms": percentile(delays, 0.5) * 1e3,
            "delivery_p99_ms": percentile(delays, 0.99) * 1e3,
            "deliveries": len(delays), "errors": errors, "first_error": first_error.get("answer"),
            "generator_cpu": cpu / wall, "server_cpu": server_cpu, "check": check}


JOBS = {"rtt": rtt, "latency": latency, "fanout": fanout, "write": write}


def main() -> None:
    job = json.loads(sys.stdin.read())
    result = asyncio.run(JOBS[job["kind"]](job))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
