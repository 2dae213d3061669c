"""Prometheus metrics of the intake: requests and latencies per source and status.

Under ``python -m app.intake`` with several uvicorn workers, ``PROMETHEUS_MULTIPROC_DIR``
is set before any worker starts, so each worker writes its own files and ``/metrics``
(served by whichever worker) sums them all.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REQUESTS = Counter("pgjobs_intake_requests_total", "Intake requests by route source and status",
                   ["source", "status"])
LATENCY = Histogram(
    "pgjobs_intake_request_seconds", "Intake time to answer, by source and status",
    ["source", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
REFUSALS = Counter("pgjobs_intake_refusals_total", "Refused deliveries by source and reason",
                   ["source", "reason"])
STREAMS = Gauge("pgjobs_intake_open_streams", "Open activity streams",
                multiprocess_mode="livesum")


def observe(source: str, status: int, seconds: float) -> None:
    REQUESTS.labels(source, str(status)).inc()
    LATENCY.labels(source, str(status)).observe(seconds)


def render() -> tuple[bytes, str]:
    """The exposition text: every worker's metrics when running multi-process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
