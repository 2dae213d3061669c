"""Lifecycle events of every job: enqueued, active, completed, failed, retrying, dead, stalled,
rescued (progress comes from ``report_progress``, cancelled from operations).

It sits before the retry and tenant middleware in the stack, so its ``after_process_message``
runs after theirs (dramatiq runs after-hooks in reverse) and reads the outcome they decided
(``retry_delay``, ``failed``, ``completed``): one line per event, logged here only. It also
starts this process's metrics endpoint when ``JOBS_METRICS_PORT`` is set.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dramatiq import Message, Middleware

from app.broker.leases import Rescued
from app.broker.message import JobMessage
from app.jobs import metrics, queries
from app.jobs.events import record, set_happy_path_level

logger = logging.getLogger(__name__)


class _StoredResultsWarning(logging.Filter):
    """Drop dramatiq's per-job "no Results middleware, value discarded" warning: it is wrong
    here (the broker stores a JSON return value in the job row's ``result``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and "Results middleware" in record.msg)


class JobEvents(Middleware):
    def __init__(self, *, metrics_port: int = 0, happy_path_level: str = "DEBUG") -> None:
        self.metrics_port = metrics_port
        set_happy_path_level(happy_path_level)

    # -- worker lifetime ---------------------------------------------------------------------

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        logging.getLogger("dramatiq.worker.WorkerThread").addFilter(_StoredResultsWarning())
        port = metrics.serve(self.metrics_port)
        if port is None:
            return
        with broker.jobs_pool.connection() as conn:
            conn.execute(queries.METRICS_PORT, {"port": port, "worker": broker.worker_id})
        logger.info("event=metrics_serving worker_id=%s port=%s", broker.worker_id, port)

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        metrics.stop_serving()

    # -- enqueue side ------------------------------------------------------------------------

    def after_enqueue(self, broker: Any, message: Message, delay: int | None) -> None:
        options = message.options
        extra: dict[str, Any] = {"delay": f"{delay / 1000:.3f}"} if delay else {}
        record("enqueued", message_id=message.message_id, actor=message.actor_name,
               queue=message.queue_name, tenant=options.get("tenant_id"),
               priority=options.get("priority", 0), **extra)

    # -- worker side -------------------------------------------------------------------------

    def before_process_message(self, broker: Any, message: JobMessage) -> None:
        message.started_at = time.perf_counter()
        record("active", message_id=message.message_id, actor=message.actor_name,
               queue=message.queue_name, tenant=message.tenant_id, attempt=message.attempt)

    def after_process_message(
        self, broker: Any, message: JobMessage, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        started = message.started_at
        duration = time.perf_counter() - started if started is not None else None
        fields: dict[str, Any] = {
            "message_id": message.message_id, "actor": message.actor_name,
            "queue": message.queue_name, "tenant": message.tenant_id,
            "attempt": message.attempt,
        }
        if message.lease_lost:
            return  # the tenant middleware logged it; the rescuer already counted this job
        exc = exception or message.commit_error
        if exc is None and not message.failed:
            record("completed", duration=duration, **fields)
            if duration is not None:
                metrics.observe(message.queue_name, message.actor_name, "completed", duration)
            return
        if exc is not None:
            record("failed", duration=duration, error=message.error, **fields)
            if duration is not None:
                metrics.observe(message.queue_name, message.actor_name, "failed", duration)
        if message.retry_delay is not None:
            record("retrying", delay=f"{message.retry_delay:.3f}", **fields)
        elif message.failed:
            record("dead", error=message.error, **fields)

    def after_skip_message(self, broker: Any, message: JobMessage) -> None:
        """A middleware skipped the job (e.g. AgeLimit): dead if it failed it, else done."""
        fields: dict[str, Any] = {"message_id": message.message_id, "actor": message.actor_name,
                  "queue": message.queue_name, "tenant": message.tenant_id,
                  "attempt": message.attempt}
        if message.failed:
            record("dead", error=message.error or "skipped by a middleware", skipped=True,
                   **fields)
        else:
            record("completed", skipped=True, **fields)

    # -- the rescuer (WorkerLeases calls this hook) -------------------------------------------

    def after_rescue(self, broker: Any, jobs: list[Rescued]) -> None:
        for job in jobs:
            fields: dict[str, Any] = {"message_id": job.message_id, "actor": job.actor_name,
                      "queue": job.queue_name, "tenant": job.tenant_id, "attempt": job.attempts}
            record("stalled", duration=job.running_seconds, worker_id=job.lost_worker, **fields)
            if job.state == "rejected":
                record("dead", error="worker lost during the last attempt", **fields)
            else:
                record("rescued", **fields)
