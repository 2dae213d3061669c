"""Scheduled messages and reminders from application code: create, cancel, reschedule.

Each call joins the caller's transaction: the row and its delayed job are created, cancelled
or moved together, or not at all::

    with tenant_session(tenant_id) as session:
        message_id = schedule_message(session, channel="sms", recipient="+15551234567",
                                      template_id="appointment", params={"at": "10:00"},
                                      send_at=datetime(2027, 3, 1, 9, 0),
                                      timezone="Europe/Paris")
    with tenant_session(tenant_id) as session:
        reschedule_message(session, message_id, send_at=datetime(2027, 3, 2, 9, 0))
    with tenant_session(tenant_id) as session:
        cancel_message(session, message_id)

Race-safe against a worker claiming the job at that instant: the row is locked first, the
job is cancelled or moved with ``app.jobs.cancel`` / ``reschedule`` (which lock the job row),
and the firing itself re-checks the row under the same lock, so a cancelled message is never
sent and a moved one is sent once, at its new time. ``TooLate`` means it is being sent or was.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.actors import messages
from app.jobs import JobFinished, JobRunning, cancel, enqueue, reschedule
from app.messaging import recurrence, timed
from app.messaging.deliveries import Target
from app.messaging.errors import TooLate, validation_summary
from app.messaging.notify import InvalidNotification
from app.messaging.payloads import NotificationJobData


def _target(channel: str, recipient: str, template_id: str, params: dict[str, Any]) -> Target:
    try:
        data = NotificationJobData.model_validate({
            "channel": channel, "recipient": recipient, "template_id": template_id,
            "params": params})
    except ValidationError as exc:
        raise InvalidNotification(f"message: {validation_summary(exc)}") from None
    return Target(data.channel, data.recipient, data.template_id)


_actor, _payload = messages.actor_for, messages.payload_for


def _create(session: Session, kind: timed.Kind, target: Target, params: dict[str, Any],
            when: datetime, timezone: str, rule: str | None = None) -> uuid.UUID:
    row_id = timed.create(session, kind, target, params, when, timezone, rule)
    job = enqueue(session, _actor(kind), _payload(kind, row_id),
                  delay=recurrence.seconds_until(session, when))
    timed.attach_job(session, kind, row_id, job.message_id)
    return row_id


def schedule_message(
    session: Session, *, channel: str, recipient: str, template_id: str,
    params: dict[str, Any] | None = None, send_at: datetime, timezone: str = "UTC",
) -> uuid.UUID:
    """Send a message at ``send_at`` (naive: local time in ``timezone``); returns its id."""
    target = _target(channel, recipient, template_id, params or {})
    return _create(session, timed.MESSAGE, target, params or {},
                   recurrence.resolve(send_at, timezone), timezone)


def schedule_reminder(
    session: Session, *, channel: str, recipient: str, template_id: str,
    params: dict[str, Any] | None = None, send_at: datetime | None = None,
    timezone: str = "UTC", recurrence_rule: str | None = None,
) -> uuid.UUID:
    """A reminder at ``send_at``, or recurring (``recurrence_rule="0 9 * * 1"``: Mondays
    09:00 in ``timezone``; the first occurrence is the next one unless ``send_at`` says)."""
    target = _target(channel, recipient, template_id, params or {})
    recurrence.zone(timezone)
    if recurrence_rule is not None:
        recurrence.check(recurrence_rule, timezone)
        if send_at is None:
            send_at = recurrence.next_occurrence(recurrence_rule, timezone,
                                                 datetime.now(recurrence.zone(timezone)))
    if send_at is None:
        raise ValueError("a reminder needs send_at, a recurrence_rule, or both")
    return _create(session, timed.REMINDER, target, params or {},
                   recurrence.resolve(send_at, timezone), timezone, recurrence_rule)


def _cancel(session: Session, kind: timed.Kind, row_id: uuid.UUID | str) -> bool:
    row = timed.lock(session, kind, row_id)
    if row is None:
        raise LookupError(f"no {kind.label} {row_id} for this tenant")
    if row.status == "cancelled":
        return False
    if row.status != "scheduled":
        raise TooLate(f"{kind.label} {row_id} is already {row.status}")
    if row.job_id is not None:
        try:
            cancel(session, row.job_id, reason=f"{kind.label} cancelled")
        except JobRunning:
            pass  # claimed this instant: its firing finds the row cancelled and skips
        except LookupError:
            pass  # the job is gone (pruned): the row alone decides
    timed.cancelled(session, kind, row.id)
    return True


def _reschedule(session: Session, kind: timed.Kind, row_id: uuid.UUID | str,
                send_at: datetime, timezone: str | None) -> None:
    row = timed.lock(session, kind, row_id)
    if row is None:
        raise LookupError(f"no {kind.label} {row_id} for this tenant")
    if row.status != "scheduled":
        raise TooLate(f"{kind.label} {row_id} is already {row.status}")
    zone = timezone or row.timezone
    when = recurrence.resolve(send_at, zone)
    job_id: str | None = str(row.job_id) if row.job_id else None
    try:
        if job_id is None:
            raise LookupError("no job")
        reschedule(session, job_id, eta=when)
    except (JobRunning, JobFinished, LookupError):
        # Its job is being claimed (or gone): a new job carries the new time, and the old
        # one, if it runs, sees that the row no longer names it.
        job_id = enqueue(session, _actor(kind), _payload(kind, row.id),
                         delay=recurrence.seconds_until(session, when)).message_id
    timed.moved(session, kind, row.id, when, zone, job_id)


def cancel_message(session: Session, message_id: uuid.UUID | str) -> bool:
    """Cancel a scheduled message: True if cancelled now, False if it already was.

    ``LookupError`` if the tenant has no such message; ``TooLate`` if it is sent or failed.
    """
    return _cancel(session, timed.MESSAGE, message_id)


def reschedule_message(session: Session, message_id: uuid.UUID | str, *, send_at: datetime,
                       timezone: str | None = None) -> None:
    """Move a scheduled message to ``send_at`` (naive: local in its, or the given, zone)."""
    _reschedule(session, timed.MESSAGE, message_id, send_at, timezone)


def cancel_reminder(session: Session, reminder_id: uuid.UUID | str) -> bool:
    """Cancel a reminder (every future occurrence of a recurring one)."""
    return _cancel(session, timed.REMINDER, reminder_id)


def reschedule_reminder(session: Session, reminder_id: uuid.UUID | str, *, send_at: datetime,
                        timezone: str | None = None) -> None:
    """Move a reminder's next occurrence; a recurring one continues from there."""
    _reschedule(session, timed.REMINDER, reminder_id, send_at, timezone)
