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


JOBS = {"rtt": rtt, "latency": latency, "fanout": fanout}


def main() -> None:
    job = json.loads(sys.stdin.read())
    result = asyncio.run(JOBS[job["kind"]](job))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
