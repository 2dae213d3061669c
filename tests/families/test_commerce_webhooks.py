"""Commerce webhooks: processed at high priority ahead of a sync backlog, through the
registered Shopify / WooCommerce / carrier handlers, with the stored event's status moving
ENQUEUED -> PROCESSING -> COMPLETED or FAILED."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
import pytest

from app.actors.commerce import WEBHOOK_ACTORS, process_webhook
from app.db.engine import raw_connection
from app.db.models import WebhookEvent
from app.db.tenant import tenant_session
from app.fakes import FakeShopify
from app.jobs import enqueue, wait_for_results
from app.services import webhooks
from tests.families.conftest import FAST, commerce_env, log_tail, shopify_channel, store
from tests.families.test_commerce_sync import records, sync
from tests.support import TestDB, wait_for

#: What a one-thread worker's consumer of a queue claims ahead at most (2 x threads).
SYNC_WINDOW = 2


def event(source: str, event_type: str, payload: dict[str, Any], event_id: str | None = None,
          ) -> dict[str, Any]:
    return {"source": source, "event_id": event_id or f"ev-{uuid.uuid4().hex[:8]}",
            "event_type": event_type, "payload": payload,
            "received_at": datetime.now(UTC).isoformat()}


def receive(tenant: uuid.UUID, data: dict[str, Any]) -> str:
    """What the intake does: store the event once and enqueue its processing, together."""
    with tenant_session(tenant) as session:
        session.add(WebhookEvent(tenant_id=tenant, source=data["source"],
                                 external_event_id=data["event_id"],
                                 event_type=data["event_type"], payload=data["payload"]))
        session.flush()
        return enqueue(session, WEBHOOK_ACTORS[data["source"]], data).message_id


def stored(tenant: uuid.UUID, event_id: str) -> tuple[Any, ...]:
    with tenant_session(tenant) as session:
        row = raw_connection(session).execute(
            "SELECT status, error, processed_at IS NOT NULL FROM webhook_events "
            "WHERE external_event_id = %s", (event_id,)).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.slow
def test_webhook_processing_overtakes_a_backlog_of_syncs(
    db: TestDB, broker: dramatiq.Broker, secret_key: str, shopify: FakeShopify,
    tmp_path: Path,
) -> None:
    tenant = db.create_tenant("busy shop")
    channels = [shopify_channel(tenant, shopify, f"shop {n}") for n in range(10)]
    shopify.add_orders(3)
    shopify.latency = 0.3  # each sync is one slow page
    log = tmp_path / "worker.log"
    db.start_worker(queues=["shopify-sync", "webhook-processing"], threads=1, log=log,
                    **FAST, **commerce_env(secret_key))
    backlog = [sync(tenant, channel, "orders") for channel in channels]
    wait_for(lambda: shopify.requests(), timeout=40,
             message=f"the first sync to start\n{log_tail(log)}")
    hooks = [receive(tenant, event("shopify", "orders/updated", {
        "id": 1001, "channel_id": str(channels[0]), "updated_at": "2030-01-01T00:00:00Z",
        "financial_status": "refunded"})) for _ in range(3)]
    # The syncs nobody had claimed yet once the webhooks were in (a sync claimed into the
    # worker's window before that may run first: it is no longer waiting).
    waiting = {str(m) for (m,) in db.query(
        "SELECT message_id FROM dramatiq.queue WHERE actor_name = 'shopify.sync'"
        " AND state = 'queued'")}
    done = wait_for_results(backlog + hooks, timeout=90, tenant=tenant)
    assert {j.status for j in done.values()} == {"completed"}, log_tail(log)
    last_hook = max(done[h].finished_at for h in hooks if done[h].finished_at)
    # One thread runs one job at a time, so finishing after the last webhook means running
    # after it (started_at is the claim: a sync can be claimed into the window while the
    # webhooks run, and wait there behind them).
    before = [s for s in waiting if not done[s].finished_at or done[s].finished_at < last_hook]
    # The syncs still waiting when the webhooks arrived ran after them, but for what the sync
    # queue's consumer could claim into its window (dramatiq's prefetch for one thread: 2)
    # while a webhook's claim was on its way: each queue has a consumer and a window of its
    # own. In order of arrival they would all have run first.
    assert len(waiting) >= 6 and len(before) <= SYNC_WINDOW, (len(waiting), before)
    assert {done[h].result["event_type"] for h in hooks} == {"orders/updated"}


def test_store_and_carrier_webhooks_update_records_and_their_status(
    db: TestDB, worker: dramatiq.Worker, secret_key: str, shopify: FakeShopify,
) -> None:
    tenant = db.create_tenant("shop")
    shop = shopify_channel(tenant, shopify)
    woo = store(tenant, "woocommerce", "https://woo.example",
                {"consumer_key": "ck", "consumer_secret": "cs"}, "woo")
    newer = event("shopify", "orders/updated",
                  {"id": 77, "updated_at": "2026-12-01T10:00:00Z", "note": "newer"})
    older = event("shopify", "orders/updated",
                  {"id": 77, "updated_at": "2026-12-01T09:00:00Z", "note": "older"})
    product = event("woocommerce", "product.updated",
                    {"id": 5, "date_modified_gmt": "2026-12-01T10:00:00", "channel_id": str(woo)})
    ignored = event("shopify", "app/uninstalled", {"id": 1})
    broken = event("shopify", "orders/create", {"name": "#1"})  # no id
    ids = {}
    for name, data in (("newer", newer), ("older", older), ("product", product),
                       ("ignored", ignored), ("broken", broken)):
        ids[name] = receive(tenant, data)
        wait_for_results([ids[name]], timeout=30, tenant=tenant)  # in order: newer first
    assert records(tenant, "orders") == {"77": (1, "webhook")}
    with tenant_session(tenant) as session:
        note = raw_connection(session).execute(
            "SELECT data->>'note', channel_id FROM commerce_records WHERE external_id = '77'"
        ).fetchone()
    assert note == ("newer", shop)  # the late, older version did not overwrite it
    assert records(tenant, "products") == {"5": (1, "webhook")}
    for name in ("newer", "older", "product", "ignored"):
        assert stored(tenant, dict(newer=newer, older=older, product=product,
                                   ignored=ignored)[name]["event_id"]) == (
            "COMPLETED", None, True), name
    status, error, processed = stored(tenant, broken["event_id"])
    assert (status, processed) == ("FAILED", True)
    assert error == "BadWebhookPayload: shopify orders/create payload has no id"
    assert db.scalar("SELECT attempts FROM dramatiq.queue WHERE message_id = %s",
                     (ids["broken"],)) == 1
    # High priority, on its own queue.
    assert process_webhook.queue_name == "webhook-processing"
    assert db.scalar("SELECT priority FROM dramatiq.queue WHERE message_id = %s",
                     (ids["newer"],)) == 100
    assert {"shopify", "woocommerce", "carrier"} <= set(webhooks.HANDLERS)


def test_a_carrier_webhook_updates_its_tenants_shipment_only(
    db: TestDB, worker: dramatiq.Worker, secret_key: str,
) -> None:
    tenant, other = db.create_tenant("shop"), db.create_tenant("other")
    carrier = store(tenant, "carrier", "https://carrier.example", {"api_key": "k"}, "carrier")
    with tenant_session(tenant) as session:
        raw_connection(session).execute(
            "INSERT INTO shipments (tenant_id, carrier_channel_id, order_ref, status, "
            "carrier_shipment_id) VALUES (%s, %s, 'order-1', 'created', 'shp_9')",
            (tenant, carrier))
    update = event("carrier", "tracking.updated", {
        "shipment_id": "shp_9", "status": "delivered",
        "events": [{"status": "delivered", "description": "left at the door"}]})
    done = wait_for_results([receive(tenant, update)], timeout=30, tenant=tenant)
    assert {j.status for j in done.values()} == {"completed"}
    assert db.query("SELECT status, tracking_events->0->>'description' FROM shipments") == [
        ("delivered", "left at the door")]
    # The same update sent in another tenant's name finds no such shipment there: an error
    # worth retrying (the shipment may not be committed yet), and nothing changes.
    forged_event = event("carrier", "tracking.updated", {"shipment_id": "shp_9",
                                                         "status": "lost"})
    forged = receive(other, forged_event)
    error = wait_for(lambda: db.scalar("SELECT last_error FROM dramatiq.queue "
                                       "WHERE message_id = %s", (forged,)),
                     timeout=30, message="the forged update to fail")
    assert error == "ShipmentNotFound: no shipment with carrier id 'shp_9' for this tenant"
    assert db.scalar("SELECT status FROM shipments") == "delivered"
    assert stored(other, forged_event["event_id"])[:2] == ("ENQUEUED", error)
