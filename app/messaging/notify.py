"""Send a notification from application code or an actor: one job in the caller's transaction.

    with tenant_session(tenant_id) as session:
        notify(session, "sms", "+15551234567", "order.shipped", {"order": "A-17"})

The payload is validated here (a bad channel, recipient or template id fails at once with an
error naming the field), then ``notifications.send`` is enqueued with the caller's tenant,
so the message exists exactly when the caller's transaction commits.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.jobs import EnqueueResult, enqueue
from app.messaging import recurrence
from app.messaging.errors import validation_summary
from app.messaging.notices import Notice
from app.messaging.payloads import NotificationJobData


class InvalidNotification(ValueError):
    """The notification cannot be enqueued as given; the message names the field."""


def notify(
    session: Session, channel: str, recipient: str, template_id: str,
    params: dict[str, Any] | None = None, *, delay: float | None = None,
    eta: datetime | None = None, unique_key: str | None = None, priority: int | None = None,
    reference: str | None = None,
) -> EnqueueResult:
    """Enqueue ``notifications.send`` in ``session``'s transaction (see the module doc)."""
    try:
        data = NotificationJobData.model_validate({
            "channel": channel, "recipient": recipient, "template_id": template_id,
            "params": params or {}, "reference": reference})
        json.dumps(data.params)
    except ValidationError as exc:
        raise InvalidNotification(f"notification: {validation_summary(exc)}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidNotification(f"notification params must be JSON: {exc}") from None
    payload = data.model_dump(mode="json", exclude_none=True)
    if eta is not None:
        if eta.tzinfo is None:
            raise InvalidNotification(f"eta must be timezone-aware, got {eta!r}")
        delay, eta = recurrence.seconds_until(session, eta), None
    # Imported here: the actor modules that notify (digests, photos...) import this one.
    from app.actors import notifications

    return enqueue(session, notifications.send, payload, delay=delay, eta=eta,
                   unique_key=unique_key, priority=priority)


def send_notice(session: Session, notice: Notice) -> EnqueueResult:
    return notify(session, notice.channel, notice.recipient, notice.template, notice.params,
                  unique_key=notice.unique_key, reference=notice.reference)
