"""Hostile tenant: A plays the attacker through the API and through raw SQL on the very
connection tenant code holds. It cannot read B's deliveries, templates or provider settings,
nor cancel or move B's messages, nor write rows in B's name."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from app.actors import notifications
from app.db.engine import raw_connection
from app.db.tenant import tenant_session
from app.jobs import cancel_many, enqueue
from app.messaging import deliveries
from app.messaging.channels import list_providers, set_provider
from app.messaging.scheduling import (
    cancel_message,
    cancel_reminder,
    reschedule_message,
    schedule_message,
    schedule_reminder,
)
from app.messaging.templates import BUILTIN, TemplateError, find_template, save_template
from tests.support import TestDB, wait_for

TABLES = ("deliveries", "message_templates", "messaging_providers", "scheduled_messages",
          "reminders", "jobs.deliveries")


@pytest.fixture
def victim(db: TestDB, broker: object) -> dict[str, object]:
    """Tenant B with a template, a provider secret, a delivery, a message and a reminder."""
    b = db.create_tenant("b")
    with tenant_session(b) as session:
        save_template(session, "secret-offer", body_text="B's secret offer {{ code }}")
        set_provider(session, "sms", "twilio", {"base_url": "http://127.0.0.1:9",
                                                "account_sid": "ACb", "from_number": "+1555"},
                     secret="b-auth-token")
        deliveries.begin(session, "b-key", None, deliveries.Target("sms", "+15551237001",
                                                                   "secret-offer"), "twilio")
        later = datetime.now(UTC) + timedelta(days=3)
        message = schedule_message(session, channel="sms", recipient="+15551237001",
                                   template_id="secret-offer", params={"code": "B-42"},
                                   send_at=later)
        reminder = schedule_reminder(session, channel="sms", recipient="+15551237001",
                                     template_id="secret-offer", send_at=later)
    job = db.scalar("SELECT job_id FROM scheduled_messages WHERE id = %s", (message,))
    return {"tenant": b, "message": message, "reminder": reminder, "job": job}


def test_a_tenant_sees_none_of_anothers_messaging_rows(
    db: TestDB, victim: dict[str, object]
) -> None:
    a = db.create_tenant("a")
    with tenant_session(a) as session:
        with pytest.raises(TemplateError, match="no template named 'secret-offer'"):
            find_template(session, "secret-offer")
        assert find_template(session, "digest.daily") == BUILTIN["digest.daily"]
        assert list_providers(session) == []
        assert deliveries.get(session, uuid.uuid4()) is None
        raw = raw_connection(session)
        for table in TABLES:
            assert raw.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        # A's own delivery shows in the view; B's never does.
        deliveries.begin(session, "a-key", None, deliveries.Target("sms", "+15551237003",
                                                                   "x"), "twilio")
        assert raw.execute("SELECT tenant_id, idempotency_key FROM jobs.deliveries"
                           ).fetchall() == [(a, "a-key")]
        # Naming B explicitly changes nothing: RLS, not a filter, decides.
        b = victim["tenant"]
        assert raw.execute("SELECT count(*) FROM messaging_providers WHERE tenant_id = %s",
                           (b,)).fetchone() == (0,)
    # B's secret is sealed even for whoever can read the row (the owner here).
    stored = db.scalar("SELECT secret FROM messaging_providers")
    assert b"b-auth-token" not in bytes(stored)


def test_a_tenant_cannot_cancel_move_or_forge_anothers_messages(
    db: TestDB, victim: dict[str, object]
) -> None:
    a = db.create_tenant("a")
    message, reminder, job = victim["message"], victim["reminder"], victim["job"]
    with tenant_session(a) as session:
        with pytest.raises(LookupError):
            cancel_message(session, message)  # type: ignore[arg-type]
        with pytest.raises(LookupError):
            cancel_reminder(session, reminder)  # type: ignore[arg-type]
        with pytest.raises(LookupError):
            reschedule_message(session, message, send_at=datetime.now(UTC))  # type: ignore[arg-type]
        assert cancel_many(session, [str(job)]) == {str(job): "missing"}
        raw = raw_connection(session)
        assert raw.execute("UPDATE scheduled_messages SET status = 'cancelled' WHERE id = %s",
                           (message,)).rowcount == 0
        assert raw.execute("DELETE FROM reminders WHERE id = %s", (reminder,)).rowcount == 0
        assert raw.execute("UPDATE deliveries SET status = 'sent'").rowcount == 0
    # Writing a row in B's name is refused outright.
    for statement in (
        "INSERT INTO message_templates (tenant_id, name, body_text) VALUES (%s, 'x', 'x')",
        "INSERT INTO deliveries (tenant_id, idempotency_key, channel, recipient, template) "
        "VALUES (%s, 'k', 'sms', '+1', 'x')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), tenant_session(a) as session:
            raw_connection(session).execute(statement, (victim["tenant"],))
    # B's message and its job are untouched.
    assert db.scalar("SELECT status FROM scheduled_messages WHERE id = %s",
                     (message,)) == "scheduled"
    assert db.scalar('SELECT "state"::text FROM dramatiq.queue WHERE message_id = %s',
                     (job,)) == "queued"
    assert db.scalar("SELECT count(*) FROM reminders") == 1


def test_the_tenant_is_the_sessions_not_the_payloads(
    db: TestDB, victim: dict[str, object], worker: object
) -> None:
    """A notification naming another tenant in its payload is refused by the worker, and a
    message scheduled by A is A's whatever it names."""
    a = db.create_tenant("a")
    with tenant_session(a) as session:
        forged = enqueue(session, notifications.send, {
            "channel": "sms", "recipient": "+15551237002", "template_id": "secret-offer",
            "tenant_id": str(victim["tenant"])}).message_id
        row = schedule_message(session, channel="sms", recipient="+15551237002",
                               template_id="secret-offer", send_at=datetime.now(UTC)
                               + timedelta(hours=1))
    wait_for(lambda: db.scalar('SELECT "state"::text FROM dramatiq.queue WHERE message_id = '
                               "%s", (forged,)) == "rejected", message="the forged job")
    assert "tenantId in the payload is not the job's tenant" in db.scalar(
        "SELECT last_error FROM dramatiq.queue WHERE message_id = %s", (forged,))
    assert db.query("SELECT tenant_id, status FROM deliveries WHERE job_id = %s",
                    (forged,)) == [(a, "failed")]
    assert db.scalar("SELECT tenant_id FROM scheduled_messages WHERE id = %s", (row,)) == a
