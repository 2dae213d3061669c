"""``messages.send`` and ``reminders.send`` (plan 001): fire one scheduled message or reminder.

Each firing locks its row in the job's transaction and sends only if the row is still
scheduled and still names this job (see ``app.messaging.timed``); the delivery itself is the
same as ``notifications.send`` (recorded before the provider call, keyed by this job's id).
A recurring reminder enqueues its next occurrence in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.actors.notifications import run_delivery
from app.jobs import current_job, current_session, enqueue, job
from app.jobs.hooks import FailedAttempt
from app.messaging import deliveries, recurrence, timed
from app.messaging.errors import DeliveryFailed
from app.messaging.payloads import ReminderJobData, ScheduledMessageJobData


def _fire(kind: timed.Kind, row_id: uuid.UUID) -> dict[str, Any]:
    session = current_session()
    ctx = current_job()
    assert ctx is not None
    firing = timed.due(session, kind, row_id, ctx.message.message_id)
    if isinstance(firing, str):
        return {"skipped": firing}
    if isinstance(firing, timed.Early):
        rearmed = enqueue(session, actor_for(kind), payload_for(kind, row_id),
                          delay=recurrence.seconds_until(session, firing.send_at))
        timed.attach_job(session, kind, row_id, rearmed.message_id)
        return {"skipped": "early", "rearmed": rearmed.message_id}
    outcome = run_delivery(firing.request)
    next_job = None
    if firing.next_at is not None:
        next_job = enqueue(session, send_reminder, payload_for(kind, row_id),
                           delay=recurrence.seconds_until(session, firing.next_at)).message_id
    timed.fired(session, kind, row_id, firing.next_at, next_job)
    result: dict[str, Any] = outcome.as_result()
    if firing.next_at is not None:
        result["next_at"] = firing.next_at.isoformat()
    return result


def actor_for(kind: timed.Kind) -> Any:
    """The actor that fires ``kind``."""
    return send_reminder if kind is timed.REMINDER else send_scheduled


def payload_for(kind: timed.Kind, row_id: uuid.UUID) -> dict[str, str]:
    key = "reminder_id" if kind is timed.REMINDER else "scheduled_message_id"
    return {key: str(row_id)}


def _row_id(kind: timed.Kind, args: tuple[Any, ...]) -> uuid.UUID | None:
    model = ReminderJobData if kind is timed.REMINDER else ScheduledMessageJobData
    try:
        data = model.model_validate(args[0] if args else None)
    except ValidationError:
        return None
    return data.reminder_id if isinstance(data, ReminderJobData) else data.scheduled_message_id


def _on_failure(kind: timed.Kind) -> Callable[[Session, FailedAttempt], None]:
    """Note the error on the row (failed when final) and on its delivery."""

    def record(session: Session, attempt: FailedAttempt) -> None:
        row_id = _row_id(kind, attempt.args)
        row = timed.lock(session, kind, row_id) if row_id is not None else None
        if row is None or str(row.job_id) != attempt.message_id:
            return  # gone, or superseded: this job no longer speaks for the row
        timed.attempt_failed(session, kind, row.id, attempt.message_id, attempt.error,
                             final=attempt.final)
        deliveries.record_failure(session, attempt.message_id, uuid.UUID(attempt.message_id),
                                  row.target, attempt.error, final=attempt.final)

    return record


@job(actor_name="messages.send", queue_name="messages",
     throws=(DeliveryFailed, ValidationError), on_failure=_on_failure(timed.MESSAGE))
def send_scheduled(data: dict[str, Any]) -> dict[str, Any]:
    payload = ScheduledMessageJobData.model_validate(data)
    return _fire(timed.MESSAGE, payload.scheduled_message_id)


@job(actor_name="reminders.send", queue_name="reminders",
     throws=(DeliveryFailed, ValidationError), on_failure=_on_failure(timed.REMINDER))
def send_reminder(data: dict[str, Any]) -> dict[str, Any]:
    payload = ReminderJobData.model_validate(data)
    return _fire(timed.REMINDER, payload.reminder_id)
