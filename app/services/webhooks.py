"""Webhook processing: route by source; each handler works inside the tenant's session."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import get_args

from sqlalchemy.orm import Session

from app.db.models import ActivityEvent
from app.services.payloads import ActivityJob, WebhookJob, WebhookSource


class UnknownWebhookSource(ValueError):
    """A source nobody integrates: dead-lettered at once, retrying would not help."""


class NoWebhookHandler(LookupError):
    """A known source whose handler is not built yet: kept as a dead letter for replay."""


class TenantMismatch(ValueError):
    """The payload names a tenant other than the job's own."""


Handler = Callable[[Session, WebhookJob], ActivityJob | None]


def handle_test(session: Session, event: WebhookJob) -> ActivityJob:
    """The ``test`` source: record an activity event and return the activity to publish."""
    assert event.tenant_id is not None
    session.add(ActivityEvent(
        tenant_id=event.tenant_id,
        event_type="webhook.test",
        title="Test webhook processed",
        description=f"Processed test webhook {event.event_id}",
        metadata_=event.payload,
        source="webhook",
        source_id=event.event_id,
    ))
    session.flush()
    return ActivityJob(
        tenant_id=event.tenant_id,
        event_type="webhook.test",
        title="Test webhook processed",
        description=f"Test webhook {event.event_id} processed successfully",
        metadata=event.payload,
        source="webhook",
        source_id=event.event_id,
    )


HANDLERS: dict[str, Handler] = {"test": handle_test}


def register_handler(source: str) -> Callable[[Handler], Handler]:
    """Decorator: ``fn`` processes webhooks from ``source`` (one handler per source)."""

    def decorate(fn: Handler) -> Handler:
        known = HANDLERS.get(source)
        if known is not None and known is not fn:
            raise ValueError(f"webhook source {source!r} already has a handler: {known!r}")
        HANDLERS[source] = fn
        return fn

    return decorate


def process_webhook(
    session: Session, event: WebhookJob, job_tenant: uuid.UUID
) -> ActivityJob | None:
    """Process one webhook for ``job_tenant``; returns the activity to publish, if any."""
    if event.tenant_id is None:
        event = event.model_copy(update={"tenant_id": job_tenant})
    elif event.tenant_id != job_tenant:
        raise TenantMismatch(
            f"payload tenant_id {event.tenant_id} differs from the job's tenant {job_tenant}"
        )
    if event.source not in get_args(WebhookSource):
        raise UnknownWebhookSource(f"unknown webhook source {event.source!r}")
    handler = HANDLERS.get(event.source)
    if handler is None:
        raise NoWebhookHandler(f"no handler for webhook source {event.source!r} yet")
    return handler(session, event)
