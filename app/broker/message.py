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
        #: When the attempt started (``time.perf_counter``), set by the events middleware.
        self.started_at: float | None = None
        #: The tenant middleware's context-var token while the actor runs.
        self.context_token: Any = None
        #: A commit-time failure (e.g. a non-JSON result) found before the group commit.
        self.commit_error: BaseException | None = None
        #: Set when the row was rescued while this attempt ran: its work must not commit.
        self.lease_lost = False
        #: Sort key in the worker's work queue, set at claim (dramatiq's proxy says "any").
        self.order: tuple[Any, ...] = ()

    def __lt__(self, other: object) -> bool:
        return isinstance(other, JobMessage) and self.order < other.order


#: JSON's names for what a bad row may hold, for error messages a human can act on.
_JSON_TYPES = {type(None): "null", str: "string", int: "number", float: "number",
               bool: "boolean", list: "array", dict: "object"}

_FIELD_TYPES: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("actor_name", str), ("args", (list, tuple)), ("kwargs", dict), ("options", dict),
)


def parse_message(body: Any, message_id: object, queue_name: str) -> Message:
    """The dramatiq message of a claimed row, or a ValueError that says why it cannot run.

    A row written behind the broker's back can hold anything. Besides JSON that is not a
    message, one naming another job's id would be acked under that id (its own row staying
    claimed for good), one naming another queue makes dramatiq's worker thread die looking
    that queue up, and ``options`` that are not an object break every middleware; a stock
    ``eta`` option would be re-enqueued under the same id (a no-op) and acked unrun. So each
    is refused here, at claim, and dead-lettered with this message.
    """
    if not isinstance(body, dict):
        raise ValueError(f"a JSON {_JSON_TYPES.get(type(body), type(body).__name__)}, "
                         "not a message object")
    try:
        message: Message = Message(**body)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    for field, kinds in _FIELD_TYPES:
        value = getattr(message, field)
        if not isinstance(value, kinds):
            raise ValueError(f"its {field} is a JSON "
                             f"{_JSON_TYPES.get(type(value), type(value).__name__)}")
    if str(message.message_id) != str(message_id):
        raise ValueError(f"its message_id {message.message_id!r} is not the row's")
    if message.queue_name != queue_name:
        raise ValueError(f"its queue_name {message.queue_name!r} is not the row's "
                         f"queue {queue_name!r}")
    if "eta" in message.options:
        raise ValueError("it has an 'eta' option: delays are the row's eta column here")
    return message
