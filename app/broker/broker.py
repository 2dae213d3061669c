"""``PostgresJobsBroker``: dramatiq-pg's broker with enqueue and consume replaced.

It keeps dramatiq-pg's table, state enum, wire format (the dramatiq message as JSON) and
NOTIFY channels, and adds: enqueue inside the caller's transaction, batched claims with
``FOR UPDATE SKIP LOCKED``, delayed rows that wait in the table, group-committed
completions, leases with rescue, and no duplicate-id upsert (a known id is a no-op).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from dramatiq import Message, Middleware
from dramatiq.common import dq_name
from dramatiq_pg import PostgresBroker
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from app.broker import queries
from app.broker.completions import GroupCompleter
from app.broker.connections import as_dramatiq_errors, make_pool, run_idempotent
from app.broker.consumer import PostgresJobsConsumer
from app.broker.limits import Limits
from app.broker.message import JobMessage

logger = logging.getLogger(__name__)


class PostgresJobsBroker(PostgresBroker):
    def __init__(
        self,
        *,
        url: str,
        middleware: list[Middleware] | None = None,
        claim_batch: int = 50,
        poll_seconds: float = 5.0,
        pool_size: int = 4,
    ) -> None:
        # dramatiq-pg's own psycopg2 pool opens nothing until used; we keep it so its
        # helpers (purge, its results backend) still work against the same table.
        super().__init__(url=url, results=False, middleware=middleware)
        self.url = url
        self.claim_batch = claim_batch
        self.poll_seconds = poll_seconds
        self._pool_size = pool_size
        self._jobs_pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._worker_id: uuid.UUID | None = None
        self._worker_pid = 0
        self.completions = GroupCompleter(self._complete_many)
        #: Set when this process's worker starts shutting down: consumers stop claiming.
        self.stopping = threading.Event()
        #: Queues claimed under limits (filled by the limits middleware as actors declare).
        self.queue_limits: dict[str, Limits] = {}

    # -- identity and connections -----------------------------------------------------------

    @property
    def worker_id(self) -> uuid.UUID:
        """This process's lease id (a forked child gets its own)."""
        if self._worker_id is None or self._worker_pid != os.getpid():
            self._worker_id, self._worker_pid = uuid.uuid4(), os.getpid()
        return self._worker_id

    @property
    def jobs_pool(self) -> ConnectionPool:
        with self._pool_lock:
            if self._jobs_pool is None:
                self._jobs_pool = make_pool(self.url, max_size=self._pool_size, name="pgjobs")
                self._jobs_pool.open()
            return self._jobs_pool

    def connect_to(self, url: str) -> None:
        """Point the broker at another database (tests give each test its own)."""
        self.close_pool()
        self.url = url

    def close_pool(self) -> None:
        with self._pool_lock:
            if self._jobs_pool is not None:
                self._jobs_pool.close()
                self._jobs_pool = None

    def close(self) -> None:
        self.close_pool()
        super().close()

    # -- queues --------------------------------------------------------------------------

    def declare_queue(self, queue_name: str) -> None:
        # Delayed rows are promoted by the queue's own consumer, so no '.DQ' consumer.
        if queue_name not in self.queues:
            self.emit_before("declare_queue", queue_name)
            self.queues[queue_name] = True
            self.emit_after("declare_queue", queue_name)

    def consume(
        self, queue_name: str, prefetch: int = 1, timeout: int = 30000
    ) -> PostgresJobsConsumer:
        return PostgresJobsConsumer(self, queue_name, prefetch, timeout)

    # -- enqueue -------------------------------------------------------------------------

    @as_dramatiq_errors
    def enqueue(self, message: Message, *, delay: int | None = None) -> Message:
        """``actor.send()``: its own transaction through the broker's pool."""
        with self.jobs_pool.connection() as conn:
            self.enqueue_on(conn, [(message, delay)])
        return message

    def enqueue_on(
        self, conn: psycopg.Connection, items: Sequence[tuple[Message, int | None]]
    ) -> set[str]:
        """Insert messages (delay in ms) on ``conn``, in whatever transaction it is in.

        Returns the ids actually inserted; the others already existed (duplicate id or
        unique key) and were left untouched. NOTIFY is delivered at commit.
        """
        for message, delay in items:
            self.emit_before("enqueue", message, delay)
        params: dict[str, list[Any]] = {k: [] for k in (
            "ids", "queues", "messages", "tenants", "actors", "delays", "priorities", "keys",
            "max_attempts", "limit_keys",
        )}
        for message, delay in items:
            opts = message.options
            params["ids"].append(message.message_id)
            params["queues"].append(dq_name(message.queue_name) if delay else message.queue_name)
            params["messages"].append(Jsonb(message.asdict()))
            params["tenants"].append(opts.get("tenant_id"))
            params["actors"].append(message.actor_name)
            params["delays"].append(delay / 1000 if delay else None)
            params["priorities"].append(opts.get("priority", 0))
            params["keys"].append(opts.get("unique_key"))
            params["max_attempts"].append(opts.get("max_attempts"))
            params["limit_keys"].append(opts.get("limit_key"))
        inserted = {str(row[0]) for row in conn.execute(queries.INSERT, params)}
        for message, delay in items:
            if message.message_id in inserted:
                self.emit_after("enqueue", message, delay)
        return inserted

    # -- outcomes (called from worker threads) --------------------------------------------

    def _complete_many(self, ids: list[uuid.UUID], results: list[Jsonb | None]) -> None:
        run_idempotent(self.jobs_pool, queries.COMPLETE_MANY,
                       {"ids": ids, "results": results, "worker": self.worker_id})

    def retry(self, message: JobMessage, delayed_queue: str) -> None:
        run_idempotent(self.jobs_pool, queries.RETRY, {
            "id": message.message_id, "queue": delayed_queue,
            "delay": message.retry_delay, "error": message.error, "worker": self.worker_id,
        })

    def reject(self, message: JobMessage) -> None:
        error = message.error
        if error is None and message.actor_name not in self.actors:
            error = f"ActorNotFound: no actor named {message.actor_name!r} on this worker"
        run_idempotent(self.jobs_pool, queries.REJECT, {
            "id": message.message_id, "error": error or "rejected", "worker": self.worker_id,
        })

    def reject_malformed(self, message_id: uuid.UUID, exc: Exception) -> None:
        logger.error("event=dead message_id=%s error=%r reason=malformed_message", message_id, exc)
        run_idempotent(self.jobs_pool, queries.REJECT, {
            "id": message_id, "worker": self.worker_id, "error": f"malformed message: {exc}",
        })

    def requeue_ids(self, ids: Iterable[str | uuid.UUID]) -> None:
        run_idempotent(self.jobs_pool, queries.REQUEUE,
                       {"ids": list(ids), "worker": self.worker_id})
