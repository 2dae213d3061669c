"""``PostgresJobsBroker``: dramatiq-pg's broker with enqueue, consume and acks replaced.

It keeps dramatiq-pg's table, state enum, wire format (the dramatiq message as JSON) and
NOTIFY channels, and adds: enqueue inside the caller's transaction, batched claims with
``FOR UPDATE SKIP LOCKED``, delayed rows that wait in the table, group-committed
completions, leases with rescue, and no duplicate-id upsert (a known id is a no-op).

Connections per worker process, whatever the number of queues: one listening connection
(the notifier), one claim connection (shared by the consumers, also holding this process's
leader lock), and a small pool for outcomes and heartbeats, all as ``app_worker``; actor
sessions have their own pool as ``app_actor`` (see ``app.jobs.context``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import psycopg
from dramatiq import Message, Middleware
from dramatiq.middleware import MiddlewareError
from dramatiq_pg import PostgresBroker
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from app.broker.completions import GroupCompleter
from app.broker.connections import as_dramatiq_errors, run_idempotent
from app.broker.consumer import PostgresJobsConsumer
from app.broker.limits import Limits
from app.broker.message import JobMessage
from app.broker.notifier import Notifier
from app.broker.outcome import Completed, Dead, HandBack, LeaseLost, RetryLater
from app.db.connections import connect, make_pool, session_url
from app.store import claim, outcomes

logger = logging.getLogger(__name__)

#: Connections of the broker's own pool (outcomes, heartbeats, maintenance, progress).
BROKER_POOL_SIZE = 2

#: ``actor.send()`` is routed by the job layer (a running job's session, the caller's tenant
#: session, or the system path): ``send(message, delay_ms)``.
Sender = Callable[[Message, int | None], None]


class PostgresJobsBroker(PostgresBroker):
    def __init__(
        self,
        *,
        url: str,
        middleware: list[Middleware] | None = None,
        claim_batch: int = 200,
        sweep_seconds: float = 1.0,
        floors_after: float = 0.002,
        poll_seconds: float = 5.0,
        rate_slack: float = 0.05,
        rate_margin: float = 0.05,
    ) -> None:
        self._hooks: dict[str, list[Callable[..., Any]]] = {}
        # dramatiq-pg's own psycopg2 pool opens nothing until used; we keep it so its
        # helpers (purge, its results backend) still work against the same table.
        super().__init__(url=url, results=False, middleware=middleware)
        self.url = url
        self.claim_batch = claim_batch
        self.sweep_seconds = sweep_seconds
        self.floors_after = floors_after
        self.poll_seconds = poll_seconds
        #: A rate-limited job must start within this many seconds of its claim (else it is
        #: handed back); rate windows are that much longer, so starts never exceed the rate,
        #: and longer again by ``rate_margin``, so what the actor calls a few milliseconds
        #: after its start (a provider's API) does not either.
        self.rate_slack = rate_slack
        self.rate_margin = rate_margin
        self._pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._claim_conn: psycopg.Connection[Any] | None = None
        self._claim_lock = threading.Lock()
        #: Bumped whenever the claim connection is replaced: session state (a leader lock)
        #: held on the old one is gone.
        self.claim_generation = 0
        self.notifier = Notifier(url)
        self._worker_id: uuid.UUID | None = None
        self.completions = GroupCompleter(self._complete_many, self._poisoned)
        #: Set when this process's worker starts shutting down: consumers stop claiming.
        self.stopping = threading.Event()
        #: Queues claimed under limits (filled as actors are declared).
        self.queue_limits: dict[str, Limits] = {}
        self.sender: Sender | None = None
        os.register_at_fork(after_in_child=self._forget_worker_id)

    # -- middleware hooks ------------------------------------------------------------------

    def add_middleware(self, middleware: Middleware, **kwargs: Any) -> None:
        super().add_middleware(middleware, **kwargs)
        self._hooks.clear()

    def _hooks_for(self, name: str) -> list[Callable[..., Any]]:
        """The middleware that implement hook ``name``, in order (a no-op base method is a
        call per middleware and per job for nothing: several microseconds a job)."""
        hooks = self._hooks.get(name)
        if hooks is None:
            base = getattr(Middleware, name, None)
            hooks = self._hooks[name] = [
                getattr(m, name) for m in self.middleware
                if getattr(type(m), name, None) is not base
            ]
        return hooks

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        for hook in self._hooks_for("before_" + signal):
            try:
                hook(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self.logger.critical("Unexpected failure in before_%s of %r.", signal,
                                     getattr(hook, "__self__", hook), exc_info=True)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        for hook in reversed(self._hooks_for("after_" + signal)):
            try:
                hook(self, *args, **kwargs)
            except Exception:
                self.logger.critical("Unexpected failure in after_%s of %r.", signal,
                                     getattr(hook, "__self__", hook), exc_info=True)

    # -- identity and connections -----------------------------------------------------------

    @property
    def worker_id(self) -> uuid.UUID:
        """This process's lease id (a forked child gets its own)."""
        if self._worker_id is None:
            self._worker_id = uuid.uuid4()
        return self._worker_id

    def _forget_worker_id(self) -> None:
        self._worker_id = None

    @property
    def jobs_pool(self) -> ConnectionPool:
        """The broker's own pool (``pool`` is dramatiq-pg's psycopg2 pool, unused here)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = make_pool(self.url, max_size=BROKER_POOL_SIZE, name="pgjobs")
                self._pool.open()
            return self._pool

    @contextlib.contextmanager
    def claim_connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The process's claim connection, one user at a time; replaced after a failure."""
        with self._claim_lock:
            conn = self._claim_conn
            if conn is None or conn.closed or conn.broken:
                conn = self._claim_conn = connect(
                    session_url(self.url, "the claim connection (and the maintenance lock)"),
                    name="pgjobs-consumer")
                claim.configure_session(conn)
                self.claim_generation += 1
            try:
                yield conn
            except psycopg.Error:
                if conn.broken or conn.closed:
                    self._claim_conn = None
                raise

    def connect_to(self, url: str) -> None:
        """Point the broker at another database (tests give each test its own)."""
        self.close_pool()
        self.url = url
        self.notifier = Notifier(url)

    def close_pool(self) -> None:
        self.notifier.stop()
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
        with self._claim_lock:
            if self._claim_conn is not None:
                with contextlib.suppress(Exception):
                    self._claim_conn.close()
                self._claim_conn = None

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

    def limit_params(self, limits: Limits) -> dict[str, Any]:
        """``limits`` as the limited claim's parameters, rate windows widened by the slack
        and the margin."""
        params = limits.params()
        margin = self.rate_margin if limits.rate_margin is None else limits.rate_margin
        for key in ("key_rate_seconds", "queue_rate_seconds"):
            if params[key] is not None:
                params[key] += self.rate_slack + margin
        return params

    # -- enqueue -------------------------------------------------------------------------

    @as_dramatiq_errors
    def enqueue(self, message: Message, *, delay: int | None = None) -> Message:
        """``actor.send()``: joins the running job's or the caller's tenant transaction."""
        if self.sender is None:
            raise RuntimeError("the broker was built without the job layer (app.jobs.setup)")
        self.sender(message, delay)
        return message

    # -- outcomes (called from worker threads) --------------------------------------------

    def apply_outcome(self, message: JobMessage, delayed_queue: str) -> None:
        """Write what the lifecycle decided for ``message`` to its row."""
        outcome = message.outcome
        if outcome is None:
            # The lifecycle never ran (dramatiq refused the message before it, e.g. for an
            # actor this worker does not have): dramatiq's failed flag says what it meant.
            outcome = Dead(self._undelivered(message)) if message.failed else Completed()
        worker = self.worker_id
        job = message.message_id
        match outcome:
            case Completed(in_transaction=True) | LeaseLost():
                pass
            case Completed(result=result):
                self.completions.add(job, result, message.began, message.claimed_in_db)
            case RetryLater(delay=delay, error=error):
                run_idempotent(self.jobs_pool, lambda c: outcomes.retry(
                    c, job, delayed_queue, delay, error, worker, message.began))
            case Dead(error=error):
                run_idempotent(self.jobs_pool, lambda c: outcomes.dead(
                    c, job, error, worker, message.began))
            case HandBack():
                self.hand_back([job])

    def _undelivered(self, message: JobMessage) -> str:
        if message.actor_name not in self.actors:
            return f"ActorNotFound: no actor named {message.actor_name!r} on this worker"
        return "rejected before it ran"

    def _complete_many(self, ids: list[uuid.UUID], results: list[Jsonb | None],
                       starts: list[datetime | None], since: datetime | None) -> None:
        worker = self.worker_id
        run_idempotent(self.jobs_pool, lambda c: outcomes.complete_many(
            c, ids, results, starts, worker, since))

    def _poisoned(self, message_id: uuid.UUID, exc: BaseException) -> None:
        error = f"PoisonValue: the database refused the job's result: {exc}"[:4000]
        logger.error("event=dead message_id=%s reason=result_refused", message_id)
        worker = self.worker_id
        run_idempotent(self.jobs_pool, lambda c: outcomes.dead(c, message_id, error, worker))

    def reject_malformed(self, message_id: uuid.UUID, exc: Exception) -> None:
        logger.error("event=dead message_id=%s reason=malformed_message error=%r",
                     message_id, str(exc))
        worker = self.worker_id
        run_idempotent(self.jobs_pool, lambda c: outcomes.dead(
            c, message_id, f"malformed message: {exc}", worker))

    def hand_back(self, ids: Iterable[str | uuid.UUID]) -> None:
        worker, jobs = self.worker_id, list(ids)
        run_idempotent(self.jobs_pool, lambda c: outcomes.hand_back(c, jobs, worker))
