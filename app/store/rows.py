"""Typed rows of the job store: no caller reads a job row by position."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Job statuses as the views and the API name them.
TERMINAL = frozenset({"completed", "dead", "cancelled"})


@dataclass(frozen=True)
class Inserted:
    """One enqueued message: ``existing`` is the job kept instead (duplicate), else None."""

    message_id: uuid.UUID
    existing: uuid.UUID | None


@dataclass(frozen=True)
class Claimed:
    """A job this worker now holds, with what it needs to run it."""

    message_id: uuid.UUID
    message: Any
    tenant_id: uuid.UUID | None
    attempts: int
    max_attempts: int | None
    priority: int
    eta: datetime
    #: The claim's lease: opens the job's tenant context and completes it (app.store.actor).
    lease: str
    #: 'ok', 'unknown' (no such tenant) or 'inactive'.
    tenant_status: str
    #: The claim's transaction time (the database's clock), at or before the row's
    #: ``started_at``: bounds the completion batch's read (``outcomes.complete_many``).
    claimed: datetime


@dataclass(frozen=True)
class Rescued:
    """A job taken back from a worker whose lease ran out (state: queued or rejected)."""

    message_id: uuid.UUID
    queue_name: str
    state: str
    actor_name: str | None
    tenant_id: uuid.UUID | None
    attempts: int
    lost_worker: uuid.UUID
    running_seconds: float | None


@dataclass(frozen=True)
class Neighbour:
    worker_id: uuid.UUID
    pid: int
    process_started: int | None


@dataclass(frozen=True)
class QueueGauge:
    queue: str
    waiting: int
    delayed: int
    active: int
    oldest_waiting_seconds: float


@dataclass(frozen=True)
class JobInfo:
    """What the API tells of a job: status, progress, result, error."""

    message_id: str
    queue: str
    #: waiting, delayed, active, completed, dead or cancelled.
    status: str
    actor_name: str | None
    tenant_id: uuid.UUID | None
    priority: int
    attempts: int
    max_attempts: int | None
    progress: int | None
    progress_message: str | None
    result: Any
    last_error: str | None
    unique_key: str | None
    eta: datetime
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL
