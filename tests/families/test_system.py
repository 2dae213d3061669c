"""Plan 004's system tests, against the real PostgreSQL, a real worker process and the fake
stores and carrier: connection, health, queues present, deterministic ids, duplicates,
worker start/stop, processing, retry, dead letters, pause / resume, clear."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dramatiq
import psycopg
import pytest

from app.actors import commerce, shipping
from app.actors.commerce import enqueue_sync
from app.actors.shipping import enqueue_shipment
from app.db.tenant import tenant_session
from app.fakes import FakeCarrier, FakeShopify
from app.jobs import get_job, wait_for_results
from app.jobs.policies import policy_for
from app.services.commerce.payloads import sync_key
from tests.families.conftest import (
    FAST,
    carrier_channel,
    commerce_env,
    holds_for,
    log_tail,
    shopify_channel,
)
from tests.families.test_commerce_webhooks import event, receive
from tests.families.test_shipments import request
from tests.support import Run, TestDB, wait_for

Cli = Callable[..., Run]
QUEUES = ["shopify-sync", "woocommerce-sync", "webhook-processing", "channel-sync",
          "shipment-create", "shipment-tracking"]


def test_connections_for_every_role(db: TestDB) -> None:
    for url in (db.owner_url, db.app_url, db.worker_url):
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_six_queues_are_declared_with_their_policies(broker: dramatiq.Broker) -> None:
    declared = broker.get_declared_queues()
    assert set(QUEUES) <= declared
    for queue in QUEUES:
        policy = policy_for(queue)
        assert 3 <= policy.max_attempts <= 5, queue
        assert policy.completed_max_age == 24 * 3600 and policy.failed_max_age == 7 * 24 * 3600
    limits = broker.queue_limits  # type: ignore[attr-defined]
    assert limits["shopify-sync"].concurrency == 1 == limits["woocommerce-sync"].concurrency
    assert commerce.shopify_sync.options["limit_key"] is commerce.channel_key
    assert commerce.process_webhook.options["job_priority"] == 100
    assert shipping.create.queue_name == "shipment-create"
    assert shipping.track.queue_name == "shipment-tracking"
    assert commerce.sync_channel.queue_name == "channel-sync"


def test_deterministic_ids_make_concurrent_duplicates_one_job(
    db: TestDB, broker: dramatiq.Broker, secret_key: str, shopify: FakeShopify,
    carrier: FakeCarrier,
) -> None:
    tenant = db.create_tenant("shop")
    shop = shopify_channel(tenant, shopify)
    carrier_account = carrier_channel(tenant, carrier)

    def enqueue_once(_: int) -> str:
        with tenant_session(tenant) as session:
            return enqueue_sync(session, shop, "orders").message_id

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(enqueue_once, range(24)))
    assert len(ids) == 1
    assert db.query("SELECT unique_key FROM dramatiq.queue") == [
        (f"shopify-orders-channel-{shop}",)]
    assert sync_key("shopify", "orders", shop) == f"shopify-orders-channel-{shop}"
    with tenant_session(tenant) as session:
        first = enqueue_shipment(session, request(carrier_account, "order-9"))
        second = enqueue_shipment(session, request(carrier_account, "order-9"))
    assert (first.duplicate, second.duplicate) == (False, True)
    assert first.message_id == second.message_id
    # Keys are per tenant: another tenant's job under the same key is its own.
    other = db.create_tenant("other")
    other_shop = shopify_channel(other, shopify)
    with tenant_session(other) as session:
        assert enqueue_sync(session, other_shop, "orders").message_id not in ids


@pytest.mark.slow
def test_worker_lifecycle_processing_retry_dead_letters_pause_resume_and_clear(
    db: TestDB, broker: dramatiq.Broker, secret_key: str, shopify: FakeShopify,
    carrier: FakeCarrier, cli: Cli, tmp_path: Path,
) -> None:
    tenant = db.create_tenant("shop")
    shops = [shopify_channel(tenant, shopify, f"shop {n}") for n in range(4)]
    carrier_account = carrier_channel(tenant, carrier)
    shopify.add_orders(6)

    # Health before any worker: the database and migrations are fine, workers are missing.
    unhealthy = cli("health", "--json")
    assert unhealthy.code == 1
    assert {c["name"]: c["status"] for c in unhealthy.json["checks"]}["workers"] == "fail"

    log = tmp_path / "worker.log"
    proc = db.start_worker(queues=QUEUES, threads=2, log=log, **FAST,
                           **commerce_env(secret_key, JOBS_SHUTDOWN_TIMEOUT="20"))
    wait_for(lambda: db.scalar("SELECT count(*) FROM jobs.workers WHERE alive") == 1,
             timeout=40, message=f"the worker to start\n{log_tail(log)}")
    assert set(QUEUES) <= set(db.scalar("SELECT queues FROM dramatiq.workers"))
    healthy = cli("health", "--json")
    assert healthy.code == 0 and healthy.json["healthy"] is True

    # Processing.
    with tenant_session(tenant) as session:
        synced = enqueue_sync(session, shops[0], "orders").message_id
    assert wait_for_results([synced], timeout=40, tenant=tenant)[synced].status == "completed"

    # Retry: the carrier's answer is lost once; the retry gets the same label.
    carrier.fail_after_create(1)
    with tenant_session(tenant) as session:
        retried = enqueue_shipment(session, request(carrier_account, "order-1")).message_id
        refused = enqueue_shipment(session, request(carrier_account, "order-2", "ZZ")
                                   ).message_id
    done = wait_for_results([retried, refused], timeout=40, tenant=tenant)
    assert (done[retried].status, done[retried].attempts) == ("completed", 2)
    assert carrier.created == 1

    # Dead letters: listed with their error, replayed once the cause is fixed.
    assert done[refused].status == "dead"
    dead = cli("failed", "--queue", "shipment-create", "--json").json
    assert [(d["message_id"], d["last_error"]) for d in dead] == [
        (refused, "PermanentError: carrier HTTP 422: unsupported destination country")]
    carrier.countries = (*carrier.countries, "ZZ")
    assert cli("retry", refused).code == 0
    replayed = wait_for_results([refused], timeout=40, tenant=tenant)[refused]
    assert replayed.status == "completed" and carrier.created == 2
    assert db.scalar("SELECT status FROM shipments WHERE order_ref = 'order-2'") == "created"

    # Pause: syncs wait while the worker goes on with other queues; resume runs them.
    assert cli("pause", "shopify-sync").code == 0
    with tenant_session(tenant) as session:
        paused = enqueue_sync(session, shops[1], "orders").message_id
    hook = receive(tenant, event("shopify", "orders/updated", {
        "id": 5, "channel_id": str(shops[0]), "updated_at": "2030-01-01T00:00:00Z"}))
    assert wait_for_results([hook], timeout=40, tenant=tenant)[hook].status == "completed"
    # Well past a consumer's claim interval (1 s), the sync is still waiting.
    holds_for(1.5, lambda: get_job(paused, tenant=tenant).status == "waiting",
              "a sync of the paused queue started")
    assert cli("resume", "shopify-sync").code == 0
    assert wait_for_results([paused], timeout=40, tenant=tenant)[paused].status == "completed"

    # Clear: waiting syncs of a paused queue are deleted and never run.
    assert cli("pause", "shopify-sync").code == 0
    with tenant_session(tenant) as session:
        cleared = [enqueue_sync(session, s, "products").message_id for s in shops[1:]]
    stats = {r["queue"]: r for r in cli("stats", "--json").json}
    assert stats["shopify-sync"]["waiting"] == 3 and stats["shopify-sync"]["paused"]
    gone = cli("clear", "shopify-sync", "--json")
    assert gone.code == 0 and gone.json["deleted"] == 3
    assert cli("resume", "shopify-sync").code == 0
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE message_id = ANY(%s)",
                     ([uuid.UUID(c) for c in cleared],)) == 0
    assert not shopify.page_requests("products")

    # Stop: SIGTERM lets the sync in hand finish, then the worker leaves.
    shopify.hold("orders", 1)
    with tenant_session(tenant) as session:
        in_hand = enqueue_sync(session, shops[2], "orders").message_id
    wait_for(lambda: get_job(in_hand, tenant=tenant).status == "active", timeout=30,
             message="the last sync to start")
    proc.terminate()
    wait_for(lambda: "Shutting down" in log.read_text(), message="the worker to stop")
    shopify.release()
    assert proc.wait(timeout=30) == 0, log_tail(log)
    assert get_job(in_hand, tenant=tenant).status == "completed"
    assert db.scalar("SELECT count(*) FROM dramatiq.workers") == 0
