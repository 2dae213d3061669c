"""Scheduled messages and reminders: sent once at their time, cancelled ones never, moved
ones at their new time; recurring reminders move on; months ahead is just a row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from app.db.tenant import tenant_session
from app.messaging.errors import TooLate
from app.messaging.notify import InvalidNotification
from app.messaging.recurrence import next_occurrence
from app.messaging.scheduling import (
    cancel_message,
    cancel_reminder,
    reschedule_message,
    schedule_message,
    schedule_reminder,
)
from app.messaging.templates import save_template
from tests.messaging.conftest import Providers
from tests.messaging.helpers import start_worker
from tests.support import TestDB, wait_for


def message_row(db: TestDB, table: str, row_id: uuid.UUID) -> dict[str, object]:
    with db.owner() as conn:
        cur = conn.execute(f"SELECT * FROM {table} WHERE id = %s", (row_id,))
        row = cur.fetchone()
        assert row is not None
        return dict(zip([c.name for c in cur.description or ()], row, strict=True))


def live_jobs(db: TestDB, actor: str) -> int:
    return int(db.scalar("SELECT count(*) FROM dramatiq.queue WHERE actor_name = %s AND "
                         "state IN ('queued', 'consumed')", (actor,)))


@pytest.fixture
def templated(tenant: uuid.UUID) -> uuid.UUID:
    with tenant_session(tenant) as session:
        save_template(session, "note", body_text="Note for {{ who }}")
    return tenant


@pytest.mark.slow
def test_a_scheduled_message_sends_once_at_its_local_time(
    db: TestDB, providers: Providers, templated: uuid.UUID, tmp_path: Path
) -> None:
    start_worker(db, tmp_path, "worker", providers.env())
    tokyo = ZoneInfo("Asia/Tokyo")
    local = (datetime.now(tokyo) + timedelta(seconds=2)).replace(tzinfo=None)
    with tenant_session(templated) as session:
        message = schedule_message(session, channel="sms", recipient="+15551232001",
                                   template_id="note", params={"who": "Ann"},
                                   send_at=local, timezone="Asia/Tokyo")
    row = message_row(db, "scheduled_messages", message)
    assert row["send_at"] == local.replace(tzinfo=tokyo)  # a local time in its zone
    assert row["timezone"] == "Asia/Tokyo" and row["status"] == "scheduled"
    assert db.scalar("SELECT queue_name FROM dramatiq.queue WHERE message_id = %s",
                     (row["job_id"],)) == "messages.DQ"  # waiting in the table, not a worker

    wait_for(lambda: message_row(db, "scheduled_messages", message)["status"] == "sent",
             message="the message to be sent")
    (sent,) = providers.sms.sent_to("+15551232001")
    assert sent.text == "Note for Ann"
    due = local.replace(tzinfo=tokyo).timestamp()
    assert sent.at >= due - 0.005  # never early (clock resolution aside)
    print(f"\nscheduled message sent {sent.at - due:.3f} s after its time")


@pytest.mark.slow
def test_cancelled_never_sends_and_rescheduled_sends_at_its_new_time(
    db: TestDB, providers: Providers, templated: uuid.UUID, tmp_path: Path
) -> None:
    start_worker(db, tmp_path, "worker", providers.env())
    soon = datetime.now(UTC) + timedelta(seconds=1)
    with tenant_session(templated) as session:
        doomed = schedule_message(session, channel="sms", recipient="+15551232002",
                                  template_id="note", params={"who": "x"}, send_at=soon)
        moved = schedule_message(session, channel="sms", recipient="+15551232003",
                                 template_id="note", params={"who": "y"},
                                 send_at=soon + timedelta(hours=1))
    new_time = datetime.now(UTC) + timedelta(seconds=1.5)
    with tenant_session(templated) as session:
        assert cancel_message(session, doomed) is True
        reschedule_message(session, moved, send_at=new_time)
    wait_for(lambda: message_row(db, "scheduled_messages", moved)["status"] == "sent",
             message="the rescheduled message")
    (sent,) = providers.sms.sent_to("+15551232003")
    assert sent.at >= new_time.timestamp() - 0.005
    doomed_row = message_row(db, "scheduled_messages", doomed)
    assert doomed_row["status"] == "cancelled" and doomed_row["cancelled_at"] is not None
    assert db.scalar("SELECT cancelled_at IS NOT NULL FROM dramatiq.queue WHERE "
                     "message_id = %s", (doomed_row["job_id"],))
    assert providers.sms.sent_to("+15551232002") == []

    with tenant_session(templated) as session:
        assert cancel_message(session, doomed) is False  # already cancelled
        with pytest.raises(TooLate):
            cancel_message(session, moved)  # sent
        with pytest.raises(TooLate):
            reschedule_message(session, moved, send_at=new_time + timedelta(hours=1))
        with pytest.raises(LookupError):
            cancel_message(session, uuid.uuid4())


@pytest.mark.slow
def test_a_recurring_reminder_fires_each_occurrence_until_cancelled(
    db: TestDB, providers: Providers, templated: uuid.UUID, tmp_path: Path
) -> None:
    start_worker(db, tmp_path, "worker", providers.env())
    with tenant_session(templated) as session:
        # Every second (six fields: seconds first), so the test sees several occurrences.
        reminder = schedule_reminder(session, channel="whatsapp", recipient="+15551232004",
                                     template_id="note", params={"who": "Dan"},
                                     timezone="Europe/Paris", recurrence_rule="* * * * * *")
    wait_for(lambda: len(providers.whatsapp.sent_to("+15551232004")) >= 3,
             message="three occurrences")
    with tenant_session(templated) as session:
        assert cancel_reminder(session, reminder) is True
    wait_for(lambda: live_jobs(db, "reminders.send") == 0, message="no occurrence left")
    row = message_row(db, "reminders", reminder)
    sends = providers.whatsapp.sent_to("+15551232004")
    assert row["status"] == "cancelled"
    assert row["occurrences"] == len(sends)  # every occurrence sent once, none after
    # Each occurrence had its own job (and so its own idempotency key).
    keys = {r.headers["Idempotency-Key"] for r in providers.whatsapp.sends()}
    assert len(keys) == len(sends)


def test_a_reminder_months_ahead_is_just_a_row(
    db: TestDB, providers: Providers, templated: uuid.UUID
) -> None:
    later = datetime.now(UTC) + timedelta(days=120)
    with tenant_session(templated) as session:
        reminder = schedule_reminder(session, channel="email", recipient="eve@example.test",
                                     template_id="reviews.needs_reply",
                                     params={"count": 1, "max_rating": 2}, send_at=later)
    row = message_row(db, "reminders", reminder)
    ((queue, state, eta),) = db.query('SELECT queue_name, "state"::text, eta '
                                      "FROM dramatiq.queue")
    assert (queue, state) == ("reminders.DQ", "queued")  # one row, due in four months
    assert abs((eta - later).total_seconds()) < 0.1
    assert row["job_id"] is not None and row["send_at"] == later


def test_weekly_recurrence_follows_the_users_zone_across_daylight_saving() -> None:
    rule, zone = "0 9 * * 1", "America/New_York"  # Mondays 09:00 New York time
    before = datetime(2026, 10, 27, tzinfo=UTC)
    first = next_occurrence(rule, zone, before)
    second = next_occurrence(rule, zone, first)
    assert first == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # EST after 1 November
    assert second == datetime(2026, 11, 9, 14, 0, tzinfo=UTC)
    summer = next_occurrence(rule, zone, datetime(2026, 10, 20, tzinfo=UTC))
    assert summer == datetime(2026, 10, 26, 13, 0, tzinfo=UTC)  # EDT


def test_bad_input_is_refused_with_a_clear_error(
    db: TestDB, providers: Providers, templated: uuid.UUID
) -> None:
    with tenant_session(templated) as session:
        with pytest.raises(InvalidNotification, match=r"E\.164"):
            schedule_message(session, channel="sms", recipient="0612", template_id="note",
                             send_at=datetime.now(UTC))
        with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
            schedule_message(session, channel="sms", recipient="+15551232005",
                             template_id="note", send_at=datetime(2027, 1, 1, 9),
                             timezone="Mars/Base")
        with pytest.raises(ValueError, match="recurrence"):
            schedule_reminder(session, channel="sms", recipient="+15551232005",
                              template_id="note", recurrence_rule="every monday")
    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == 0


def test_a_message_is_never_due_before_its_time_even_from_an_old_transaction(
    db: TestDB, providers: Providers, templated: uuid.UUID
) -> None:
    """A job's eta counts from its transaction's start: a send time computed later in a
    long transaction must not make the job due early."""
    with tenant_session(templated) as session:
        session.execute(text("SELECT pg_sleep(0.3)"))  # the caller's transaction is old
        send_at = datetime.now(UTC) + timedelta(seconds=5)
        message = schedule_message(session, channel="sms", recipient="+15551232006",
                                   template_id="note", params={"who": "x"}, send_at=send_at)
    eta = db.scalar("SELECT q.eta FROM dramatiq.queue q JOIN scheduled_messages m "
                    "ON m.job_id = q.message_id WHERE m.id = %s", (message,))
    assert send_at <= eta < send_at + timedelta(seconds=0.1)
