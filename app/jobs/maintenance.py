"""The maintenance thread: retention and queue gauges, on one elected worker at a time.

Every worker process runs the thread; the one whose maintenance connection holds the
session advisory lock ``pgjobs.maintenance`` is the leader and does the work. If it dies
its connection closes, the lock is released and another process takes over at its next
tick. (Rescue is not here: every worker's heartbeat does it, so it keeps running even
while the leader is busy pruning.)
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
from dramatiq import Middleware

from app.broker.connections import connect
from app.jobs import metrics, queries, retention
from app.jobs.policies import QUEUES

logger = logging.getLogger(__name__)


class Maintenance(Middleware):
    def __init__(self, *, interval: float = 5.0, batch: int = 500) -> None:
        self.interval = interval
        self.batch = batch
        self.leader = False
        self._conn: psycopg.Connection | None = None
        self._gauged: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Set after each completed tick (tests wait on it instead of sleeping).
        self.ticked = threading.Event()

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        if self.interval <= 0:
            return  # maintenance disabled in this process (JOBS_MAINTENANCE_SECONDS=0)
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
        self._close()

    def _run(self, broker: Any) -> None:
        while not self._stop.is_set():
            try:
                self.tick(broker)
            except Exception:
                logger.warning("event=maintenance_failed", exc_info=True)
                self._close()
            self.ticked.set()
            self._stop.wait(self.interval)

    def tick(self, broker: Any) -> None:
        """Take or keep the lead; as leader prune every known queue and refresh gauges."""
        conn = self._connection(broker)
        if not self.leader:
            self.leader = bool(conn.execute(queries.TRY_LEAD).fetchone()[0])  # type: ignore[index]
            if self.leader:
                logger.info("event=maintenance_leader worker_id=%s", broker.worker_id)
        if not self.leader:
            metrics.clear_queue_gauges()
            return
        served = {q for (q,) in conn.execute(queries.SERVED_QUEUES)}
        queues = {q.removesuffix(".DQ") for q in served | set(broker.get_declared_queues())}
        retention.prune(conn, queues | set(QUEUES), batch=self.batch)
        rows = conn.execute(queries.QUEUE_GAUGES).fetchall()
        self._gauged = metrics.set_queue_gauges(rows, self._gauged)

    def _connection(self, broker: Any) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self.leader = False  # a new session holds no lock
            self._conn = connect(broker.url, application_name="pgjobs-maintenance")
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                logger.debug("event=maintenance_close_failed", exc_info=True)
        self._conn = None
        if self.leader:
            metrics.clear_queue_gauges()
        self.leader = False
