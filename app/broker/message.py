"""The claimed message: dramatiq's proxy plus what the job row says about this attempt."""

from __future__ import annotations

import uuid
from typing import Any

from dramatiq import Message
from dramatiq.broker import MessageProxy


class JobMessage(MessageProxy):
    """A message claimed from ``dramatiq.queue``.

    Middleware records the outcome here (``retry_delay``, ``error``, ``completed``) and
    the consumer writes it to the row in ``ack``/``nack``, in one statement.
    """

    def __init__(
        self,
        message: Message,
        *,
        tenant_id: uuid.UUID | None,
        attempt: int,
        max_attempts: int | None,
    ) -> None:
        super().__init__(message)
        self.tenant_id = tenant_id
        self.attempt = attempt
        self.max_attempts = max_attempts
        #: Set by the tenant middleware when the completion committed with the actor's work.
        self.completed = False
        #: Seconds until the next attempt, set by the retry middleware.
        self.retry_delay: float | None = None
        self.error: str | None = None
        self.result: Any = None
        self.released = False
