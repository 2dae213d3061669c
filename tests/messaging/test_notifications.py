"""notifications.send end to end: real worker processes, a real SMTP server, fake HTTP
providers. Each message reaches its provider once, rendered from the tenant's template;
a 429 waits for its Retry-After; a refused number is a dead letter with the provider's reason.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db.tenant import tenant_session
from app.messaging.notify import notify
from app.messaging.templates import save_template
from app.providers.fakes import throttled
from tests.messaging.conftest import Providers
from tests.messaging.helpers import delivery, delivery_status, job, job_state, start_worker
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow  # real worker processes


def sent(db: TestDB, job_id: str) -> bool:
    return delivery_status(db, job_id) == "sent" and job_state(db, job_id) == "done"


def test_email_is_received_with_the_rendered_template(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    with tenant_session(tenant) as session:
        save_template(session, "order.shipped", subject="Order {{ order }} shipped",
                      body_text="Hi {{ name }}, order {{ order }} is on its way.",
                      body_html="<p>Hi {{ name }}, order <b>{{ order }}</b> is on its way.</p>")
        job_id = notify(session, "email", "bob@example.test", "order.shipped",
                        {"name": "Bob <Builder> & Co", "order": "A-17"}).message_id
    start_worker(db, tmp_path, "worker", providers.env())
    wait_for(lambda: sent(db, job_id), message="the email to be sent")

    (mail,) = providers.smtp.received()
    assert mail.recipients == ["bob@example.test"]
    assert mail.sender == "alerts@example.test"
    message = mail.message
    assert message["Subject"] == "Order A-17 shipped"
    assert message["From"] == "Example Alerts <alerts@example.test>"
    # The Message-ID is the delivery's idempotency key: the same on every attempt.
    assert message["Message-ID"] == f"<{job_id}@example.test>"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().strip() == "Hi Bob <Builder> & Co, order A-17 is on its way."
    assert html.get_content().strip() == (
        "<p>Hi Bob &lt;Builder&gt; &amp; Co, order <b>A-17</b> is on its way.</p>")

    row = delivery(db, job_id)
    assert row is not None
    assert (row["channel"], row["recipient"], row["template"], row["provider"], row["status"],
            row["attempts"], row["error"]) == (
        "email", "bob@example.test", "order.shipped", "smtp", "sent", 1, None)
    assert row["provider_message_id"] == f"<{job_id}@example.test>"
    assert row["idempotency_key"] == job_id


def test_sms_and_whatsapp_reach_their_providers_once_each(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    with tenant_session(tenant) as session:
        save_template(session, "visit", body_text="See you at {{ time }}, {{ name }}!")
        sms = notify(session, "sms", "+15551230001", "visit",
                     {"time": "10:00", "name": "Ann"}).message_id
        chat = notify(session, "whatsapp", "+15551230002", "visit",
                      {"time": "11:00", "name": "Ben"}).message_id
    start_worker(db, tmp_path, "worker", providers.env())
    wait_for(lambda: sent(db, sms) and sent(db, chat), message="both messages to be sent")

    (sms_request,) = providers.sms.sends()
    assert sms_request.body == {"To": "+15551230001", "From": "+15550000000",
                                "Body": "See you at 10:00, Ann!"}
    assert sms_request.headers["Idempotency-Key"] == sms
    (chat_request,) = providers.whatsapp.sends()
    assert chat_request.body["to"] == "+15551230002"
    assert chat_request.body["text"]["body"] == "See you at 11:00, Ben!"
    assert chat_request.headers["Idempotency-Key"] == chat
    assert chat_request.headers["Authorization"] == f"Bearer {providers.whatsapp.token}"

    sms_row, chat_row = delivery(db, sms), delivery(db, chat)
    assert sms_row and chat_row
    assert sms_row["provider_message_id"] == providers.sms.sent[0].message_id
    assert chat_row["provider_message_id"] == providers.whatsapp.sent[0].message_id
    # The same ledger through the jobs-style view, under the tenant's RLS.
    with tenant_session(tenant) as session:
        rows = session.execute(text(
            "SELECT channel, status, attempts FROM jobs.deliveries ORDER BY channel")).all()
    assert [tuple(r) for r in rows] == [("sms", "sent", 1), ("whatsapp", "sent", 1)]


def test_a_429_is_retried_after_its_retry_after(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    providers.sms.next_responses.append(throttled(2))
    with tenant_session(tenant) as session:
        save_template(session, "ping", body_text="ping")
        job_id = notify(session, "sms", "+15551230003", "ping").message_id
    start_worker(db, tmp_path, "worker", providers.env())
    wait_for(lambda: sent(db, job_id), message="the throttled SMS to be sent")

    first, second = providers.sms.sends()
    assert second.at - first.at >= 2 * 0.95  # not before the provider said
    assert len(providers.sms.sent) == 1
    row, attempts = delivery(db, job_id), job(db, job_id)
    assert row and row["attempts"] == 2 and row["status"] == "sent"
    assert attempts["attempts"] == 2
    assert "HTTP 429" in (attempts["last_error"] or "")


def test_an_invalid_number_is_a_dead_letter_with_the_providers_reason(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    bad = "+15005550001"  # the fake refuses it like Twilio (21211)
    with tenant_session(tenant) as session:
        save_template(session, "ping", body_text="ping")
        job_id = notify(session, "sms", bad, "ping").message_id
        stopped = notify(session, "whatsapp", "+15551239999", "ping").message_id
    providers.whatsapp.unsubscribed.add("+15551239999")
    start_worker(db, tmp_path, "worker", providers.env())
    wait_for(lambda: job_state(db, job_id) == "rejected" and job_state(db, stopped)
             == "rejected", message="both to be dead-lettered")

    dead = job(db, job_id)
    assert dead["attempts"] == 1  # permanent: no retry
    assert "code 21211" in dead["last_error"]
    assert "not a valid phone number" in dead["last_error"]
    assert bad not in dead["last_error"]  # recipients never travel in errors (logged)
    row = delivery(db, job_id)
    assert row and row["status"] == "failed" and "code 21211" in row["error"]
    assert len(providers.sms.sends()) == 1 and providers.sms.sent == []

    unsubscribed = job(db, stopped)
    assert unsubscribed["attempts"] == 1 and "code 131050" in unsubscribed["last_error"]
    assert delivery_status(db, stopped) == "failed"


def test_a_missing_template_parameter_is_a_permanent_error_and_nothing_is_sent(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    with tenant_session(tenant) as session:
        save_template(session, "greet", body_text="Hello {{ name }}")
        job_id = notify(session, "sms", "+15551230004", "greet", {"nom": "x"}).message_id
        unknown = notify(session, "sms", "+15551230004", "no-such-template").message_id
    start_worker(db, tmp_path, "worker", providers.env())
    wait_for(lambda: job_state(db, job_id) == "rejected" and job_state(db, unknown)
             == "rejected", message="both to be dead-lettered")
    assert "missing parameter" in job(db, job_id)["last_error"]
    assert "'name' is undefined" in job(db, job_id)["last_error"]
    assert "no template named 'no-such-template'" in job(db, unknown)["last_error"]
    for failed in (job_id, unknown):
        row = delivery(db, failed)
        assert row and row["status"] == "failed" and row["attempts"] == 1
    assert providers.sms.requests == []


def test_without_a_tenant_provider_the_environments_default_is_used(
    db: TestDB, providers: Providers, broker: object, tmp_path: Path
) -> None:
    plain = db.create_tenant("no-settings")  # no messaging_providers rows
    with tenant_session(plain) as session:
        save_template(session, "ping", body_text="ping")
        via_env = notify(session, "sms", "+15551230005", "ping").message_id
        nowhere = notify(session, "whatsapp", "+15551230006", "ping").message_id
    env = {**providers.env(), "MESSAGING_SMS_URL": providers.sms.url,
           "MESSAGING_SMS_ACCOUNT": providers.sms.account_sid,
           "MESSAGING_SMS_TOKEN": providers.sms.token, "MESSAGING_SMS_FROM": "+15550000001"}
    start_worker(db, tmp_path, "worker", env)
    wait_for(lambda: sent(db, via_env) and job_state(db, nowhere) == "rejected",
             message="one sent by the default, one with no provider at all")
    (request,) = providers.sms.sends()
    assert request.body["From"] == "+15550000001"
    assert "no provider for channel 'whatsapp'" in job(db, nowhere)["last_error"]
    assert "MESSAGING_WHATSAPP_URL" in job(db, nowhere)["last_error"]
