"""Digests are delivered: rendered (text and HTML), sent through notifications.send once per
user and period even when the digest job runs twice; plan 002's job types exist and a job
without an organization is refused at enqueue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from app.actors import alerts, digests, notifications
from app.db.tenant import tenant_session
from app.jobs import EnqueueRefused, enqueue
from app.messaging.alerting import add_email_digest, add_sms_notification
from app.messaging.notify import notify
from app.services.digests import DigestRequest
from tests.messaging.conftest import Providers
from tests.messaging.helpers import job_state, start_worker
from tests.support import TestDB, wait_for

START = datetime(2026, 11, 21, tzinfo=UTC)


def users(db: TestDB, tenant: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    (wants,), (_,) = db.query(
        "INSERT INTO users (tenant_id, email, name, timezone, daily_digest) VALUES "
        "(%s, 'dana@example.test', 'Dana', 'UTC', true), "
        "(%s, 'quiet@example.test', 'Quiet', 'UTC', false) RETURNING id", (tenant, tenant))
    db.query("INSERT INTO activity_events (tenant_id, event_type, title, source, created_at) "
             "VALUES (%s, 'call.missed', 'x', 't', %s), (%s, 'call.missed', 'y', 't', %s), "
             "(%s, 'invoice.paid', '<z>', 't', %s) RETURNING 1",
             (tenant, START + timedelta(hours=2), tenant, START + timedelta(hours=3),
              tenant, START + timedelta(hours=4)))
    return wants, _


@pytest.mark.slow
def test_a_daily_digest_is_emailed_once_even_if_its_job_runs_twice(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    dana, _ = users(db, tenant)
    request = DigestRequest(user_id=dana, period="daily", period_start=START,
                            period_end=START + timedelta(days=1), timezone="UTC")
    with tenant_session(tenant) as session:
        # Twice, without the unique key the planner gives it: two jobs, one digest email.
        first = enqueue(session, digests.build, request.model_dump(mode="json")).message_id
        second = enqueue(session, digests.build, request.model_dump(mode="json")).message_id
    start_worker(db, tmp_path, "worker", providers.env())
    wait_for(lambda: db.scalar("SELECT status FROM digests") == "sent",
             message="the digest to be sent")
    wait_for(lambda: job_state(db, first) == job_state(db, second) == "done",
             message="both digest jobs")
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state IN "
                               "('queued', 'consumed')") == 0, message="nothing left to run")

    (mail,) = providers.smtp.received()
    assert mail.recipients == ["dana@example.test"]
    assert mail.message["Subject"] == "Your daily digest: 3 event(s)"
    text = mail.message.get_body(("plain",))
    html = mail.message.get_body(("html",))
    assert text is not None and html is not None
    assert "- call.missed: 2" in text.get_content()
    assert "<td>call.missed</td><td>2</td>" in html.get_content()
    assert "2026-11-21 to 2026-11-21" in text.get_content()
    row = db.query("SELECT d.status, d.notification_job_id, v.status FROM digests d "
                   "JOIN deliveries v ON v.job_id = d.notification_job_id")
    assert [(r[0], r[2]) for r in row] == [("sent", "sent")]
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE actor_name = "
                     "'notifications.send'") == 1


@pytest.mark.slow
def test_plan_002_email_digest_and_sms_jobs_are_delivered(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    dana, _ = users(db, tenant)
    digest = {"organizationId": str(tenant), "userId": str(dana), "period": "weekly",
              "startDate": "2026-11-16T00:00:00+00:00",
              "endDate": "2026-11-23T00:00:00+00:00"}
    with tenant_session(tenant) as session:
        job = add_email_digest(session, digest)
        assert add_email_digest(session, digest).duplicate  # once per user and period
        sms = add_sms_notification(session, {"organizationId": str(tenant),
                                             "phoneNumber": "+15551235001",
                                             "message": "Disk 91% on db-1", "alertId": "a-9"})
    start_worker(db, tmp_path, "worker", providers.env())
    wait_for(lambda: job_state(db, sms.message_id) == "done" and db.scalar(
        "SELECT status FROM digests") == "sent", message="the alert and the weekly digest")
    (text,) = providers.sms.sent
    assert (text.recipient, text.text) == ("+15551235001", "Disk 91% on db-1")
    (mail,) = providers.smtp.received()
    assert mail.message["Subject"] == "Your weekly digest: 3 event(s)"
    assert job_state(db, job.message_id) == "done"
    assert db.scalar("SELECT queue_name FROM dramatiq.queue WHERE message_id = %s",
                     (sms.message_id,)) == "sms-notifications"


def test_a_job_without_an_organization_is_refused_at_enqueue(
    db: TestDB, providers: Providers, tenant: uuid.UUID
) -> None:
    other = db.create_tenant("other")
    alert = {"organizationId": str(other), "phoneNumber": "+15551235002", "message": "x"}
    with tenant_session(tenant) as session:
        with pytest.raises(EnqueueRefused, match="organizationId is not this session's"):
            add_sms_notification(session, alert)  # another organization's id
        with pytest.raises(EnqueueRefused, match="organizationId: Field required"):
            add_sms_notification(session, {"phoneNumber": "+15551235002", "message": "x"})
    # No tenant at all: the session of no tenant, a bare connection, actor.send().
    with psycopg.connect(db.app_url) as conn:
        with pytest.raises(EnqueueRefused, match="no tenant in this transaction"):
            enqueue(conn, alerts.send_sms, {**alert, "organizationId": str(tenant)})
    with psycopg.connect(db.app_url) as conn:
        with pytest.raises(EnqueueRefused, match="no tenant in this transaction"):
            enqueue(conn, notifications.send, {"channel": "sms", "recipient": "+15551235002",
                                               "template_id": "x"})
    with pytest.raises(EnqueueRefused, match="needs a tenant"):
        digests.email_digest.send({"organizationId": str(tenant)})
    with tenant_session(tenant) as session, pytest.raises(EnqueueRefused, match="channel"):
        enqueue(session, notifications.send, {"channel": "fax", "recipient": "x"})
    with tenant_session(tenant) as session, pytest.raises(ValueError, match=r"E\.164"):
        notify(session, "sms", "not-a-number", "x")
    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == 0
