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

from app.broker import identity, queries
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
    def __init__(
        self, *, lease_seconds: float = 10.0, heartbeat_seconds: float = 2.0,
        neighbour_rescue: bool = True,
    ) -> None:
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.neighbour_rescue = neighbour_rescue
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def before_worker_boot(self, broker: PostgresJobsBroker, worker: Any) -> None:
        self._stop.clear()
        broker.stopping.clear()
        with broker.jobs_pool.connection() as conn:
            self._register(conn, broker)
        logger.info("event=worker_started worker_id=%s pid=%s", broker.worker_id, os.getpid())
        self._thread = threading.Thread(
            target=self._beat, args=(broker,), name="pgjobs-heartbeat", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _register(conn: Any, broker: PostgresJobsBroker) -> None:
        conn.execute(queries.REGISTER_WORKER, {
            "worker": broker.worker_id, "hostname": socket.gethostname(),
            "pid": os.getpid(), "queues": sorted(broker.get_declared_queues()),
            "host_key": identity.host_key(), "process_started": identity.process_started(),
        })

    def _beat(self, broker: PostgresJobsBroker) -> None:
        # The first tick runs at once: a restarted worker takes back what it held before.
        while not self._stop.is_set():
            try:
                self.tick(broker)
            except Exception:
                logger.warning("event=heartbeat_failed worker_id=%s", broker.worker_id,
                               exc_info=True)
            self._stop.wait(self.heartbeat_seconds)

    def tick(self, broker: PostgresJobsBroker) -> None:
        """One heartbeat: prove liveness, rescue others' orphans, flush held completions."""
        with broker.jobs_pool.connection() as conn:
            if conn.execute(queries.HEARTBEAT, {"worker": broker.worker_id}).rowcount == 0:
                # We were presumed dead (e.g. a long database outage): register again.
                self._register(conn, broker)
            if self.neighbour_rescue:
                self._forget_dead_neighbours(conn, broker)
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

    @staticmethod
    def _forget_dead_neighbours(conn: Any, broker: PostgresJobsBroker) -> None:
        """Drop the rows of workers on this host whose process has exited (e.g. SIGKILL).

        Their jobs are then orphans for the RESCUE that follows, seconds before their
        lease would run out. Only a process that has certainly exited counts.
        """
        key = identity.host_key()
        if key is None:
            return
        rows = conn.execute(
            queries.NEIGHBOURS, {"host_key": key, "worker": broker.worker_id}
        ).fetchall()
        gone = [worker for worker, pid, started in rows if identity.is_gone(pid, started)]
        if gone:
            conn.execute(queries.FORGET_WORKERS, {"workers": gone})
            for worker in gone:
                logger.warning("event=worker_gone worker_id=%s found_by=%s", worker,
                               broker.worker_id)

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
