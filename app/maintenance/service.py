"""The maintenance thread: rescue, retention and queue gauges, on the elected leader only.

Every worker process runs the thread; the one holding the ``pgjobs.maintenance`` leader
lock (on its claim connection) does the work: it rescues the jobs of workers whose own
lease ran out every heartbeat, and prunes finished jobs and refreshes queue gauges every
``JOBS_MAINTENANCE_SECONDS``. When the leader dies its lock goes with its connection and
another worker takes over at its next tick.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from dramatiq import Middleware

from app.jobs import events, metrics
from app.jobs.policies import QUEUES
from app.maintenance import retention
from app.maintenance.leader import Leadership
from app.store import retention as store_retention
from app.store import workers
from app.store.rows import Rescued

logger = logging.getLogger(__name__)

LEADER = "pgjobs.maintenance"


class Maintenance(Middleware):
    def __init__(
        self, *, interval: float = 5.0, batch: int = 500, rescue_interval: float = 2.0
    ) -> None:
        self.interval = interval
        self.rescue_interval = rescue_interval
        self.batch = batch
        self.leadership: Leadership | None = None
        self._gauged: set[str] = set()
        self._last_prune = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Set after each completed tick (tests wait on it instead of sleeping).
        self.ticked = threading.Event()

    @property
    def leader(self) -> bool:
        return self.leadership is not None and self.leadership.is_leader

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self.leadership = Leadership(LEADER, broker.claim_connection,
                                     lambda: broker.claim_generation)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(broker,), name="pgjobs-maintenance", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.leadership is not None:
            self.leadership.resign()
        metrics.clear_queue_gauges()

    def _run(self, broker: Any) -> None:
        while not self._stop.is_set():
            try:
                self.tick(broker)
            except Exception:
                logger.warning("event=maintenance_failed", exc_info=True)
            self.ticked.set()
            self._stop.wait(min(self.rescue_interval, self.interval)
                            if self.interval > 0 else self.rescue_interval)

    def tick(self, broker: Any) -> None:
        """Take or keep the lead; as leader rescue, and prune and gauge when due."""
        assert self.leadership is not None
        was_leader = self.leadership.is_leader
        if not self.leadership.attempt():
            if was_leader:
                metrics.clear_queue_gauges()
            return
        with broker.jobs_pool.connection() as conn:
            rescued = workers.rescue(conn)
        if rescued:
            self._report(rescued)
        if self.interval <= 0 or time.monotonic() - self._last_prune < self.interval:
            return
        self._last_prune = time.monotonic()
        with broker.jobs_pool.connection() as conn:
            served = store_retention.served_queues(conn)
            queues = {q.removesuffix(".DQ") for q in served | set(broker.get_declared_queues())}
            retention.prune(conn, queues | set(QUEUES), batch=self.batch)
            gauges = store_retention.queue_gauges(conn)
        self._gauged = metrics.set_queue_gauges(gauges, self._gauged)

    @staticmethod
    def _report(jobs: list[Rescued]) -> None:
        for job in jobs:
            fields: dict[str, Any] = {"message_id": job.message_id, "actor": job.actor_name,
                                      "queue": job.queue_name, "tenant": job.tenant_id,
                                      "attempt": job.attempts}
            events.record("stalled", duration=job.running_seconds, worker_id=job.lost_worker,
                          **fields)
            if job.state == "rejected":
                events.record("dead", error="worker lost during the last attempt", **fields)
            else:
                events.record("rescued", **fields)
