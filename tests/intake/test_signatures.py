"""Each source's signature scheme: good, bad, stale, and secrets during and after a rotation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx

from app.intake import admin, signatures
from tests.intake.conftest import Intake, counts, make_sender, post_signed
from tests.support import TestDB, wait_for

SHOPIFY_HEADERS = {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "wh-1"}


def test_generic_hmac_header_with_or_without_prefix(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db, "greeninvoice")
    body = b'{"id": 42, "type": "invoice.created"}'
    bare = signatures.sign_hex(sender.secret, body).removeprefix("sha256=")
    reply = intake.client.post(sender.path, content=body, headers={
        "content-type": "application/json", "X-Webhook-Signature": bare})
    assert reply.status_code == 202
    assert db.query("SELECT external_event_id, event_type FROM webhook_events") == [
        ("42", "invoice.created")]
    assert post_signed(intake, sender, body, secret="x" * 20).status_code == 401


def test_whatsapp_signs_with_metas_header(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db, "whatsapp")
    body = (b'{"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": '
            b'[{"field": "messages", "value": {"messages": [{"id": "wamid.1"}]}}]}]}')
    good = intake.client.post(sender.path, content=body, headers={
        "content-type": "application/json",
        "X-Hub-Signature-256": signatures.sign_hex(sender.secret, body)})
    assert good.status_code == 202
    assert db.query("SELECT external_event_id, event_type FROM webhook_events") == [
        ("wamid.1", "messages")]
    bad = intake.client.post(sender.path, content=body, headers={
        "content-type": "application/json", "X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert bad.status_code == 401


def test_shopify_by_shop_domain_and_base64_hmac(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db, "shopify", key="Acme.myshopify.com")
    domain = {"X-Shopify-Shop-Domain": "acme.myshopify.com", **SHOPIFY_HEADERS}
    good = post_signed(intake, sender, {"id": 1001}, path="/webhooks/shopify", headers=domain)
    assert good.status_code == 202, good.text
    assert db.query("SELECT tenant_id, external_event_id, event_type FROM webhook_events") == [
        (sender.tenant, "wh-1", "orders/create")]
    bad = post_signed(intake, sender, {"id": 1001}, secret="wrong-secret",
                      path="/webhooks/shopify", headers={**domain, "X-Shopify-Webhook-Id": "2"})
    assert bad.status_code == 401
    unknown = post_signed(intake, sender, {"id": 1}, path="/webhooks/shopify",
                          headers={**SHOPIFY_HEADERS, "X-Shopify-Shop-Domain": "other.shop"})
    assert unknown.status_code == 404
    no_topic = post_signed(intake, sender, {"id": 1}, path="/webhooks/shopify", headers={
        "X-Shopify-Shop-Domain": "acme.myshopify.com", "X-Shopify-Webhook-Id": "3"})
    assert no_topic.status_code == 400 and "X-Shopify-Topic" in no_topic.json()["detail"]


def test_woocommerce_base64_hmac(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db, "woocommerce")
    headers = {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Delivery-ID": "d-9"}
    assert post_signed(intake, sender, {"id": 7}, headers=headers).status_code == 202
    assert post_signed(intake, sender, {"id": 7}, secret="wrong-secret",
                       headers={**headers, "X-WC-Webhook-Delivery-ID": "d-10"}
                       ).status_code == 401


def slack_post(intake: Intake, path: str, secret: str, body: bytes, *,
               timestamp: int | None = None) -> httpx.Response:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return intake.client.post(path, content=body, headers={
        "content-type": "application/json", "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signatures.sign_slack(secret, body, ts)})


def test_slack_v0_signature_stale_timestamp_and_challenge(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db, "slack", key="T0ACME")
    challenge = b'{"type": "url_verification", "token": "x", "challenge": "c-123"}'
    reply = slack_post(intake, sender.path, sender.secret, challenge)
    assert reply.status_code == 200 and reply.json() == {"challenge": "c-123"}
    event = (b'{"type": "event_callback", "team_id": "T0ACME", "event_id": "Ev1", '
             b'"event": {"type": "reaction_added"}}')
    assert slack_post(intake, "/slack/events", sender.secret, event).status_code == 202
    assert slack_post(intake, "/slack/events", "wrong-secret", event).status_code == 401
    stale = slack_post(intake, "/slack/events", sender.secret, event,
                       timestamp=int(time.time()) - 6 * 60)
    assert stale.status_code == 401 and stale.json()["error"] == "stale_timestamp"
    future = slack_post(intake, "/slack/events", sender.secret, event,
                        timestamp=int(time.time()) + 6 * 60)
    assert future.status_code == 401
    no_ts = intake.client.post("/slack/events", content=event,
                               headers={"content-type": "application/json"})
    assert no_ts.status_code == 401 and no_ts.json()["error"] == "missing_timestamp"
    # url_verification on the team-id route has no team id: the token URL is the way.
    assert slack_post(intake, "/slack/events", sender.secret, challenge).status_code == 404
    assert counts(db)["webhook_events"] == 1


def test_rotation_both_verify_then_only_the_new_one(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    old = sender.secret
    assert post_signed(intake, sender, {"event_id": "before"}).status_code == 202
    new = admin.rotate_secret(sender.tenant, sender.endpoint_id, grace=timedelta(hours=1))
    rows = db.query("SELECT retired_at IS NOT NULL, retired_at > now() FROM webhook_secrets "
                    "ORDER BY created_at")
    assert rows == [(True, True), (False, None)]  # the old one retires in an hour
    # The NOTIFY reaches the process's cache: the new secret verifies at once-ish.
    n = iter(range(1000))
    wait_for(lambda: post_signed(intake, sender, {"event_id": f"new-{next(n)}"},
                                 secret=new.value).status_code == 202,
             message="the new secret to verify")
    assert post_signed(intake, sender, {"event_id": "old-during"}, secret=old).status_code == 202
    # Retiring the old one ends it: only the new one verifies.
    assert admin.retire_secret(sender.tenant, sender.secret_id)
    wait_for(lambda: post_signed(intake, sender, {"event_id": f"old-after-{next(n)}"},
                                 secret=old).status_code == 401,
             message="the retired secret to stop verifying")
    assert post_signed(intake, sender, {"event_id": "new-after"},
                       secret=new.value).status_code == 202


def test_a_secret_retiring_at_a_set_time_stops_verifying_then(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    admin.retire_secret(sender.tenant, sender.secret_id, datetime.now(UTC) + timedelta(seconds=1))
    n = iter(range(1000))
    wait_for(lambda: post_signed(intake, sender, {"event_id": f"e-{next(n)}"}).status_code == 401,
             message="the secret to pass its retirement time")
    # Time-based retirement is checked at each request, cache or no cache.
    assert intake.state.credentials.by_token("test", sender.token) is not None


def test_at_most_two_live_secrets(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    admin.add_secret(sender.tenant, sender.endpoint_id)
    try:
        admin.add_secret(sender.tenant, sender.endpoint_id)
    except admin.AdminError as exc:
        assert "2 live secrets already" in str(exc)
    else:
        raise AssertionError("a third live secret was accepted")
    stored = db.query("SELECT sealed FROM webhook_secrets")
    assert all(sender.secret.encode() not in bytes(s) for (s,) in stored)  # sealed at rest
