"""Claiming from ``dramatiq.queue``: batches, SKIP LOCKED, LISTEN to wake, due rows only.

Unlike dramatiq-pg's consumer, nothing is read into memory beyond one claimed batch, no
advisory locks are held, and delayed rows stay in the table until their eta: the consumer
moves due ones from ``<queue>.DQ`` into the queue with one indexed statement.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from dramatiq.broker import Consumer
from dramatiq.common import dq_name
from psycopg import sql

from app.broker import limits, queries
from app.broker.connections import as_dramatiq_errors, connect
from app.broker.message import JobMessage, parse_message

if TYPE_CHECKING:
    from app.broker.broker import PostgresJobsBroker

logger = logging.getLogger(__name__)
_claim_sequence = itertools.count()


class PostgresJobsConsumer(Consumer):
    def __init__(
        self, broker: PostgresJobsBroker, queue_name: str, prefetch: int, timeout: int
    ) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self.delayed_name = dq_name(queue_name)
        # In flight per consumer: dramatiq's prefetch (2 x threads) or the claim batch, if
        # larger. Claims wait until half of it is free, so each claim fetches a real batch
        # instead of one row per freed slot.
        self.prefetch = max(1, prefetch, broker.claim_batch)
        self.low_water = max(1, self.prefetch // 2)
        self.timeout = timeout / 1000
        self.buffer: deque[JobMessage] = deque()
        self.outstanding = 0
        self.capacity = threading.Condition()
        self.next_due = 0.0  # when the next delayed row may be due (monotonic seconds)
        # A rate- or concurrency-limited queue claims only what its threads (dramatiq's
        # prefetch / 2) can start now: a claimed job holds its key's concurrency slot and
        # counts in its rate window even while it waits here.
        self.limits = broker.queue_limits.get(queue_name)
        self.threads = max(1, prefetch // 2)
        self._claim_conn: psycopg.Connection | None = None
        self._listen_conn: psycopg.Connection | None = None

    # -- the consumer thread -------------------------------------------------------------

    @as_dramatiq_errors
    def __next__(self) -> JobMessage | None:
        if self.buffer:
            return self._hand_out()
        with self.capacity:
            if self.broker.stopping.is_set():
                # Shutting down: claim nothing new; what is claimed but unstarted goes back.
                self.capacity.wait(self.timeout)
                return None
            free = self.prefetch - self.outstanding
            if free < self.low_water:
                # Most prefetched messages are still being worked on: wait for acks.
                self.capacity.wait(self.timeout)
                return None
        self._promote_due()
        self._claim(free)
        if self.buffer:
            return self._hand_out()
        self._wait_for_work()
        return None

    def _hand_out(self) -> JobMessage:
        with self.capacity:
            self.outstanding += 1
        return self.buffer.popleft()

    def _conn(self) -> psycopg.Connection:
        if self._claim_conn is None or self._claim_conn.closed:
            self._claim_conn = connect(self.broker.url, application_name="pgjobs-consumer")
        return self._claim_conn

    def _claim(self, limit: int) -> None:
        rows: list[tuple[Any, ...]]
        if self.limits is not None:
            rows = self._claim_limited(limit)
        else:
            rows = self._conn().execute(
                queries.CLAIM,
                {"queue": self.queue_name, "limit": limit, "worker": self.broker.worker_id},
            ).fetchall()
        # RETURNING has no order: restore the claim order (priority, then eta).
        rows.sort(key=lambda r: (-r[5], r[6]))
        malformed = []
        for message_id, body, tenant_id, attempts, max_attempts, priority, eta, *_ in rows:
            try:
                message = parse_message(body, message_id, self.queue_name)
            except ValueError as exc:  # malformed row: dead-letter it, never block the queue
                malformed.append((message_id, exc))
                continue
            job = JobMessage(
                message, tenant_id=tenant_id, attempt=attempts, max_attempts=max_attempts
            )
            # dramatiq's worker threads take prefetched messages from a heap: keep the claim
            # order there too (priority, then eta, then claim sequence).
            job.order = (-priority, eta, next(_claim_sequence))
            self.buffer.append(job)
        # Only once the good rows are buffered: if this fails, they are still handed back.
        for bad_id, reason in malformed:
            self.broker.reject_malformed(bad_id, reason)

    def _claim_limited(self, limit: int) -> list[tuple[Any, ...]]:
        assert self.limits is not None
        if self.limits.capped:
            limit = min(limit, self.threads - self.outstanding)
            if limit <= 0:
                return []  # every thread is busy: a finishing job's NOTIFY wakes us
        rows, wait = limits.claim(
            self._conn(), self.queue_name, limit, self.broker.worker_id, self.limits
        )
        if wait is not None:
            # Over the rate: sleep until the next slot opens (the promotion timer wakes us).
            self.next_due = min(self.next_due, time.monotonic() + max(0.0, wait) + 0.001)
        return rows

    def _promote_due(self) -> None:
        if time.monotonic() < self.next_due:
            return
        moved, next_eta = self._conn().execute(
            queries.PROMOTE,
            {"queue": self.queue_name, "delayed": self.delayed_name, "limit": 1000},
        ).fetchone() or (0, None)
        if moved >= 1000:
            self.next_due = 0.0
        elif next_eta is None:
            self.next_due = time.monotonic() + self.broker.poll_seconds
        else:
            wait = (next_eta - datetime.now(next_eta.tzinfo)).total_seconds()
            self.next_due = time.monotonic() + max(0.0, min(wait, self.broker.poll_seconds))

    def _wait_for_work(self) -> None:
        """Block on LISTEN until a NOTIFY, the next delayed eta, or the poll timeout."""
        conn = self._listen()
        timeout = max(0.0, min(self.timeout, self.next_due - time.monotonic()))
        for notify in conn.notifies(timeout=timeout, stop_after=1):
            if notify.channel.endswith(".DQ.enqueue"):
                self.next_due = 0.0

    def _listen(self) -> psycopg.Connection:
        if self._listen_conn is None or self._listen_conn.closed:
            conn = connect(self.broker.url, application_name="pgjobs-listener")
            for queue in (self.queue_name, self.delayed_name):
                channel = sql.Identifier(f"dramatiq.{queue}.enqueue")
                conn.execute(sql.SQL("LISTEN {}").format(channel))
            self._listen_conn = conn
            self.next_due = 0.0  # notifies may have been missed while not listening
        return self._listen_conn

    # -- worker threads ---------------------------------------------------------------------

    def _release(self, message: JobMessage) -> None:
        """Free the message's prefetch slot, once (dramatiq retries a failed ack)."""
        if message.released:
            return
        message.released = True
        with self.capacity:
            self.outstanding -= 1
            if self.prefetch - self.outstanding >= self.low_water:
                self.capacity.notify()

    @as_dramatiq_errors
    def ack(self, message: JobMessage) -> None:
        if message.retry_delay is not None:
            self.broker.retry(message, self.delayed_name)
        elif not message.completed:
            self.broker.completions.add(message.message_id, message.result)
        self._release(message)

    @as_dramatiq_errors
    def nack(self, message: JobMessage) -> None:
        self.broker.reject(message)
        self._release(message)

    @as_dramatiq_errors
    def requeue(self, messages: Iterable[Any]) -> None:
        ids = [m.message_id for m in messages] + [m.message_id for m in self.buffer]
        self.buffer.clear()
        if ids:
            self.broker.requeue_ids(ids)

    def close(self) -> None:
        try:
            if self.buffer:
                self.requeue([])
        except Exception:
            logger.warning("event=requeue_failed queue=%s", self.queue_name, exc_info=True)
        for conn in (self._claim_conn, self._listen_conn):
            if conn is not None:
                conn.close()
        self._claim_conn = self._listen_conn = None
