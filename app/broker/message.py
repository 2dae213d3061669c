"""The claimed message: dramatiq's proxy plus what the job row says about this attempt."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from dramatiq import Message
from dramatiq.broker import MessageProxy

from app.store.rows import Claimed


class JobMessage(MessageProxy):
    """A message claimed from the job store.

    ``outcome`` is decided once, by the job lifecycle middleware, and applied by the
    consumer's ack (see ``app.jobs.outcome``). Printing a message never shows its
    arguments (dramatiq's failure log line prints the message): only actor and id.
    """

    def __init__(self, message: Message, claimed: Claimed) -> None:
        super().__init__(message)
        self.tenant_id: uuid.UUID | None = claimed.tenant_id
        self.attempt = claimed.attempts
        self.max_attempts = claimed.max_attempts
        self.lease = claimed.lease
        self.tenant_status = claimed.tenant_status
        #: The claim's time on the database's clock (bounds the completion's read).
        self.claimed_in_db = claimed.claimed
        #: When it was claimed (monotonic): a rate-limited job must start soon after.
        self.claimed_at = time.monotonic()
        #: When the attempt started (perf_counter), set by the lifecycle middleware.
        self.started_at: float | None = None
        #: The same moment on the wall clock, written to the row with the outcome.
        self.began: datetime | None = None
        #: The one decision about this attempt (an ``app.jobs.outcome`` value).
        self.outcome: Any = None
        #: The lifecycle middleware's context-var token while the actor runs.
        self.context_token: Any = None
        self.released = False
        #: Sort key in the worker's work queue, set at claim (dramatiq's proxy says "any").
        self.order: tuple[Any, ...] = ()

    def __lt__(self, other: object) -> bool:
        return isinstance(other, JobMessage) and self.order < other.order

    def __str__(self) -> str:
        return f"{self.actor_name}#{self.message_id}"

    def __repr__(self) -> str:
        return f"JobMessage({self.actor_name}#{self.message_id})"


#: JSON's names for what a bad row may hold, for error messages a human can act on.
_JSON_TYPES = {type(None): "null", str: "string", int: "number", float: "number",
               bool: "boolean", list: "array", dict: "object"}

_FIELD_TYPES: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("actor_name", str), ("args", (list, tuple)), ("kwargs", dict), ("options", dict),
)

#: Options that would make the broker enqueue later, or name a tenant: data a tenant may
#: have written, so never obeyed (the insert path refuses them too; a row written behind
#: its back is refused here).
FORBIDDEN_OPTIONS = frozenset({
    "pipe_target", "pipe_ignore", "on_success", "on_failure", "tenant_id", "eta",
    "group_info", "group_completion_uses_results",
})


def parse_message(body: Any, message_id: object, queue_name: str) -> Message:
    """The dramatiq message of a claimed row, or a ValueError that says why it cannot run.

    A row written behind the store's back can hold anything. Besides JSON that is not a
    message, one naming another job's id would be acked under that id (its own row staying
    claimed for good), one naming another queue makes dramatiq's worker thread die looking
    that queue up, ``options`` that are not an object break every middleware, and a
    pipeline, callback or tenant option would act on data a tenant wrote. Each is refused
    here, at claim, and dead-lettered with this message.
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
    forbidden = sorted(FORBIDDEN_OPTIONS & message.options.keys())
    if forbidden:
        raise ValueError(f"it carries the option {forbidden[0]!r}, which is refused "
                         "(pipelines, callbacks and tenant options never come from a row)")
    return message
