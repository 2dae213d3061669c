"""The adapters against their local fakes: pagination, 429 with Retry-After, error bodies,
and every failure classified retryable or permanent."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.fakes import FakeCarrier, FakeModel, FakeShopify, FakeSlack, FakeWooCommerce
from app.providers.carrier import CarrierClient
from app.providers.errors import PermanentError, RateLimited, RetryableError
from app.providers.http import Timeouts, retry_after
from app.providers.model import ModelClient, ModelSettings
from app.providers.shopify import ShopifyClient
from app.providers.slack import SlackClient, SlackSettings
from app.providers.woocommerce import WooCommerceClient

FAST = Timeouts(connect=2.0, read=5.0)


def walk(client: ShopifyClient | WooCommerceClient, resource: str, limit: int,
         since: datetime | None = None) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = client.fetch(resource, since=since, cursor=cursor, limit=limit)
        pages.append([r.external_id for r in page.records])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def test_shopify_pages_follow_the_link_header_and_send_only_what_page_info_allows(
    shopify: FakeShopify
) -> None:
    shopify.add_orders(12)
    client = ShopifyClient(shopify.url, shopify.access_token, FAST)
    pages = walk(client, "orders", 5)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert sorted(i for p in pages for i in p) == [str(1000 + n) for n in range(1, 13)]
    first, *later = shopify.page_requests("orders")
    assert first.param("status") == "any" and first.param("page_info") is None
    # The fake answers 400 to a page_info request carrying filters; these all succeeded.
    assert all(set(r.query) <= {"limit", "page_info"} for r in later) and len(later) == 2
    # Fulfilments come from the orders (odd ones have one), inventory from the variants.
    assert sum(len(p) for p in walk(client, "fulfillments", 5)) == 6
    shopify.add_products(3)
    inventory = client.fetch("inventory", since=None, cursor=None, limit=10)
    assert [r.data["inventory_quantity"] for r in inventory.records] == [1, 2, 3]


def test_shopify_incremental_fetch_starts_at_the_watermark(shopify: FakeShopify) -> None:
    shopify.add_orders(6)
    client = ShopifyClient(shopify.url, shopify.access_token, FAST)
    page = client.fetch("orders", since=None, cursor=None, limit=50)
    assert page.high_water is not None
    shopify.touch("orders", [1002, 1005], financial_status="refunded")
    changed = client.fetch("orders", since=page.high_water + timedelta(microseconds=1),
                           cursor=None, limit=50)
    assert [r.external_id for r in changed.records] == ["1002", "1005"]


def test_shopify_429_401_and_bad_page_info_are_classified(shopify: FakeShopify) -> None:
    client = ShopifyClient(shopify.url, shopify.access_token, FAST)
    shopify.throttle(1)
    with pytest.raises(RateLimited) as limited:
        client.fetch("orders", since=None, cursor=None, limit=5)
    assert limited.value.retry_after == 1.0 and "Exceeded 2 calls per second" in str(
        limited.value)
    with pytest.raises(PermanentError, match=r"HTTP 401: \[API\] Invalid API key"):
        ShopifyClient(shopify.url, "wrong", FAST).fetch("orders", since=None, cursor=None,
                                                        limit=5)
    with pytest.raises(PermanentError, match="HTTP 400: page_info: Invalid value"):
        client.fetch("orders", since=None, cursor="garbage", limit=5)


def test_woocommerce_pages_by_number_with_total_pages(woocommerce: FakeWooCommerce) -> None:
    woocommerce.add("orders", 7)
    woocommerce.add("products", 2)
    client = WooCommerceClient(woocommerce.url, "ck_test", "cs_test", FAST)
    assert walk(client, "orders", 3) == [["1", "2", "3"], ["4", "5", "6"], ["7"]]
    page = client.fetch("orders", since=None, cursor=None, limit=3)
    assert (page.total_pages, page.next_cursor) == (3, "2")
    inventory = client.fetch("inventory", since=None, cursor=None, limit=10)
    assert inventory.records[0].data.keys() == {
        "id", "sku", "stock_quantity", "stock_status", "manage_stock", "date_modified_gmt"}
    with pytest.raises(PermanentError, match="not in WooCommerce core"):
        client.fetch("fulfillments", since=None, cursor=None, limit=3)
    with pytest.raises(PermanentError, match="HTTP 401: Sorry, you cannot list resources"):
        WooCommerceClient(woocommerce.url, "ck_x", "cs_y", FAST).fetch(
            "orders", since=None, cursor=None, limit=3)
    with pytest.raises(PermanentError, match=r"HTTP 400: Invalid parameter\(s\): per_page"):
        client.fetch("orders", since=None, cursor=None, limit=500)


def test_carrier_creation_is_idempotent_and_errors_are_classified(carrier: FakeCarrier) -> None:
    client = CarrierClient(carrier.url, carrier.api_key, FAST)
    body = {"reference": "order-1", "recipient": {"country": "US"}, "parcels": []}
    carrier.fail_after_create(1)
    with pytest.raises(RetryableError, match="HTTP 503"):
        client.create_shipment("key-1", body)
    again = client.create_shipment("key-1", body)  # the retry gets the label made meanwhile
    assert carrier.created == 1 and again.id == "shp_1" and again.tracking_number
    with pytest.raises(PermanentError, match="HTTP 422: unsupported destination country"):
        client.create_shipment("key-2", {**body, "recipient": {"country": "ZZ"}})
    carrier.set_status("shp_1", "in_transit", "left the depot")
    tracking = client.tracking("shp_1")
    assert tracking.status == "in_transit" and tracking.events[0]["description"]
    with pytest.raises(PermanentError, match="HTTP 401"):
        CarrierClient(carrier.url, "wrong", FAST).tracking("shp_1")


def test_model_answers_429s_timeouts_and_refusals(model: FakeModel) -> None:
    settings = ModelSettings(model.base_url, model.api_key, "fake", FAST, 100, 0.2)
    client = ModelClient(settings)
    done = client.complete([{"role": "user", "content": "hello"}], user="tenant-1")
    assert done.text.startswith("Suggested reply") and done.completion_tokens == 5
    sent = model.calls("tenant-1")[0].json
    assert sent["stream"] is False and sent["model"] == "fake"
    with pytest.raises(RateLimited) as limited:
        client.complete([{"role": "user", "content": "again [429]"}])
    assert limited.value.retry_after == 1.0 and "Rate limit reached" in str(limited.value)
    with pytest.raises(RetryableError, match="HTTP 500"):
        client.complete([{"role": "user", "content": "[500]"}])
    with pytest.raises(PermanentError, match="HTTP 401: Incorrect API key"):
        ModelClient(ModelSettings(model.base_url, "sk-wrong", "fake", FAST, 100, 0.2)
                    ).complete([{"role": "user", "content": "x"}])
    with pytest.raises(PermanentError, match="AI_MODEL_API_KEY is not set"):
        ModelClient(ModelSettings(model.base_url, None, "fake", FAST, 100, 0.2)
                    ).complete([{"role": "user", "content": "x"}])
    model.latency = 1.0
    slow = ModelSettings(model.base_url, model.api_key, "fake", Timeouts(1.0, 0.2), 100, 0.2)
    with pytest.raises(RetryableError, match="timed out"):
        ModelClient(slow).complete([{"role": "user", "content": "x"}])


def test_slack_error_codes_and_rate_limits(slack: FakeSlack) -> None:
    slack.add_workspace("T1", "xoxb-one")
    settings = SlackSettings(slack.base_url, FAST)
    client = SlackClient(settings, "xoxb-one")
    assert client.post_ephemeral(channel="C1", user="U1", text="hi", thread_ts="1.2")
    assert slack.posted == [{"team": "T1", "channel": "C1", "user": "U1", "text": "hi",
                             "thread_ts": "1.2"}]
    slack.rate_limit(1)
    with pytest.raises(RateLimited) as limited:
        client.post_ephemeral(channel="C1", user="U1", text="hi")
    assert limited.value.retry_after == 1.0
    slack.missing_channels.add("C404")
    with pytest.raises(PermanentError, match="channel_not_found"):
        client.post_ephemeral(channel="C404", user="U1", text="hi")
    with pytest.raises(PermanentError, match="invalid_auth"):
        SlackClient(settings, "xoxb-revoked").post_ephemeral(channel="C1", user="U1", text="x")


def test_an_unreachable_provider_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = CarrierClient(f"http://127.0.0.1:{port}", "k", FAST)
    with pytest.raises(RetryableError, match="connection failed"):
        client.tracking("x")


def test_credentials_a_provider_echoes_are_redacted_from_errors() -> None:
    error = PermanentError("model", "Incorrect API key provided: sk-proj-ab****xyz. See "
                           "Authorization: Bearer abc.def and xoxb-1-2-3, shpat_123, ck_9")
    assert "ab****xyz" not in str(error) and "abc.def" not in str(error)
    assert str(error) == ("model: Incorrect API key provided: [redacted] See Authorization: "
                          "[redacted] and [redacted], [redacted], [redacted]")


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    assert retry_after("2") == 2.0 and retry_after("1.5") == 1.5
    later = retry_after(format_datetime(datetime.now(UTC) + timedelta(seconds=30),
                                        usegmt=True))
    assert later is not None and 25 < later <= 30
    assert retry_after(None) is None and retry_after("soon") is None
