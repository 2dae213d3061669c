"""``notifications.send``: one message over email, SMS or WhatsApp, at most once.

Thin: validate the payload, deliver it through ``app.messaging.send`` (which records the
attempt before calling the provider), translate a transient failure into dramatiq's
``Retry`` with the provider's delay. Permanent failures (``throws``) go straight to the dead
letters with the provider's reason; ``on_failure`` settles the delivery record.

Rate limit: per tenant and per channel (the limit key is the channel; the store scopes keys
to the job's tenant), ``MESSAGING_RATE_LIMIT`` starts per window (default 20 per second).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from dramatiq.errors import Retry
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.jobs import EnqueueRefused, current_job, current_session, current_tenant, job
from app.jobs.context import separate_session
from app.jobs.hooks import FailedAttempt
from app.messaging import deliveries, references
from app.messaging.deliveries import Target
from app.messaging.errors import DeliveryDeferred, DeliveryFailed
from app.messaging.payloads import NotificationJobData
from app.messaging.send import Outcome, Request, deliver
from app.messaging.settings import get_messaging_settings
from app.providers.outbound import CHANNELS

#: A notification enqueued with a unique key stays a no-op this long after it is sent.
UNIQUE_WINDOW = 8 * 24 * 3600.0


def channel_of(notification: Any, *_: Any, **__: Any) -> str:
    """The limit key: the notification's channel (refused at enqueue when it has none)."""
    channel = notification.get("channel") if isinstance(notification, dict) else None
    if channel not in CHANNELS:
        raise EnqueueRefused(f"notifications.send: channel must be one of "
                             f"{', '.join(CHANNELS)}, got {channel!r}")
    return str(channel)


def run_delivery(request: Request) -> Outcome:
    """Deliver ``request`` for the running job (its id is the idempotency key)."""
    ctx = current_job()
    assert ctx is not None
    job_id = ctx.message.message_id
    try:
        return deliver(current_session(), request, key=job_id, job_id=uuid.UUID(job_id),
                       record=separate_session, config=get_messaging_settings())
    except DeliveryDeferred as exc:
        delay = None if exc.delay is None else int(exc.delay * 1000)
        raise Retry(str(exc), delay=delay) from None


def failure_hook(
    target_of: Callable[[FailedAttempt], Target | None],
) -> Callable[[Session, FailedAttempt], None]:
    """An ``on_failure`` hook recording a failed attempt on the job's delivery."""

    def record(session: Session, attempt: FailedAttempt) -> None:
        target = target_of(attempt)
        if target is None:
            return  # not a valid payload: the dead letter's error says why
        deliveries.record_failure(session, attempt.message_id, uuid.UUID(attempt.message_id),
                                  target, attempt.error, final=attempt.final)

    return record


def _target(attempt: FailedAttempt) -> Target | None:
    try:
        data = NotificationJobData.model_validate(attempt.args[0] if attempt.args else None)
    except ValidationError:
        return None
    return Target(data.channel, data.recipient, data.template_id)


@job(actor_name="notifications.send", queue_name="notifications",
     unique_window=UNIQUE_WINDOW, rate_limit=get_messaging_settings().rate, limit_key=channel_of,
     throws=(DeliveryFailed, ValidationError), on_failure=failure_hook(_target))
def send(notification: dict[str, Any]) -> dict[str, str]:
    data = NotificationJobData.model_validate(notification)
    if data.tenant_id is not None and data.tenant_id != current_tenant():
        raise DeliveryFailed("tenantId in the payload is not the job's tenant")
    outcome = run_delivery(Request(data.channel, data.recipient, data.template_id,
                                   data.params))
    references.mark_delivered(current_session(), data.reference)
    return outcome.as_result()
