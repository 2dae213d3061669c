"""``webhooks.process``: process a stored webhook event (or an inline one), publish activity.

The intake enqueues ``{"webhook_event_id": ...}``: the row holds the payload, and its status
moves in the job's transaction. A failed attempt marks the row FAILED with its error through
``on_failure`` (committed after the attempt rolled back); a retry or a replay moves it back
through PROCESSING. Application code may still enqueue a whole event inline (no row).
"""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.actors.activity import publish
from app.jobs import current_session, current_tenant, enqueue, job
from app.jobs.hooks import FailedAttempt
from app.services import webhook_events
from app.services.payloads import StoredWebhookJob, WebhookJob
from app.services.webhook_payloads import PayloadError
from app.services.webhooks import (
    NoWebhookHandler,
    TenantMismatch,
    UnknownWebhookSource,
    WebhookEventMissing,
    process_stored,
    process_webhook,
)


def record_failure(session: Session, attempt: FailedAttempt) -> None:
    """``on_failure``: the stored event says FAILED and why, while the job retries or dies."""
    data = attempt.args[0] if attempt.args else None
    if isinstance(data, dict) and "webhook_event_id" in data:
        try:
            stored = StoredWebhookJob.model_validate(data)
        except ValidationError:
            return
        webhook_events.fail(session, stored.webhook_event_id, attempt.error)


@job(
    actor_name="webhooks.process",
    queue_name="webhooks",
    priority=10,
    throws=(ValidationError, UnknownWebhookSource, NoWebhookHandler, TenantMismatch,
            WebhookEventMissing, PayloadError),
    on_failure=record_failure,
)
def process(event: dict[str, Any]) -> None:
    session = current_session()
    if "webhook_event_id" in event:
        process_stored_event(StoredWebhookJob.model_validate(event).webhook_event_id)
        return
    tenant = current_tenant()
    assert tenant is not None  # not tenant_free: the middleware guarantees a tenant
    activity = process_webhook(session, WebhookJob.model_validate(event), tenant)
    if activity is not None:
        enqueue(session, publish, activity.model_dump(mode="json"))


def process_stored_event(event_id: uuid.UUID) -> None:
    """Process a stored event in the running job (what every processing actor does)."""
    session = current_session()
    activity = process_stored(session, event_id)
    if activity is not None:
        enqueue(session, publish, activity.model_dump(mode="json"))


#: Sources whose stored events a family processes on a queue of its own (the commerce
#: family's high-priority ``webhook-processing``); the others go to ``webhooks.process``.
ROUTES: dict[str, dramatiq.Actor] = {}


def actor_for(source: str) -> dramatiq.Actor:
    """The actor the intake enqueues for a stored event of ``source``."""
    return ROUTES.get(source, process)
