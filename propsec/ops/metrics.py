"""Prometheus metrics (contract section 19), kept in this process's own registry and served at
/metrics. Each is recorded where the work already passes: requests in the dispatcher,
connections and subscriptions in the namespace (read when scraped), events and their lag in
the tailer, webhook outcomes in the sender. Every process serves its own numbers; scrape each
(docs/deployment.md).

Label values are bounded: a query is named only when it is a declared wire name (anything
else is `unknown`), an outcome is `ok` or a contract error code, an event a declared name."""
from __future__ import annotations

import sys
from contextlib import nullcontext

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, generate_latest,
                               values)


def _cooperative() -> bool:
    """Whether this process runs green threads only (eventlet or gevent has patched
    `threading`): one OS thread, and a switch happens only where code waits."""
    if "eventlet" in sys.modules:
        from eventlet import patcher

        if patcher.is_monkey_patched("thread"):
            return True
    if "gevent" in sys.modules:
        from gevent import monkey

        return bool(monkey.is_module_patched("threading"))
    return False


class _Value(values.MutexValue):
    """A metric's number. The library guards every update with a `threading.Lock`; under
    eventlet or gevent that is a green semaphore, a few microseconds per update and about
    eight updates per write (requests, durations, events, delivery lag). There an update
    (`+=` on a float) cannot be interrupted by another green thread, so it runs without
    the lock; with real threads the lock stays."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if _cooperative():
            self._lock = nullcontext()


# Every metric of the process takes its values from here (read when each is created).
values.ValueClass = _Value

registry = CollectorRegistry(auto_describe=True)

connections = Gauge("propsec_connections", "Socket.IO connections open on this process",
                    registry=registry)
subscriptions = Gauge("propsec_subscriptions", "Event subscriptions of those connections",
                      registry=registry)
requests = Counter("propsec_requests", "Requests answered, by query (wire name as sent) and outcome",
                   ["query", "outcome"], registry=registry)
request_duration = Histogram(
    "propsec_request_duration_seconds", "Time to answer a request, by query", ["query"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=registry)
events = Counter("propsec_events", "Events pushed to this process's subscribers, by event",
                 ["event"], registry=registry)
delivery_lag = Histogram(
    "propsec_event_delivery_lag_seconds", "From an event's commit to its push by this process",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=registry)
commit_group = Histogram(
    "propsec_commit_group_size", "Prepared changing requests committed together (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64), registry=registry)
group_targets = Counter(
    "propsec_group_targets", "PostgreSQL commit groups by where their targets came from: the "
    "process's memory, the database, or memory that had changed (the group ran again)",
    ["source"], registry=registry)
webhook_deliveries = Counter("propsec_webhook_deliveries", "Webhook delivery attempts, by outcome",
                             ["outcome"], registry=registry)


_CHILDREN: dict = {}


def child(metric, *labels: str):
    """`metric.labels(*labels)`, looked up once per label set: `labels()` takes a lock and
    builds its key at every call, on paths that run for every request and every event. The
    label sets are few (declared query names, outcomes, event names)."""
    key = (metric, labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


def watch(count_connections, count_subscriptions) -> None:
    """The gauges read the namespace's own tables when scraped: nothing to keep in step."""
    connections.set_function(count_connections)
    subscriptions.set_function(count_subscriptions)


def exposition() -> bytes:
    return generate_latest(registry)
