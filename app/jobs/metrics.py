"""Prometheus metrics of the job lifecycle, per queue and actor, one endpoint per process.

Each worker process serves its own registry (no shared multiprocess directory, no lock
file): on ``JOBS_METRICS_PORT`` + the process's index among dramatiq's worker processes,
or on a free port when that one is taken, and records the port it got in
``dramatiq.workers.metrics_port`` so a scraper can find every process. Unset or 0: no
endpoint (counting still happens in memory; it costs a dict lookup per event).

Queue depth and oldest-wait gauges come from the maintenance leader only, so a sum over
processes never counts a queue twice.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from app.store.rows import QueueGauge

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter(
    "pgjobs_events", "Lifecycle events of jobs, by queue, actor and event.",
    ["queue", "actor", "event"], registry=REGISTRY,
)
DURATION = Histogram(
    "pgjobs_job_duration_seconds", "Time an attempt took, from start to outcome.",
    ["queue", "actor", "outcome"], registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
DEPTH = Gauge(
    "pgjobs_queue_jobs", "Jobs of a queue by status (waiting, delayed, active).",
    ["queue", "status"], registry=REGISTRY,
)
OLDEST = Gauge(
    "pgjobs_queue_oldest_waiting_seconds", "How long the oldest due job has been waiting.",
    ["queue"], registry=REGISTRY,
)
PRUNED = Counter(
    "pgjobs_pruned", "Finished jobs deleted by retention, by queue and state.",
    ["queue", "state"], registry=REGISTRY,
)

# Label children cached: ``labels()`` takes a lock and builds a key on every call.
_counters: dict[tuple[str, str, str | None], Counter] = {}
_durations: dict[tuple[str, str | None, str], Histogram] = {}
_servers: list[tuple[Any, threading.Thread]] = []


def count(event: str, queue: str, actor: str | None) -> None:
    key = (event, queue, actor)
    child = _counters.get(key)
    if child is None:
        child = _counters[key] = EVENTS.labels(queue, actor or "", event)
    child.inc()


def observe(queue: str, actor: str | None, outcome: str, seconds: float) -> None:
    key = (queue, actor, outcome)
    child = _durations.get(key)
    if child is None:
        child = _durations[key] = DURATION.labels(queue, actor or "", outcome)
    child.observe(seconds)


def set_queue_gauges(rows: list[QueueGauge], known: set[str]) -> set[str]:
    """Publish the leader's view of every queue; queues no longer seen drop to zero."""
    seen = set()
    for row in rows:
        queue = row.queue
        seen.add(queue)
        DEPTH.labels(queue, "waiting").set(row.waiting)
        DEPTH.labels(queue, "delayed").set(row.delayed)
        DEPTH.labels(queue, "active").set(row.active)
        OLDEST.labels(queue).set(row.oldest_waiting_seconds)
    for queue in known - seen:
        for status in ("waiting", "delayed", "active"):
            DEPTH.labels(queue, status).set(0)
        OLDEST.labels(queue).set(0)
    return known | seen


def clear_queue_gauges() -> None:
    """A process that is not (or no longer) the leader exports no queue gauges."""
    DEPTH.clear()
    OLDEST.clear()


def process_index() -> int:
    """This process's index among dramatiq's worker processes (0 outside dramatiq's CLI)."""
    identity = multiprocessing.current_process()._identity
    return identity[0] - 1 if identity else 0


def serve(base_port: int, *, addr: str = "0.0.0.0") -> int | None:
    """Serve REGISTRY on ``base_port`` + process index, or a free port if taken; the port."""
    if base_port <= 0:
        return None
    wanted = base_port + process_index()
    for port in (wanted, 0):
        try:
            server, thread = start_http_server(port, addr=addr, registry=REGISTRY)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            logger.warning("event=metrics_port_taken port=%s fallback=free_port", wanted)
            continue
        _servers.append((server, thread))
        return int(server.server_port)
    return None


def stop_serving() -> None:
    """Close this process's endpoints (a worker stopping in a process that goes on)."""
    while _servers:
        server, thread = _servers.pop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
