"""Store syncs with real worker processes against fake Shopify and WooCommerce: all pages,
incremental from the watermark, resumed after a SIGKILL without duplicates, duplicate
enqueues as no-ops, one sync at a time per channel, and another tenant kept out."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import dramatiq
import psycopg
import pytest

from app.actors.commerce import enqueue_sync, shopify_sync
from app.db.engine import raw_connection
from app.db.tenant import tenant_session
from app.fakes import FakeShopify, FakeWooCommerce
from app.jobs import enqueue, get_job, wait_for_results
from app.services.commerce.channels import ChannelNotFound
from tests.families.conftest import FAST, commerce_env, log_tail, shopify_channel, store
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow  # real worker processes


def sync(tenant: uuid.UUID, channel: uuid.UUID, resource: str, **options: Any) -> str:
    with tenant_session(tenant) as session:
        return enqueue_sync(session, channel, resource, **options).message_id


def records(tenant: uuid.UUID, resource: str | None = None) -> dict[str, tuple[int, str]]:
    """external id -> (writes, source), read as the tenant's application code would."""
    with tenant_session(tenant) as session:
        rows = raw_connection(session).execute(
            "SELECT external_id, writes, source FROM commerce_records "
            "WHERE %(r)s::text IS NULL OR resource = %(r)s", {"r": resource}).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def cursor(db: TestDB, channel: uuid.UUID, resource: str) -> dict[str, Any]:
    with db.owner() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM sync_cursors WHERE channel_id = %s AND resource = %s",
                          (channel, resource)).fetchone()
    return row or {}


def test_a_sync_pages_through_everything_then_fetches_only_changes(
    db: TestDB, broker: dramatiq.Broker, secret_key: str, shopify: FakeShopify,
    woocommerce: FakeWooCommerce, tmp_path: Path,
) -> None:
    tenant = db.create_tenant("shop owner")
    shop = shopify_channel(tenant, shopify)
    woo = store(tenant, "woocommerce", woocommerce.url,
                {"consumer_key": "ck_test", "consumer_secret": "cs_test"}, "woo")
    shopify.add_orders(23)
    woocommerce.add("products", 7)
    log = tmp_path / "worker.log"
    db.start_worker(queues=["shopify-sync", "woocommerce-sync"], threads=2, log=log, **FAST,
                    **commerce_env(secret_key))

    first = sync(tenant, shop, "orders", page_size=5)
    stock = sync(tenant, woo, "inventory", page_size=3)
    done = wait_for_results([first, stock], timeout=60, tenant=tenant)
    assert done[first].status == "completed", f"{done[first].last_error}\n{log_tail(log)}"
    assert done[first].result["pages"] == 5 and done[first].result["records"] == 23
    assert done[first].result["resumed"] is False
    assert done[stock].result["pages"] == 3 and done[stock].result["records"] == 7
    assert set(records(tenant, "orders").values()) == {(1, "sync")}
    assert len(records(tenant, "orders")) == 23 and len(records(tenant, "inventory")) == 7
    assert done[first].progress is not None and done[first].progress >= 50
    watermark = done[first].result["since"]
    assert cursor(db, shop, "orders")["runs"] == 1

    # Three orders change; the store throttles once (waited out inside the job).
    shopify.touch("orders", [1003, 1010, 1020], financial_status="refunded")
    shopify.throttle(1)
    before = len(shopify.page_requests("orders"))
    again = sync(tenant, shop, "orders", page_size=5)
    assert again != first  # the first sync finished: its key is free again
    later = wait_for_results([again], timeout=60, tenant=tenant)[again]
    assert later.status == "completed" and later.attempts == 1, later.last_error
    (request,) = shopify.page_requests("orders")[before:]
    assert request.param("updated_at_min") is not None
    assert request.param("updated_at_min") <= (later.result["since"] or "")
    assert watermark is not None and later.result["since"] > watermark
    changed = {k for k, (writes, _) in records(tenant, "orders").items() if writes == 2}
    assert changed == {"1003", "1010", "1020"} and later.result["records"] == 3
    assert [r.status for r in shopify.requests()].count(429) == 1


def test_a_sync_killed_mid_way_resumes_from_its_cursor_without_duplicates(
    db: TestDB, broker: dramatiq.Broker, secret_key: str, shopify: FakeShopify,
    tmp_path: Path,
) -> None:
    tenant = db.create_tenant("shop owner")
    shop = shopify_channel(tenant, shopify)
    shopify.add_orders(30)
    shopify.hold("orders", 4)  # the 4th page hangs until released: the worker dies there
    first = db.start_worker(queues=["shopify-sync"], threads=2, log=tmp_path / "first.log",
                            **FAST, **commerce_env(secret_key))
    job_id = sync(tenant, shop, "orders", page_size=5)
    wait_for(lambda: cursor(db, shop, "orders").get("run_pages") == 3
             and len(shopify.requests("/admin")) == 4, timeout=40,
             message=f"three pages committed, the fourth asked\n{log_tail(tmp_path / 'first.log')}")
    assert len(records(tenant, "orders")) == 15
    # While it runs (and while its worker is dead), enqueueing it again is a no-op.
    with tenant_session(tenant) as session:
        duplicate = enqueue_sync(session, shop, "orders", page_size=5)
    assert duplicate.duplicate and duplicate.message_id == job_id

    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    with tenant_session(tenant) as session:
        assert enqueue_sync(session, shop, "orders").message_id == job_id
    shopify.release()  # the dead worker's request completes into a closed socket
    log = tmp_path / "second.log"
    db.start_worker(queues=["shopify-sync"], threads=2, log=log, **FAST,
                    **commerce_env(secret_key))
    done = wait_for_results([job_id], timeout=60, tenant=tenant)[job_id]
    assert done.status == "completed", f"{done.last_error}\n{log_tail(log)}"
    assert done.attempts == 2 and done.result["resumed"] is True
    assert (done.result["pages"], done.result["records"]) == (6, 30)
    # Every record written exactly once; the walk never started over: one first-page
    # request in all, and only the page in flight at the kill was asked twice.
    assert len(records(tenant, "orders")) == 30
    assert set(records(tenant, "orders").values()) == {(1, "sync")}
    asked = [r.param("page_info") for r in shopify.requests("/admin")]
    assert asked.count(None) == 1
    assert len(asked) == 7 and len(set(asked)) == 6 and asked[3] == asked[4]
    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == 1


