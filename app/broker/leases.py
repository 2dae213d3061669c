"""Worker leases: register, heartbeat, rescue orphans, hand jobs back on shutdown.

A claimed row records its worker's id; workers heartbeat in ``dramatiq.workers``. Rows
held by a worker whose heartbeat is older than the lease go back to their queue (or to the
dead letters when their attempts are used up), within seconds and while other workers
keep running: dramatiq-pg only finds orphans by a random rescan.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import Any, NamedTuple

from dramatiq import Middleware

from app.broker import queries
from app.broker.broker import PostgresJobsBroker

logger = logging.getLogger(__name__)


class Rescued(NamedTuple):
    """A job taken back from a worker that stopped heartbeating (state: queued or rejected)."""

    message_id: uuid.UUID
    queue_name: str
    state: str
    actor_name: str | None
    tenant_id: uuid.UUID | None
    attempts: int
    lost_worker: uuid.UUID
    running_seconds: float | None


class WorkerLeases(Middleware):
    def __init__(self, *, lease_seconds: float = 10.0, heartbeat_seconds: float = 2.0) -> None:
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def before_worker_boot(self, broker: PostgresJobsBroker, worker: Any) -> None:
        self._stop.clear()
        broker.stopping.clear()
        with broker.jobs_pool.connection() as conn:
            conn.execute(queries.REGISTER_WORKER, {
                "worker": broker.worker_id, "hostname": socket.gethostname(),
                "pid": os.getpid(), "queues": sorted(broker.get_declared_queues()),
            })
        logger.info("event=worker_started worker_id=%s pid=%s", broker.worker_id, os.getpid())
        self._thread = threading.Thread(
            target=self._beat, args=(broker,), name="pgjobs-heartbeat", daemon=True
        )
        self._thread.start()

    def _beat(self, broker: PostgresJobsBroker) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.tick(broker)
            except Exception:
                logger.warning("event=heartbeat_failed worker_id=%s", broker.worker_id,
                               exc_info=True)

    def tick(self, broker: PostgresJobsBroker) -> None:
        """One heartbeat: prove liveness, rescue others' orphans, flush held completions."""
        with broker.jobs_pool.connection() as conn:
            if conn.execute(queries.HEARTBEAT, {"worker": broker.worker_id}).rowcount == 0:
                # We were presumed dead (e.g. a long database outage): register again.
                conn.execute(queries.REGISTER_WORKER, {
                    "worker": broker.worker_id, "hostname": socket.gethostname(),
                    "pid": os.getpid(), "queues": sorted(broker.get_declared_queues()),
                })
            rescued = conn.execute(queries.RESCUE, {"lease": self.lease_seconds}).fetchall()
        if rescued:
            # Lifecycle events (logs, metrics) belong to the job layer: any middleware with an
            # ``after_rescue`` hook hears of them (dramatiq's emit_after would fail on the rest).
            jobs = [Rescued(*row[:8]) for row in rescued]
            for middleware in broker.middleware:
                hook = getattr(middleware, "after_rescue", None)
                if hook is not None:
                    hook(broker, jobs)
        broker.completions.drain()

    def before_worker_shutdown(self, broker: PostgresJobsBroker, worker: Any) -> None:
        """Stop claiming at once; dramatiq keeps consumers running until in-flight jobs end."""
        broker.stopping.set()

    def after_worker_shutdown(self, broker: PostgresJobsBroker, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        broker.completions.drain()
        try:
            with broker.jobs_pool.connection() as conn:
                handed_back = conn.execute(
                    queries.RELEASE_WORKER, {"worker": broker.worker_id}
                ).rowcount
                conn.execute(queries.UNREGISTER_WORKER, {"worker": broker.worker_id})
            logger.info("event=worker_stopped worker_id=%s handed_back_queues=%s",
                        broker.worker_id, handed_back)
        except Exception:
            logger.warning("event=worker_stop_failed worker_id=%s", broker.worker_id,
                           exc_info=True)
