"""Processing handlers for Shopify, WooCommerce and carrier webhooks, and their events'
status (``webhook_events``: ENQUEUED -> PROCESSING -> COMPLETED / FAILED).

Handlers register with ``app.services.webhooks`` by source, so ``process_webhook`` routes
to them whichever actor runs it. A store webhook's ``payload`` is the platform's body (the
resource as its REST API returns it), optionally with ``channel_id`` added by the intake; a
tenant with one channel of the platform needs none. A carrier webhook's payload is
``{"shipment_id", "status", "events"}``. Unknown topics are acknowledged and ignored.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.db.engine import raw_connection
from app.providers.pages import Record, timestamp
from app.services import webhooks
from app.services.commerce import queries, records, shipments
from app.services.commerce.channels import ChannelNotFound, active_channels, get_channel
from app.services.payloads import ActivityJob, WebhookJob

logger = logging.getLogger(__name__)


class BadWebhookPayload(ValueError):
    """The webhook's payload lacks what its handler needs: retrying would not help."""

#: Topic prefix -> resource, per platform (Shopify ``orders/create``, Woo ``order.updated``).
SHOPIFY_TOPICS = {"orders": "orders", "products": "products", "fulfillments": "fulfillments"}
WOO_TOPICS = {"order": "orders", "product": "products"}


def _channel(session: Session, platform: str, payload: dict[str, Any]) -> uuid.UUID:
    given = payload.get("channel_id")
    if given:
        try:
            return get_channel(session, uuid.UUID(str(given)), platform=platform).id
        except ValueError:
            raise ChannelNotFound(f"webhook channel_id is not a UUID: {given!r}") from None
    found = active_channels(session, platform)
    if len(found) != 1:
        raise ChannelNotFound(f"{len(found)} active {platform} channels for this tenant: the "
                              "webhook payload must name its channel_id")
    return found[0].id


def _store(session: Session, event: WebhookJob, platform: str, resource: str | None) -> None:
    assert event.tenant_id is not None
    if resource is None:
        logger.info("event=webhook_ignored tenant=%s source=%s topic=%s", event.tenant_id,
                    event.source, event.event_type)
        return
    body = {k: v for k, v in event.payload.items() if k != "channel_id"}
    if "id" not in body:
        raise BadWebhookPayload(f"{platform} {event.event_type} payload has no id")
    channel = _channel(session, platform, event.payload)
    changed = body.get("updated_at") or body.get("date_modified_gmt")
    records.upsert(session, event.tenant_id, channel, resource,
                   [Record(str(body["id"]), body, timestamp(changed))], source="webhook")


@webhooks.register_handler("shopify")
def handle_shopify(session: Session, event: WebhookJob) -> ActivityJob | None:
    _store(session, event, "shopify", SHOPIFY_TOPICS.get(event.event_type.split("/")[0]))
    return None


@webhooks.register_handler("woocommerce")
def handle_woocommerce(session: Session, event: WebhookJob) -> ActivityJob | None:
    _store(session, event, "woocommerce", WOO_TOPICS.get(event.event_type.split(".")[0]))
    return None


@webhooks.register_handler("carrier")
def handle_carrier(session: Session, event: WebhookJob) -> ActivityJob | None:
    carrier_id = event.payload.get("shipment_id")
    status = event.payload.get("status")
    if not isinstance(carrier_id, str) or not isinstance(status, str):
        raise BadWebhookPayload("carrier webhook needs shipment_id and status")
    shipment = shipments.by_carrier_id(session, carrier_id)
    events = event.payload.get("events")
    shipments.update_tracking(session, shipment.id, status,
                              events if isinstance(events, list) else [])
    return None


def set_status(session: Session, event: WebhookJob, status: str,
               error: str | None = None) -> None:
    """Move the stored event (if the intake stored one) to ``status``."""
    raw_connection(session).execute(queries.WEBHOOK_STATUS, {
        "status": status, "error": error, "source": event.source, "event_id": event.event_id})
