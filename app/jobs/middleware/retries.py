"""Retries with exponential backoff from the queue policy; exhausted jobs become dead letters.

Replaces dramatiq's Retries, which re-enqueues a copy: here the same row goes back to its
queue's delayed side with a new eta, keeping its id, attempt count and last error.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dramatiq import Middleware
from dramatiq.errors import Retry

from app.broker.message import JobMessage
from app.jobs.errors import TenantUnavailable
from app.jobs.hooks import describe
from app.jobs.policies import backoff_seconds, max_attempts_for, policy_for


class JobRetries(Middleware):
    actor_options: ClassVar[set[str]] = {
        "max_attempts", "max_retries", "min_backoff", "max_backoff", "retry_when", "throws",
    }

    def after_process_message(
        self, broker: Any, message: JobMessage, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        exc = exception or message.commit_error
        if exc is None or message.failed:
            return
        actor = broker.get_actor(message.actor_name)
        options = actor.options
        policy = policy_for(message.queue_name)
        message.error = describe(exc)
        max_attempts = max_attempts_for(options, message.max_attempts or policy.max_attempts)
        throws = options.get("throws")
        retry_when = options.get("retry_when")
        if isinstance(exc, TenantUnavailable) or (throws and isinstance(exc, throws)):
            retry = False
        elif retry_when is not None:
            retry = bool(retry_when(message.attempt - 1, exc))
        else:
            retry = message.attempt < max_attempts
        # The events middleware logs the outcome (failed, then retrying or dead) once.
        if not retry:
            message.fail()
            return
        if isinstance(exc, Retry) and exc.delay is not None:
            delay = exc.delay / 1000
        else:
            delay = backoff_seconds(
                message.attempt,
                options.get("min_backoff", policy.min_backoff),
                options.get("max_backoff", policy.max_backoff),
            )
        message.retry_delay = delay
