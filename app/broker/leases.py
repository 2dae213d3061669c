"""Worker leases: register, heartbeat, spot dead neighbours, hand jobs back on shutdown.

A claimed row records its worker's id; workers heartbeat in ``dramatiq.workers``, each
renewing its own lease (``JOBS_LEASE_SECONDS`` of that worker). The maintenance leader
rescues the rows of workers whose lease ran out (``app.maintenance``). A worker also
watches the processes of the other workers on its host: one that died (SIGKILL, OOM) has
its row removed at once, so its jobs are rescued within a heartbeat instead of a lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from dramatiq import Middleware

from app.broker import identity
from app.broker.broker import PostgresJobsBroker
from app.store import workers

logger = logging.getLogger(__name__)


class WorkerLeases(Middleware):
    def __init__(
        self, *, lease_seconds: float = 10.0, heartbeat_seconds: float = 2.0,
        neighbour_rescue: bool = True,
    ) -> None:
        if heartbeat_seconds >= lease_seconds:
            raise ValueError(f"JOBS_HEARTBEAT_SECONDS ({heartbeat_seconds}) must be shorter "
                             f"than JOBS_LEASE_SECONDS ({lease_seconds})")
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
        logger.info("event=worker_started worker_id=%s pid=%s lease_seconds=%s",
                    broker.worker_id, os.getpid(), self.lease_seconds)
        self._thread = threading.Thread(
            target=self._beat, args=(broker,), name="pgjobs-heartbeat", daemon=True
        )
        self._thread.start()

    def _register(self, conn: Any, broker: PostgresJobsBroker) -> None:
        workers.register(
            conn, worker=broker.worker_id, hostname=socket.gethostname(), pid=os.getpid(),
            queues=sorted(broker.get_declared_queues()), host_key=identity.host_key(),
            process_started=identity.process_started(), lease=self.lease_seconds,
        )

    def _beat(self, broker: PostgresJobsBroker) -> None:
        # The first tick runs at once: a restarted worker finds its dead predecessor.
        while not self._stop.is_set():
            try:
                self.tick(broker)
            except Exception:
                logger.warning("event=heartbeat_failed worker_id=%s", broker.worker_id,
                               exc_info=True)
            self._stop.wait(self.heartbeat_seconds)

    def tick(self, broker: PostgresJobsBroker) -> None:
        """One heartbeat: renew the lease, forget dead neighbours, flush held completions."""
        with broker.jobs_pool.connection() as conn:
            if not workers.heartbeat(conn, broker.worker_id):
                # We were presumed dead (e.g. a long database outage): register again.
                self._register(conn, broker)
            if self.neighbour_rescue:
                self._forget_dead_neighbours(conn, broker)
        broker.completions.drain()

    @staticmethod
    def _forget_dead_neighbours(conn: Any, broker: PostgresJobsBroker) -> None:
        """Drop the rows of workers on this host whose process has exited (e.g. SIGKILL).

        Their jobs are then orphans for the leader's next rescue, seconds before their
        lease would run out. Only a process that has certainly exited counts.
        """
        key = identity.host_key()
        if key is None:
            return
        rows = workers.neighbours(conn, broker.worker_id, key)
        gone = [n.worker_id for n in rows if identity.is_gone(n.pid, n.process_started)]
        if gone:
            workers.forget(conn, gone)
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
                handed_back = workers.release(conn, broker.worker_id)
                workers.unregister(conn, broker.worker_id)
            logger.info("event=worker_stopped worker_id=%s handed_back_queues=%s",
                        broker.worker_id, handed_back)
        except Exception:
            logger.warning("event=worker_stop_failed worker_id=%s", broker.worker_id,
                           exc_info=True)
        broker.close_pool()
