"""Commerce sync (plan 004): store syncs, channel fan-out, webhook processing.

* ``shopify.sync`` / ``woocommerce.sync`` (queues ``shopify-sync`` / ``woocommerce-sync``):
  one resource of one channel, resumable page by page; unique key
  ``<platform>-<resource>-channel-<id>``; one sync at a time per channel (the queue's
  concurrency 1, keyed by the channel id).
* ``channels.sync`` (``channel-sync``): enqueue every resource's sync of a channel.
* ``commerce.process_webhook`` (``webhook-processing``, priority 100, ahead of any sync in
  a worker): Shopify, WooCommerce and carrier webhooks through the registered handlers.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

import dramatiq
from dramatiq.errors import Retry
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.actors.activity import publish
from app.actors.webhooks import ROUTES, process_stored_event, record_failure
from app.db.tenant import TENANT_KEY
from app.jobs import (
    EnqueueResult,
    current_session,
    current_tenant,
    enqueue,
    job,
    report_progress,
)
from app.jobs.context import separate_session
from app.jobs.hooks import FailedAttempt
from app.jobs.limits import LimitsInvalid
from app.providers.errors import PermanentError, RateLimited
from app.providers.pages import RESOURCES
from app.providers.woocommerce import SUPPORTED as WOO_RESOURCES
from app.sealing import SealingError
from app.services import webhooks
from app.services.commerce import webhooks as commerce_webhooks
from app.services.commerce.channels import ChannelNotFound, get_channel
from app.services.commerce.cursors import SyncSuperseded
from app.services.commerce.payloads import SyncRequest, sync_key
from app.services.commerce.settings import CommerceSettings
from app.services.commerce.sync import run_sync
from app.services.payloads import StoredWebhookJob, WebhookJob

SYNC_PERMANENT = (ValidationError, PermanentError, ChannelNotFound, SyncSuperseded,
                  SealingError)
WEBHOOK_PERMANENT = (ValidationError, webhooks.UnknownWebhookSource, webhooks.NoWebhookHandler,
                     webhooks.TenantMismatch, commerce_webhooks.BadWebhookPayload,
                     ChannelNotFound, PermanentError)
WEBHOOK_PRIORITY = 100
#: What each store platform syncs.
PLATFORM_RESOURCES = {"shopify": RESOURCES, "woocommerce": WOO_RESOURCES}


def channel_key(request: Any, *args: Any, **kwargs: Any) -> str:
    """The limit key of a sync job: its channel (one sync at a time per channel)."""
    channel = request.get("channel_id") if isinstance(request, dict) else None
    if not channel:
        raise LimitsInvalid("a sync job's payload needs a channel_id (its limit key)")
    return str(channel)


def _sync(platform: str, request: dict[str, Any]) -> dict[str, Any]:
    tenant = current_tenant()
    assert tenant is not None
    try:
        outcome = run_sync(tenant, SyncRequest.model_validate(request), platform=platform,
                           pages=separate_session, progress=report_progress,
                           settings=CommerceSettings.from_env())
    except RateLimited as exc:
        delay = None if exc.retry_after is None else int(exc.retry_after * 1000)
        raise Retry(str(exc), delay=delay) from exc
    return asdict(outcome)


@job(actor_name="shopify.sync", queue_name="shopify-sync", limit_key=channel_key,
     throws=SYNC_PERMANENT)
def shopify_sync(request: dict[str, Any]) -> dict[str, Any]:
    return _sync("shopify", request)


@job(actor_name="woocommerce.sync", queue_name="woocommerce-sync", limit_key=channel_key,
     throws=SYNC_PERMANENT)
def woocommerce_sync(request: dict[str, Any]) -> dict[str, Any]:
    return _sync("woocommerce", request)


SYNC_ACTORS: dict[str, dramatiq.Actor] = {"shopify": shopify_sync,
                                          "woocommerce": woocommerce_sync}


def enqueue_sync(
    session: Session, channel_id: uuid.UUID | str, resource: str, *, full: bool = False,
    page_size: int | None = None,
) -> EnqueueResult:
    """Enqueue the sync of ``resource`` for a channel of the session's tenant, in its
    transaction. A sync of it already waiting or running makes this a no-op (``duplicate``).
    """
    channel = get_channel(session, uuid.UUID(str(channel_id)))
    if channel.platform not in PLATFORM_RESOURCES:
        raise ChannelNotFound(f"channel {channel.id} is a {channel.platform} channel, "
                              "not a store")
    if resource not in PLATFORM_RESOURCES[channel.platform]:
        raise ValueError(f"{channel.platform} channels sync "
                         f"{', '.join(PLATFORM_RESOURCES[channel.platform])}, not {resource!r}")
    request = SyncRequest(channel_id=channel.id, resource=resource,  # type: ignore[arg-type]
                          full=full, page_size=page_size)
    return enqueue(session, SYNC_ACTORS[channel.platform], request.model_dump(mode="json"),
                   unique_key=sync_key(channel.platform, resource, channel.id))


@job(actor_name="channels.sync", queue_name="channel-sync",
     throws=(ValueError, ChannelNotFound))
def sync_channel(channel_id: str, full: bool = False) -> dict[str, str]:
    """Every resource's sync of a channel; each is a no-op if already under way."""
    session = current_session()
    channel = get_channel(session, uuid.UUID(channel_id))
    return {resource: enqueue_sync(session, channel.id, resource, full=full).message_id
            for resource in PLATFORM_RESOURCES.get(channel.platform, ())}


def _webhook_failed(session: Session, attempt: FailedAttempt) -> None:
    first = attempt.args[0] if attempt.args else None
    if isinstance(first, dict) and "webhook_event_id" in first:
        record_failure(session, attempt)  # an event the intake stored
        return
    try:
        event = WebhookJob.model_validate(attempt.args[0] if attempt.args else None)
    except ValidationError:
        return
    if session.info.get(TENANT_KEY) is None:
        return
    commerce_webhooks.set_status(session, event, "FAILED" if attempt.final else "ENQUEUED",
                                 attempt.error)


@job(actor_name="commerce.process_webhook", queue_name="webhook-processing",
     priority=WEBHOOK_PRIORITY, throws=WEBHOOK_PERMANENT, on_failure=_webhook_failed)
def process_webhook(event: dict[str, Any]) -> dict[str, str]:
    """A commerce webhook: stored by the intake (``{"webhook_event_id"}``), or inline."""
    if "webhook_event_id" in event:
        process_stored_event(StoredWebhookJob.model_validate(event).webhook_event_id)
        return {"webhook_event_id": str(event["webhook_event_id"])}
    data = WebhookJob.model_validate(event)
    tenant = current_tenant()
    assert tenant is not None
    with separate_session() as early:
        commerce_webhooks.set_status(early, data, "PROCESSING")
    session = current_session()
    activity = webhooks.process_webhook(session, data, tenant)
    commerce_webhooks.set_status(session, data, "COMPLETED")
    if activity is not None:
        enqueue(session, publish, activity.model_dump(mode="json"))
    return {"source": data.source, "event_type": data.event_type}


#: Which actor processes a webhook source of this family (the intake routes by it).
WEBHOOK_ACTORS: dict[str, dramatiq.Actor] = {
    "shopify": process_webhook, "woocommerce": process_webhook, "carrier": process_webhook,
}
ROUTES.update(WEBHOOK_ACTORS)
