"""Claiming from the job store: batches, SKIP LOCKED, woken by the notifier, due rows only.

Unlike dramatiq-pg's consumer, nothing is read into memory beyond one claimed batch, no
advisory locks are held, delayed rows stay in the table until their eta, and a consumer
holds no connection of its own: claims go through the process's one claim connection and
wake-ups come from the process's one notifier.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dramatiq.broker import Consumer
from dramatiq.common import dq_name

from app.broker.connections import as_dramatiq_errors
from app.broker.message import JobMessage, parse_message
from app.store import claim
from app.store.rows import Claimed

if TYPE_CHECKING:
    from app.broker.broker import PostgresJobsBroker

logger = logging.getLogger(__name__)
_claim_sequence = itertools.count()

#: At most this much work (at the measured completion rate) is claimed ahead per consumer.
HOLD_SECONDS = 0.05

#: A claim from the oldest ready row (not from the floors) at least every
#: ``JOBS_CLAIM_SWEEP_SECONDS``, and at most ``SWEEP_SHARE`` of the time: it finds rows that
#: became ready behind a floor without a notification saying so.
SWEEP_SHARE = 0.05
#: Floors are used once a claim from the oldest row takes longer than
#: ``JOBS_CLAIM_FLOORS_AFTER_MS`` plus this per row it claimed: dead entries to walk.
#: Otherwise the plain claim is the cheaper one (its plan is simpler).
SLOW_CLAIM_PER_ROW = 0.00002
#: Beyond this many priority bands in use, claims read from the oldest row.
MAX_BANDS = 8

#: Delayed rows moved into their queue per statement.
PROMOTE_BATCH = 1000


class PostgresJobsConsumer(Consumer):
    def __init__(
        self, broker: PostgresJobsBroker, queue_name: str, prefetch: int, timeout: int
    ) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self.delayed_name = dq_name(queue_name)
        # In flight per consumer: from dramatiq's prefetch (2 x threads) up to the claim
        # batch, as the measured pace asks (see _adapt). Claims wait until half of it is
        # free, so each claim fetches a real batch instead of one row per freed slot.
        self.base_prefetch = max(1, prefetch)
        self.max_prefetch = max(self.base_prefetch, broker.claim_batch)
        self.prefetch = self.base_prefetch
        self.low_water = max(1, self.prefetch // 2)
        self.acks = 0
        self.window_start = time.monotonic()
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
        #: Claim floors: per priority band, the eta claims start from (see claim.CLAIM_FROM).
        self.floors: dict[int, datetime] = {}
        self.sweep_due = 0.0
        self.use_floors = False  # set while claims from the oldest row are slow
        self.wakeup = broker.notifier.subscribe(queue_name)

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
            self._adapt()
            free = self.prefetch - self.outstanding
            if free < self.low_water:
                # Most prefetched messages are still being worked on: wait for acks.
                self.capacity.wait(self.timeout)
                return None
        # Cleared before claiming: a NOTIFY arriving from now on wakes the wait below.
        self.wakeup.event.clear()
        self._promote_due()
        self._claim(free)
        if self.buffer:
            return self._hand_out()
        timeout = max(0.0, min(self.timeout, self.next_due - time.monotonic()))
        self.wakeup.event.wait(timeout)
        return None

    def _adapt(self) -> None:
        """Size the in-flight window to the pace: what this process holds is at most
        ``HOLD_SECONDS`` of work at its current completion rate. Fast jobs get batches up
        to the claim batch (fewer round trips a job); slow jobs get dramatiq's 2 x threads,
        so one process does not hoard what another's idle threads could run. Called with
        ``capacity`` held."""
        now = time.monotonic()
        elapsed = now - self.window_start
        if elapsed < 0.1:
            return
        rate = self.acks / elapsed
        self.acks, self.window_start = 0, now
        wanted = math.ceil(rate * HOLD_SECONDS)
        self.prefetch = min(self.max_prefetch, max(self.base_prefetch, wanted))
        self.low_water = max(1, self.prefetch // 2)

    def _hand_out(self) -> JobMessage:
        with self.capacity:
            self.outstanding += 1
        return self.buffer.popleft()

    def _claim(self, limit: int) -> None:
        worker = self.broker.worker_id
        with self.broker.claim_connection() as conn:
            if self.limits is not None:
                rows = self._claim_limited(conn, limit, worker)
            else:
                rows = self._claim_from_floors(conn, limit, worker)
        # RETURNING has no order: restore the claim order (priority, then eta).
        rows.sort(key=lambda r: (-r.priority, r.eta))
        malformed = []
        for row in rows:
            try:
                message = parse_message(row.message, row.message_id, self.queue_name)
            except ValueError as exc:  # malformed row: dead-letter it, never block the queue
                malformed.append((row.message_id, exc))
                continue
            job = JobMessage(message, row)
            # dramatiq's worker threads take prefetched messages from a heap: keep the claim
            # order there too (priority, then eta, then claim sequence).
            job.order = (-row.priority, row.eta, next(_claim_sequence))
            self.buffer.append(job)
        # Only once the good rows are buffered: if this fails, they are still handed back.
        for bad_id, reason in malformed:
            self.broker.reject_malformed(bad_id, reason)

    def _claim_from_floors(self, conn: Any, limit: int, worker: Any) -> list[Claimed]:
        anywhere, oldest = self.wakeup.take_hint()
        if anywhere:
            self.floors.clear()
        elif oldest is not None:
            # A millisecond lower: the epoch travelled as a float.
            self._lower_floors(datetime.fromtimestamp(oldest, UTC) - timedelta(milliseconds=1))
        started = time.monotonic()
        if (not self.use_floors or not self.floors or started >= self.sweep_due
                or len(self.floors) > MAX_BANDS):
            rows = claim.claim(conn, self.queue_name, limit, worker)
            if len(rows) >= limit or len(self.floors) > MAX_BANDS:
                # Rows may remain behind the old floors: start again from what it claimed.
                # (Fewer than asked means every visible row was claimed: floors stay valid.)
                self.floors.clear()
            took = time.monotonic() - started
            self.use_floors = took > self.broker.floors_after + SLOW_CLAIM_PER_ROW * len(rows)
            self.sweep_due = started + max(self.broker.sweep_seconds, took / SWEEP_SHARE)
        else:
            rows = claim.claim(conn, self.queue_name, limit, worker, self.floors)
        for row in rows:
            floor = self.floors.get(row.priority)
            if floor is None or row.eta > floor:
                self.floors[row.priority] = row.eta
        return rows

    def _lower_floors(self, eta: datetime) -> None:
        for priority, floor in self.floors.items():
            if eta < floor:
                self.floors[priority] = eta

    def _claim_limited(self, conn: Any, limit: int, worker: Any) -> list[Claimed]:
        assert self.limits is not None
        if self.limits.capped:
            limit = min(limit, self.threads - self.outstanding)
            if limit <= 0:
                return []  # every thread is busy: a finishing job's NOTIFY wakes us
        rows, wait = claim.claim_limited(
            conn, self.queue_name, limit, worker, self.broker.limit_params(self.limits)
        )
        if wait is not None:
            # Over the rate: sleep until the next slot opens (the promotion timer wakes us).
            self.next_due = min(self.next_due, time.monotonic() + max(0.0, wait) + 0.001)
        return rows

    def _promote_due(self) -> None:
        if self.wakeup.delayed:
            self.wakeup.delayed = False
            self.next_due = 0.0
        if time.monotonic() < self.next_due:
            return
        with self.broker.claim_connection() as conn:
            moved, oldest, next_eta = claim.promote(conn, self.queue_name, self.delayed_name,
                                                    PROMOTE_BATCH)
        if oldest is not None:
            self._lower_floors(oldest)  # promoted rows keep their (older) eta
        if moved >= PROMOTE_BATCH:
            self.next_due = 0.0
        elif next_eta is None:
            self.next_due = time.monotonic() + self.broker.poll_seconds
        else:
            wait = (next_eta - datetime.now(next_eta.tzinfo)).total_seconds()
            self.next_due = time.monotonic() + max(0.0, min(wait, self.broker.poll_seconds))

    # -- worker threads ---------------------------------------------------------------------

    def _release(self, message: JobMessage) -> None:
        """Free the message's prefetch slot, once (dramatiq retries a failed ack)."""
        if message.released:
            return
        message.released = True
        with self.capacity:
            self.outstanding -= 1
            self.acks += 1
            if self.prefetch - self.outstanding >= self.low_water:
                self.capacity.notify()
        if self.limits is not None:
            self.wakeup.event.set()  # a slot of the limited queue may be free now

    @as_dramatiq_errors
    def ack(self, message: JobMessage) -> None:
        self.broker.apply_outcome(message, self.delayed_name)
        self._release(message)

    nack = ack  # the outcome says what happened; dramatiq's failed flag adds nothing

    @as_dramatiq_errors
    def requeue(self, messages: Iterable[Any]) -> None:
        ids = [m.message_id for m in messages] + [m.message_id for m in self.buffer]
        self.buffer.clear()
        if ids:
            self.broker.hand_back(ids)

    def close(self) -> None:
        try:
            if self.buffer:
                self.requeue([])
        except Exception:
            logger.warning("event=requeue_failed queue=%s", self.queue_name, exc_info=True)