def test_one_sync_at_a_time_per_channel_while_other_channels_go_on(
    db: TestDB, broker: dramatiq.Broker, secret_key: str, tmp_path: Path,
) -> None:
    tenant = db.create_tenant("two shops")
    with FakeShopify() as first_shop, FakeShopify() as second_shop:
        one, two = shopify_channel(tenant, first_shop, "one"), shopify_channel(
            tenant, second_shop, "two")
        for fake in (first_shop, second_shop):
            fake.add_orders(12)
            fake.add_products(12)
        first_shop.hold("orders", 2)
        log = tmp_path / "worker.log"
        db.start_worker(queues=["shopify-sync"], threads=4, log=log, **FAST,
                        **commerce_env(secret_key))
        held = sync(tenant, one, "orders", page_size=4)
        wait_for(lambda: len(first_shop.requests("/admin")) == 2, timeout=40,
                 message=f"the first channel's sync to hang on page 2\n{log_tail(log)}")
        products = sync(tenant, one, "products", page_size=4)
        others = [sync(tenant, two, "orders", page_size=4),
                  sync(tenant, two, "products", page_size=4)]
        # The other channel's syncs run to the end while channel one's sync hangs...
        done = wait_for_results(others, timeout=60, tenant=tenant)
        assert {j.status for j in done.values()} == {"completed"}, log_tail(log)
        # ...and channel one's second sync waits its turn, unclaimed, in the table.
        assert get_job(products, tenant=tenant).status == "waiting"
        assert not first_shop.page_requests("products")
        status = db.query("SELECT running, waiting FROM jobs.limit_status "
                          "WHERE queue = 'shopify-sync' AND key = %s", (str(one),))
        assert status == [(1, 1)]
        first_shop.release()
        wait_for_results([held, products], timeout=60, tenant=tenant)
        # On each channel, one resource's pages all came before the other's.
        for fake in (first_shop, second_shop):
            order = [r.path.rsplit("/", 1)[-1] for r in fake.requests("/admin")]
            assert order == sorted(order, key=order.index) and len(set(order)) == 2
            assert order.index("products.json") in (0, order.count("orders.json"))


def test_another_tenant_cannot_sync_read_or_write_a_channel_it_does_not_own(
    db: TestDB, worker: dramatiq.Worker, secret_key: str, shopify: FakeShopify,
) -> None:
    owner = db.create_tenant("owner")
    shop = shopify_channel(owner, shopify)
    attacker = db.create_tenant("attacker")
    with tenant_session(attacker) as session, pytest.raises(ChannelNotFound):
        enqueue_sync(session, shop, "orders")
    # Bypassing the helper: a sync job naming the victim's channel, in the attacker's name.
    with tenant_session(attacker) as session:
        forged = enqueue(session, shopify_sync, {"channel_id": str(shop), "resource": "orders"},
                         unique_key="x").message_id
    job = wait_for_results([forged], timeout=30, tenant=attacker)[forged]
    assert job.status == "dead" and job.attempts == 1
    assert job.last_error == f"ChannelNotFound: no channel {shop} for this tenant"
    assert shopify.requests() == [] and cursor(db, shop, "orders") == {}
    with tenant_session(attacker) as session:
        raw = raw_connection(session)
        for table in ("commerce_channels", "commerce_records", "sync_cursors", "shipments"):
            assert raw.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        assert raw.execute("UPDATE commerce_channels SET base_url = 'https://evil.example' "
                           "WHERE id = %s", (shop,)).rowcount == 0
    with pytest.raises(psycopg.errors.ForeignKeyViolation), tenant_session(attacker) as s:
        # Its own tenant id, the victim's channel: the composite key refuses the pairing.
        raw_connection(s).execute(
            "INSERT INTO commerce_records (tenant_id, channel_id, resource, external_id, data)"
            " VALUES (%s, %s, 'orders', '1', '{}')", (attacker, shop))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), tenant_session(attacker) as s:
        raw_connection(s).execute(
            "INSERT INTO commerce_records (tenant_id, channel_id, resource, external_id, data)"
            " VALUES (%s, %s, 'orders', '1', '{}')", (owner, shop))
    assert db.scalar("SELECT base_url FROM commerce_channels WHERE id = %s", (shop,)) == (
        shopify.url)
    credentials = bytes(db.scalar("SELECT credentials FROM commerce_channels"))
    assert shopify.access_token.encode() not in credentials
