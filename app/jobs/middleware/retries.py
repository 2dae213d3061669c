"""Retries with exponential backoff from the queue policy; exhausted jobs become dead letters.

Replaces dramatiq's Retries, which re-enqueues a copy: here the same row goes back to its
queue's delayed side with a new eta, keeping its id, attempt count and last error.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from dramatiq import Middleware
from dramatiq.errors import Retry

from app.broker.message import JobMessage
from app.jobs.errors import TenantUnavailable
from app.jobs.policies import backoff_seconds, max_attempts_for, policy_for

logger = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:4000]


class JobRetries(Middleware):
    actor_options: ClassVar[set[str]] = {
        "max_attempts", "max_retries", "min_backoff", "max_backoff", "retry_when", "throws",
    }

    def after_process_message(
        self, broker: Any, message: JobMessage, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        exc = exception or getattr(message, "commit_error", None)
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
        fields = (message.message_id, message.actor_name, message.queue_name,
                  message.tenant_id, message.attempt)
        if not retry:
            message.fail()
            logger.error("event=dead message_id=%s actor=%s queue=%s tenant=%s attempt=%s "
                         "error=%r", *fields, message.error)
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
        logger.warning("event=retrying message_id=%s actor=%s queue=%s tenant=%s attempt=%s "
                       "delay=%.3f error=%r", *fields, delay, message.error)
