"""Scheduled messages and reminders as rows: lock, decide whether a firing sends, record it.

A row is the truth; its delayed job only wakes it up. A firing sends only if, under the
row's lock in the job's own transaction, the row is still ``scheduled`` and still names
this job: a message cancelled (or moved, which may give it a new job) while its old job was
being claimed is never sent by that job. The same lock serialises a cancel or reschedule
against a firing, so one of them wins cleanly.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.messaging import queries, recurrence
from app.messaging.deliveries import Target
from app.messaging.send import Request


@dataclass(frozen=True)
class Kind:
    table: str
    label: str


MESSAGE = Kind("scheduled_messages", "scheduled message")
REMINDER = Kind("reminders", "reminder")


@dataclass(frozen=True)
class TimedRow:
    id: uuid.UUID
    channel: str
    recipient: str
    template: str
    params: dict[str, Any]
    send_at: datetime
    timezone: str
    status: str
    job_id: uuid.UUID | None
    recurrence: str | None
    occurrences: int

    @property
    def target(self) -> Target:
        return Target(self.channel, self.recipient, self.template)


#: A firing this much before the row's send time (by the database's clock: e.g. after an
#: operator's requeue) does not send: it re-arms a job for the send time instead.
EARLY_SECONDS = 0.01


@dataclass(frozen=True)
class Early:
    """The job ran before the row's time: a new job must be armed for ``send_at``."""

    send_at: datetime


@dataclass(frozen=True)
class Firing:
    row: TimedRow
    request: Request
    #: The next occurrence of a recurring reminder (None: this is the last one).
    next_at: datetime | None


def lock(session: Session, kind: Kind, row_id: uuid.UUID | str) -> TimedRow | None:
    try:
        key = uuid.UUID(str(row_id))
    except ValueError:
        raise ValueError(f"{kind.label} ids are UUIDs, got {row_id!r}") from None
    row = session.execute(queries.TIMED[kind.table].lock, {"id": key}).mappings().one_or_none()
    return TimedRow(**row) if row is not None else None


def create(
    session: Session, kind: Kind, target: Target, params: dict[str, Any], send_at: datetime,
    timezone: str, recurrence_rule: str | None = None,
) -> uuid.UUID:
    values = {"channel": target.channel, "recipient": target.recipient,
              "template": target.template, "params": json.dumps(params), "send_at": send_at,
              "timezone": timezone}
    if kind is REMINDER:
        statement = queries.INSERT_REMINDER
        values["recurrence"] = recurrence_rule
    else:
        statement = queries.INSERT_SCHEDULED
    new_id: uuid.UUID = session.execute(statement, values).scalar_one()
    return new_id


def attach_job(session: Session, kind: Kind, row_id: uuid.UUID, job_id: str) -> None:
    session.execute(queries.SET_JOB[kind.table], {"id": row_id, "job": uuid.UUID(job_id)})


def moved(session: Session, kind: Kind, row_id: uuid.UUID, send_at: datetime,
          timezone: str, job_id: uuid.UUID | str) -> None:
    session.execute(queries.TIMED[kind.table].moved,
                    {"id": row_id, "send_at": send_at, "timezone": timezone,
                     "job": uuid.UUID(str(job_id))})


def cancelled(session: Session, kind: Kind, row_id: uuid.UUID) -> None:
    session.execute(queries.TIMED[kind.table].cancelled, {"id": row_id})


def due(session: Session, kind: Kind, row_id: uuid.UUID, job_id: str) -> Firing | Early | str:
    """What this job's firing does: a ``Firing`` to send, ``Early`` to re-arm, or why it
    skips (a string)."""
    row = lock(session, kind, row_id)
    if row is None:
        return "missing"
    if row.status != "scheduled":
        return row.status
    if row.job_id is None or str(row.job_id) != job_id:
        return "superseded"
    now: datetime = session.execute(queries.CLOCK).scalar_one()
    if (row.send_at - now).total_seconds() > EARLY_SECONDS:
        return Early(row.send_at)
    next_at = None
    if row.recurrence:
        next_at = recurrence.next_occurrence(row.recurrence, row.timezone,
                                             max(now, row.send_at))
    request = Request(row.channel, row.recipient, row.template, dict(row.params))
    return Firing(row, request, next_at)


def fired(session: Session, kind: Kind, row_id: uuid.UUID, next_at: datetime | None = None,
          next_job: str | None = None) -> None:
    """The firing sent its message (a recurring reminder moves on to ``next_at``)."""
    if kind is REMINDER:
        session.execute(queries.SENT_REMINDER, {"id": row_id, "next_at": next_at,
                                                "job": next_job})
    else:
        session.execute(queries.SENT_MESSAGE, {"id": row_id})


def attempt_failed(session: Session, kind: Kind, row_id: uuid.UUID, job_id: str, error: str,
                   *, final: bool) -> None:
    """After a failed attempt of the row's current job: note the error; fail it if final."""
    statement = queries.TIMED[kind.table].failed if final else queries.TIMED[kind.table].noted
    session.execute(statement, {"id": row_id, "job": uuid.UUID(job_id), "error": error})
