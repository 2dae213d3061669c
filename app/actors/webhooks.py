"""``webhooks.process``: validate, route by source, record under the tenant, publish activity."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.actors.activity import publish
from app.jobs import current_session, current_tenant, enqueue, job
from app.services.payloads import WebhookJob
from app.services.webhooks import (
    NoWebhookHandler,
    TenantMismatch,
    UnknownWebhookSource,
    process_webhook,
)


@job(
    actor_name="webhooks.process",
    queue_name="webhooks",
    priority=10,
    throws=(ValidationError, UnknownWebhookSource, NoWebhookHandler, TenantMismatch),
)
def process(event: dict[str, Any]) -> None:
    data = WebhookJob.model_validate(event)
    tenant = current_tenant()
    assert tenant is not None  # not tenant_free: the middleware guarantees a tenant
    session = current_session()
    activity = process_webhook(session, data, tenant)
    if activity is not None:
        enqueue(session, publish, activity.model_dump(mode="json"))
