"""Shipments with a carrier: created once per (carrier account, order), then tracked.

Creating a label is an external side effect, so the shipment row and its idempotency key
are committed (``record``, the actor's ``separate_session``) before the carrier is called;
a retry after a timeout or a crash sends the same key and gets the same shipment back. The
carrier's answer is written in the job's own transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session

from app.db.engine import raw_connection
from app.services.commerce import queries
from app.services.commerce.channels import carrier_client, get_channel
from app.services.commerce.payloads import ShipmentRequest
from app.services.commerce.settings import CommerceSettings

logger = logging.getLogger(__name__)

Record = Callable[[], AbstractContextManager[Session]]


class ShipmentNotFound(LookupError):
    """No such shipment for this tenant (yet: a carrier webhook may beat its creation)."""


@dataclass(frozen=True)
class Shipment:
    id: uuid.UUID
    carrier_channel_id: uuid.UUID
    order_ref: str
    idempotency_key: uuid.UUID
    status: str
    carrier_shipment_id: str | None
    tracking_number: str | None
    label_url: str | None
    error: str | None


def _one(session: Session, query: str, params: dict[str, object]) -> Shipment | None:
    with raw_connection(session).cursor(row_factory=class_row(Shipment)) as cur:
        return cur.execute(query, params).fetchone()


def create_shipment(
    session: Callable[[], Session], tenant_id: uuid.UUID, request: ShipmentRequest, *,
    record: Record, settings: CommerceSettings,
) -> Shipment:
    """The order's shipment, created with the carrier unless it already was.

    ``session`` opens the job's own transaction, only once the carrier has answered (no
    transaction stays open across the call).
    """
    with record() as early:
        channel = get_channel(early, request.carrier_channel_id, platform="carrier")
        shipment = _one(early, queries.RECORD_SHIPMENT, {
            "tenant": tenant_id, "channel": channel.id, "order_ref": request.order_ref})
    assert shipment is not None
    if shipment.status != "creating":
        logger.info("event=shipment_exists tenant=%s shipment=%s status=%s", tenant_id,
                    shipment.id, shipment.status)
        return shipment
    created = carrier_client(channel, settings).create_shipment(
        str(shipment.idempotency_key), request.carrier_body())
    job = session()
    raw_connection(job).execute(queries.SHIPMENT_CREATED, {
        "id": shipment.id, "carrier_id": created.id, "tracking": created.tracking_number,
        "label": created.label_url})
    logger.info("event=shipment_created tenant=%s shipment=%s", tenant_id, shipment.id)
    return _one(job, queries.GET_SHIPMENT, {"id": shipment.id}) or shipment


def mark_failed(session: Session, request: ShipmentRequest, error: str) -> None:
    """A creation that will not be retried: the row says failed, with the error."""
    raw_connection(session).execute(queries.SHIPMENT_FAILED, {
        "channel": request.carrier_channel_id, "order_ref": request.order_ref, "error": error})


def track_shipment(
    session: Session, shipment_id: uuid.UUID, *, settings: CommerceSettings
) -> Shipment:
    """Read the carrier's tracking of a created shipment into its row."""
    shipment = _one(session, queries.GET_SHIPMENT, {"id": shipment_id})
    if shipment is None:
        raise ShipmentNotFound(f"no shipment {shipment_id} for this tenant")
    if shipment.carrier_shipment_id is None:
        return shipment  # not created with the carrier (yet, or it failed): nothing to track
    channel = get_channel(session, shipment.carrier_channel_id, platform="carrier")
    tracking = carrier_client(channel, settings).tracking(shipment.carrier_shipment_id)
    update_tracking(session, shipment.id, tracking.status, tracking.events)
    return _one(session, queries.GET_SHIPMENT, {"id": shipment.id}) or shipment


def update_tracking(session: Session, shipment_id: uuid.UUID, status: str,
                    events: list[dict[str, object]]) -> None:
    raw_connection(session).execute(queries.TRACKED, {
        "id": shipment_id, "status": status[:50], "events": Jsonb(events)})


def by_carrier_id(session: Session, carrier_shipment_id: str) -> Shipment:
    shipment = _one(session, queries.SHIPMENT_BY_CARRIER_ID, {"carrier_id": carrier_shipment_id})
    if shipment is None:
        raise ShipmentNotFound(f"no shipment with carrier id {carrier_shipment_id!r} "
                               "for this tenant")
    return shipment


def open_shipments(session: Session, limit: int = 1000) -> list[uuid.UUID]:
    """Shipments still moving (created, not delivered, failed or returned), stalest first."""
    rows = raw_connection(session).execute(queries.OPEN_SHIPMENTS, {"limit": limit}).fetchall()
    return [row[0] for row in rows]
