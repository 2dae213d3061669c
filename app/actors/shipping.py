"""Shipments (plan 004): ``shipments.create`` (queue ``shipment-create``) and tracking
(``shipment-tracking``) against a carrier account.

``shipments.create`` is unique per (carrier account, order) and safe to retry: its carrier
call carries an idempotency key recorded before the call. ``shipments.track_open`` (fired
per tenant by the scheduler, e.g. hourly) enqueues one ``shipments.track`` per open
shipment, unique per (shipment, slot).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.jobs import EnqueueResult, current_session, current_tenant, enqueue, job
from app.jobs.context import separate_session
from app.jobs.hooks import FailedAttempt
from app.providers.errors import PermanentError
from app.sealing import SealingError
from app.services.commerce import shipments
from app.services.commerce.channels import ChannelNotFound
from app.services.commerce.payloads import ShipmentRequest, shipment_key
from app.services.commerce.settings import CommerceSettings
from app.services.recurring import SLOT_UNIQUE_WINDOW, parse_slot

PERMANENT = (ValidationError, PermanentError, ChannelNotFound, SealingError)


def _shipment(shipment: shipments.Shipment) -> dict[str, Any]:
    return {"shipment_id": str(shipment.id), "status": shipment.status,
            "tracking_number": shipment.tracking_number}


def _create_failed(session: Session, attempt: FailedAttempt) -> None:
    if not attempt.final or not attempt.args:
        return
    try:
        request = ShipmentRequest.model_validate(attempt.args[0])
    except ValidationError:
        return
    shipments.mark_failed(session, request, attempt.error)


@job(actor_name="shipments.create", queue_name="shipment-create", throws=PERMANENT,
     on_failure=_create_failed)
def create(request: dict[str, Any]) -> dict[str, Any]:
    tenant = current_tenant()
    assert tenant is not None
    shipment = shipments.create_shipment(
        current_session, tenant, ShipmentRequest.model_validate(request),
        record=separate_session, settings=CommerceSettings.from_env())
    return _shipment(shipment)


def enqueue_shipment(session: Session, request: ShipmentRequest) -> EnqueueResult:
    """Enqueue the creation of an order's shipment in ``session``'s transaction (a no-op
    while one for the same carrier account and order is waiting or running)."""
    return enqueue(session, create, request.model_dump(mode="json"),
                   unique_key=shipment_key(request.carrier_channel_id, request.order_ref))


@job(actor_name="shipments.track", queue_name="shipment-tracking",
     unique_window=SLOT_UNIQUE_WINDOW, throws=(*PERMANENT, shipments.ShipmentNotFound, ValueError))
def track(shipment_id: str) -> dict[str, Any]:
    shipment = shipments.track_shipment(current_session(), uuid.UUID(shipment_id),
                                        settings=CommerceSettings.from_env())
    return _shipment(shipment)


@job(actor_name="shipments.track_open", queue_name="shipment-tracking",
     unique_window=SLOT_UNIQUE_WINDOW, throws=(ValueError,))
def track_open(slot: str) -> dict[str, int]:
    parse_slot(slot)
    session = current_session()
    open_ids = shipments.open_shipments(session)
    for shipment_id in open_ids:
        enqueue(session, track, str(shipment_id),
                unique_key=f"shipment-tracking-{shipment_id}-{slot}")
    return {"tracked": len(open_ids)}
