"""Each attempt, from start to outcome: tenant context, the job's transaction, one decision.

Before the actor runs: a job whose tenant is unknown or inactive, or that needs a tenant
and has none, is dead-lettered without running; a rate-limited job that could not start
right after its claim is handed back; otherwise the job's context (a lazy tenant session)
is set. After it: the outcome is decided here and only here (``app.broker.outcome``):

* returned, used its session: the completion commits with the actor's writes (one round
  trip), or the lease was lost and nothing commits;
* returned, no session: completed, group-committed with the result;
* raised (or the commit failed, or the result cannot be stored): rolled back, then retried
  with backoff or dead-lettered, and the actor's ``on_failure`` hook runs.

The consumer's ack writes the outcome to the row; this middleware logs and counts it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from dramatiq import Middleware
from dramatiq.asyncio import get_event_loop_thread
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.broker.broker import BROKER_POOL_SIZE
from app.broker.message import JobMessage
from app.db.engine import actor_engine, mark_reset, raw_connection, reset_in_commit
from app.jobs import events, metrics
from app.jobs.context import JobContext, _current, allow_sessions_on_loop, open_job_session
from app.jobs.errors import PoisonValue
from app.jobs.hooks import FailedAttempt, describe
from app.jobs.outcome import (
    Completed,
    Dead,
    HandBack,
    LeaseLost,
    Outcome,
    RetryLater,
    after_failure,
    check_json,
)
from app.store import actor, workers

logger = logging.getLogger(__name__)


class _StoredResultsWarning(logging.Filter):
    """Drop dramatiq's per-job "no Results middleware, value discarded" warning: it is wrong
    here (a job's JSON return value is stored as its result)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and "Results middleware" in record.msg)


class _NoInputValues(logging.Filter):
    """dramatiq logs a failed job's exception with its traceback; a pydantic validation
    error prints every input value it refused (payload data), so it is logged by location
    and message only, as ``last_error`` stores it."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ == "ValidationError":
            record.msg = f"{record.getMessage()} {describe(exc)}"
            record.args = ()
            record.exc_info = None
        return True


class JobLifecycle(Middleware):
    def __init__(
        self, *, pool_size: int = 10, metrics_port: int = 0, happy_path_level: str = "DEBUG"
    ) -> None:
        self._pool_size = max(1, pool_size - BROKER_POOL_SIZE)
        self.metrics_port = metrics_port
        events.set_happy_path_level(happy_path_level)

    def engine(self) -> Engine:
        return actor_engine(self._pool_size)

    # -- worker lifetime ---------------------------------------------------------------------

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        """Open the connections the first jobs will use now, not in their first attempt.

        A process's first jobs would otherwise open their actor connections while running,
        tens of milliseconds each: visible in their latency, and in the spacing of calls a
        rate-limited actor makes.
        """
        threads = getattr(worker, "worker_threads", 1)
        _size_session_threads(threads)
        allow_sessions_on_loop(self._pool_size >= threads)
        wanted = min(threads, self._pool_size)
        try:
            engine = self.engine()
            held = [engine.connect() for _ in range(wanted)]
            for conn in held:
                conn.close()
            with broker.jobs_pool.connection():
                pass
        except Exception:
            logger.warning("event=warm_up_failed", exc_info=True)

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        thread_log = logging.getLogger("dramatiq.worker.WorkerThread")
        thread_log.addFilter(_StoredResultsWarning())
        thread_log.addFilter(_NoInputValues())
        port = metrics.serve(self.metrics_port)
        if port is None:
            return
        with broker.jobs_pool.connection() as conn:
            workers.set_metrics_port(conn, broker.worker_id, port)
        logger.info("event=metrics_serving worker_id=%s port=%s", broker.worker_id, port)

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        metrics.stop_serving()

    # -- one attempt ---------------------------------------------------------------------------

    def before_process_message(self, broker: Any, message: JobMessage) -> None:
        message.started_at = time.perf_counter()
        message.began = datetime.now(UTC)
        refusal = self._refusal(broker, message)
        if refusal is not None:
            message.outcome = refusal
            message.fail()  # dramatiq does not call the actor of a failed message
            self._report(message, refusal, None)
            return
        events.record("active", message_id=message.message_id, actor=message.actor_name,
                      queue=message.queue_name, tenant=message.tenant_id,
                      attempt=message.attempt)
        message.context_token = _current.set(JobContext(message, self.engine(), broker))

    def _refusal(self, broker: Any, message: JobMessage) -> Outcome | None:
        if message.tenant_status == "unknown":
            return Dead(f"TenantUnavailable: unknown tenant {message.tenant_id}")
        if message.tenant_status != "ok":
            return Dead(f"TenantUnavailable: tenant {message.tenant_id} is inactive")
        options = broker.get_actor(message.actor_name).options
        if message.tenant_id is None and not options.get("tenant_free", False):
            return Dead(f"TenantMissing: actor {message.actor_name!r} is not tenant_free and "
                        "the job has no tenant")
        limits = broker.queue_limits.get(message.queue_name)
        if (limits is not None and (limits.rate or limits.queue_rate)
                and time.monotonic() - message.claimed_at > broker.rate_slack):
            return HandBack("could not start within its rate window")
        return None

    def after_process_message(
        self, broker: Any, message: JobMessage, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        token = message.context_token
        ctx: JobContext | None = None
        if token is not None:
            ctx = token.var.get()
            _current.reset(token)
            message.context_token = None
        if message.outcome is not None:  # decided before the actor ran
            return
        outcome = self._decide(broker, message, ctx, result, exception)
        message.outcome = outcome
        self._report(message, outcome, exception)

    def after_skip_message(self, broker: Any, message: JobMessage) -> None:
        """A middleware skipped the job (e.g. AgeLimit): dead if it failed it, else done."""
        if message.outcome is None:
            message.outcome = (Dead("skipped by a middleware (e.g. its max_age passed)")
                               if message.failed else Completed())
            self._report(message, message.outcome, None)

    def _decide(
        self, broker: Any, message: JobMessage, ctx: JobContext | None, result: Any,
        exception: BaseException | None,
    ) -> Outcome:
        failure = exception
        if failure is None and result is not None:
            try:
                check_json(result, "the job's result")
            except PoisonValue as exc:
                failure = exc
        session = ctx.opened_session if ctx is not None else None
        if failure is None:
            if session is None:
                return Completed(result)
            try:
                conn = raw_connection(session)
                reset = reset_in_commit(conn)
                actor.complete_and_commit(conn, message.message_id, message.lease, result,
                                          message.began, reset=reset)
                if reset:
                    mark_reset(conn)
                return Completed(result, in_transaction=True)
            except Exception as exc:
                if actor.is_lease_lost(exc):
                    logger.warning("event=lease_lost message_id=%s actor=%s tenant=%s",
                                   message.message_id, message.actor_name, message.tenant_id)
                    return LeaseLost()
                # Not committed (e.g. the connection was lost): never acked as done.
                failure = exc
            finally:
                _discard(session)
        elif session is not None:
            _discard(session)
        options = broker.get_actor(message.actor_name).options
        outcome = after_failure(options, message.queue_name, message.attempt,
                                message.max_attempts, failure)
        hook = options.get("on_failure")
        if hook is not None and ctx is not None:
            self._on_failure(hook, ctx, message, failure, outcome)
        return outcome

    @staticmethod
    def _on_failure(
        hook: Any, ctx: JobContext, message: JobMessage, exc: BaseException,
        outcome: RetryLater | Dead,
    ) -> None:
        """Run the actor's hook in a transaction of its own, after the attempt rolled back."""
        attempt = FailedAttempt(
            message_id=message.message_id, actor_name=message.actor_name,
            args=tuple(message.args), kwargs=dict(message.kwargs), attempt=message.attempt,
            max_attempts=message.max_attempts, error=describe(exc),
            final=isinstance(outcome, Dead),
        )
        try:
            session = open_job_session(ctx.engine, message)
            try:
                hook(session, attempt)
                session.commit()
            finally:
                _discard(session)
        except Exception:
            logger.warning("event=on_failure_hook_failed message_id=%s actor=%s tenant=%s",
                           message.message_id, message.actor_name, message.tenant_id,
                           exc_info=True)

    @staticmethod
    def _report(message: JobMessage, outcome: Outcome, exception: BaseException | None) -> None:
        started = message.started_at
        duration = time.perf_counter() - started if started is not None else None
        fields: dict[str, Any] = {
            "message_id": message.message_id, "actor": message.actor_name,
            "queue": message.queue_name, "tenant": message.tenant_id,
            "attempt": message.attempt,
        }
        match outcome:
            case Completed():
                events.record("completed", duration=duration, **fields)
                if duration is not None:
                    metrics.observe(message.queue_name, message.actor_name, "completed",
                                    duration)
            case RetryLater(delay=delay, error=error):
                events.record("failed", duration=duration, error=error, **fields)
                events.record("retrying", delay=f"{delay:.3f}", **fields)
                if duration is not None:
                    metrics.observe(message.queue_name, message.actor_name, "failed", duration)
            case Dead(error=error):
                if exception is not None:
                    events.record("failed", duration=duration, error=error, **fields)
                events.record("dead", error=error, **fields)
            case HandBack(reason=reason):
                logger.debug("event=handed_back message_id=%s reason=%r",
                             message.message_id, reason)
            case LeaseLost():
                pass  # the rescuer counted this job; the warning above says what happened


def _size_session_threads(threads: int) -> None:
    """Give dramatiq's event loop (``async def`` actors) one ``in_session`` thread per worker
    thread. Each in-flight async job holds a worker thread and runs at most one
    ``in_session`` at a time, so none waits for a thread while its connection is checked
    out: with asyncio's default (a few threads), jobs waiting for a pooled connection could
    take every thread from the jobs holding the connections, and none would finish."""
    loop_thread = get_event_loop_thread()
    if loop_thread is not None:
        loop_thread.loop.set_default_executor(ThreadPoolExecutor(
            max_workers=max(1, threads), thread_name_prefix="pgjobs-session"))


def _discard(session: Session) -> None:
    """Close the job's session, rolling back what did not commit; never raises.

    On a lost connection the rollback cannot run (the server rolled back already), so the
    connection is invalidated instead of being returned to the pool.
    """
    try:
        session.close()
    except Exception as exc:
        logger.warning("event=session_close_failed error=%r", type(exc).__name__)
        with contextlib.suppress(Exception):
            session.invalidate()
