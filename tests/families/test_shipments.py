"""Shipments against a fake carrier: one label per order even when the carrier's answer is
lost, tracking read into the row, a refused address as a failed shipment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import dramatiq

from app.actors.shipping import enqueue_shipment, track, track_open
from app.db.tenant import tenant_session
from app.fakes import FakeCarrier
from app.jobs import enqueue, wait_for_results
from app.services.commerce.payloads import ShipmentRequest
from tests.families.conftest import carrier_channel
from tests.support import TestDB


def request(channel: uuid.UUID, order: str, country: str = "US") -> ShipmentRequest:
    return ShipmentRequest.model_validate({
        "carrier_channel_id": str(channel), "order_ref": order,
        "recipient": {"name": "Dana", "line1": "1 Main St", "city": "Springfield",
                      "postal_code": "12345", "country": country},
        "parcels": [{"weight_grams": 800}]})


def test_a_shipment_is_created_once_even_when_the_carrier_answer_is_lost(
    db: TestDB, worker: dramatiq.Worker, secret_key: str, carrier: FakeCarrier
) -> None:
    tenant = db.create_tenant("shop")
    channel = carrier_channel(tenant, carrier)
    carrier.fail_after_create(1)  # the label is made, but we are told 503
    with tenant_session(tenant) as session:
        first = enqueue_shipment(session, request(channel, "order-1"))
        assert enqueue_shipment(session, request(channel, "order-1")).duplicate
    job = wait_for_results([first.message_id], timeout=30, tenant=tenant)[first.message_id]
    assert job.status == "completed" and job.attempts == 2
    assert carrier.created == 1
    keys = {r.headers["idempotency-key"] for r in carrier.requests("/v1/shipments")}
    assert len(keys) == 1 and len(carrier.requests("/v1/shipments")) == 2
    assert db.query("SELECT status, carrier_shipment_id, tracking_number, error, "
                    "idempotency_key::text FROM shipments") == [
        ("created", "shp_1", "1Z00000001", None, keys.pop())]
    assert job.result == {"shipment_id": str(db.scalar("SELECT id FROM shipments")),
                          "status": "created", "tracking_number": "1Z00000001"}


def test_a_refused_address_fails_the_shipment_at_once_with_the_carriers_reason(
    db: TestDB, worker: dramatiq.Worker, secret_key: str, carrier: FakeCarrier
) -> None:
    tenant = db.create_tenant("shop")
    channel = carrier_channel(tenant, carrier)
    with tenant_session(tenant) as session:
        job_id = enqueue_shipment(session, request(channel, "order-2", country="ZZ")).message_id
    job = wait_for_results([job_id], timeout=30, tenant=tenant)[job_id]
    assert job.status == "dead" and job.attempts == 1
    assert job.last_error == "PermanentError: carrier HTTP 422: unsupported destination country"
    assert db.query("SELECT status, error FROM shipments") == [("failed", job.last_error)]
    assert carrier.created == 0


def test_tracking_reads_the_carriers_status_for_open_shipments(
    db: TestDB, worker: dramatiq.Worker, secret_key: str, carrier: FakeCarrier
) -> None:
    tenant = db.create_tenant("shop")
    channel = carrier_channel(tenant, carrier)
    with tenant_session(tenant) as session:
        ids = [enqueue_shipment(session, request(channel, f"order-{n}")).message_id
               for n in range(3)]
    wait_for_results(ids, timeout=30, tenant=tenant)
    carrier.set_status("shp_1", "delivered", "signed by Dana")
    carrier.set_status("shp_2", "in_transit", "left the depot")
    slot = datetime(2026, 12, 1, 10, tzinfo=UTC).isoformat()
    with tenant_session(tenant) as session:
        fan_out = enqueue(session, track_open, slot).message_id
    assert wait_for_results([fan_out], timeout=30, tenant=tenant)[fan_out].result == {
        "tracked": 3}
    tracks = [r[0] for r in db.query("SELECT message_id::text FROM dramatiq.queue "
                                     "WHERE actor_name = 'shipments.track'")]
    wait_for_results(tracks, timeout=30, tenant=tenant)
    assert dict(db.query("SELECT carrier_shipment_id, status FROM shipments")) == {
        "shp_1": "delivered", "shp_2": "in_transit", "shp_3": "created"}
    # The same slot fired twice tracks nothing twice; delivered shipments are not tracked.
    with tenant_session(tenant) as session:
        repeat = enqueue(session, track_open, slot).message_id
        again = enqueue(session, track_open,
                        datetime(2026, 12, 1, 11, tzinfo=UTC).isoformat()).message_id
    done = wait_for_results([repeat, again], timeout=30, tenant=tenant)
    assert done[again].result == {"tracked": 2}
    assert db.scalar("SELECT count(*) FROM dramatiq.queue "
                     "WHERE actor_name = 'shipments.track'") == 5
    with tenant_session(tenant) as session:
        unknown = enqueue(session, track, str(uuid.uuid4())).message_id
    dead = wait_for_results([unknown], timeout=30, tenant=tenant)[unknown]
    assert dead.status == "dead" and "ShipmentNotFound" in (dead.last_error or "")
