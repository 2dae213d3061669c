"""Webhook processing: route by source to a handler that works inside the tenant's session.

Handlers are registered per source with ``@register_handler("shopify")``; a family that
processes a source for real (commerce, for Shopify, WooCommerce and carriers) registers its
own and replaces the default, which validates the payload and records an activity event.
A handler takes ``(session, event: WebhookJob)`` and returns the activity to publish, or
None; its writes commit with the job's completion.

Events stored by the intake are processed from their row (:func:`process_stored`), which
moves it through PROCESSING to COMPLETED in the job's own transaction; events enqueued
directly by application code carry everything in the job (:func:`process_webhook`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import get_args

from sqlalchemy.orm import Session

from app.db.models import ActivityEvent
from app.services import webhook_events
from app.services.payloads import ActivityJob, WebhookJob, WebhookSource
from app.services.webhook_payloads import MODELS, validate

logger = logging.getLogger(__name__)


class UnknownWebhookSource(ValueError):
    """A source nobody integrates: dead-lettered at once, retrying would not help."""


class NoWebhookHandler(LookupError):
    """A known source whose handler is not built yet: kept as a dead letter for replay."""


class TenantMismatch(ValueError):
    """The payload names a tenant other than the job's own."""


class WebhookEventMissing(LookupError):
    """The stored event is gone (deleted, or not the job's tenant's): nothing to process."""


Handler = Callable[[Session, WebhookJob], ActivityJob | None]

HANDLERS: dict[str, Handler] = {}
_defaults: set[str] = set()


def register_handler(source: str, *, replace: bool = False) -> Callable[[Handler], Handler]:
    """Decorator: ``handler`` processes ``source``'s events (replacing the built-in default).

    Registering a source twice is a mistake (two families both think they own it) and
    raises, unless ``replace=True`` says it is meant.
    """
    if source not in get_args(WebhookSource):
        raise ValueError(f"unknown webhook source {source!r}; known: "
                         f"{', '.join(get_args(WebhookSource))}")

    def decorate(handler: Handler) -> Handler:
        if source in HANDLERS and source not in _defaults and not replace:
            raise ValueError(f"webhook source {source!r} already has a handler "
                             f"({HANDLERS[source].__qualname__}); pass replace=True")
        HANDLERS[source] = handler
        _defaults.discard(source)
        return handler

    return decorate


def _default(source: str) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        HANDLERS[source] = handler
        _defaults.add(source)
        return handler
    return decorate


@_default("test")
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


def record_received(session: Session, event: WebhookJob) -> ActivityJob:
    """Default handler: validate the payload, record that the event arrived (ids only)."""
    assert event.tenant_id is not None
    if event.source in MODELS:
        validate(event.source, event.payload)
    activity = ActivityJob(
        tenant_id=event.tenant_id,
        event_type=f"webhook.{event.source}",
        title=f"{event.source} {event.event_type} received",
        metadata={"event_type": event.event_type,
                  "webhook_event_id": str(event.webhook_event_id)
                  if event.webhook_event_id else None},
        source="webhook",
        source_id=event.event_id,
    )
    session.add(ActivityEvent(
        tenant_id=activity.tenant_id, event_type=activity.event_type, title=activity.title,
        metadata_=activity.metadata, source=activity.source, source_id=activity.source_id,
    ))
    session.flush()
    return activity


for _source in get_args(WebhookSource):
    if _source != "test":
        _default(_source)(record_received)


def dispatch(session: Session, event: WebhookJob) -> ActivityJob | None:
    if event.source not in get_args(WebhookSource):
        raise UnknownWebhookSource(f"unknown webhook source {event.source!r}")
    handler = HANDLERS.get(event.source)
    if handler is None:
        raise NoWebhookHandler(f"no handler for webhook source {event.source!r} yet")
    return handler(session, event)


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
    return dispatch(session, event)


def process_stored(session: Session, webhook_event_id: uuid.UUID) -> ActivityJob | None:
    """Process a stored event: PROCESSING, its handler, COMPLETED, all in ``session``.

    The row is locked by the first update, so a replay racing the original job waits for
    it and then finds the event COMPLETED: an event is processed once, whatever retries and
    replays happen.
    """
    row = webhook_events.start(session, webhook_event_id)
    if row is None:
        if webhook_events.get(session, webhook_event_id) is None:
            raise WebhookEventMissing(f"webhook event {webhook_event_id} not found for "
                                      "the job's tenant")
        logger.info("event=webhook_already_completed webhook_event=%s", webhook_event_id)
        return None
    event = WebhookJob(
        source=row.source, event_id=row.external_event_id, event_type=row.event_type,
        payload=row.payload, tenant_id=row.tenant_id, received_at=row.received_at,
        webhook_event_id=row.id, headers=row.headers,
    )
    activity = dispatch(session, event)
    webhook_events.complete(session, webhook_event_id)
    logger.info("event=webhook_processed webhook_event=%s source=%s tenant=%s attempt=%s",
                row.id, row.source, row.tenant_id, row.attempts)
    return activity
