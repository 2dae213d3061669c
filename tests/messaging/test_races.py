"""Cancel and reschedule racing a worker that is claiming the message's job that instant.

Each round schedules a message a few tens of milliseconds ahead, then cancels (or moves) it
at a moment spread around its due time: before the worker promotes the delayed job, while
it claims it, while the firing holds the row, after it was sent. Whatever the interleaving:
a cancel that succeeded means nothing was ever sent; a move that succeeded means exactly
one send, at the new time; ``TooLate`` means exactly one send, at the old time.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.db.tenant import tenant_session
from app.messaging.errors import TooLate
from app.messaging.scheduling import cancel_message, reschedule_message, schedule_message
from app.messaging.templates import save_template
from tests.messaging.conftest import Providers
from tests.messaging.helpers import start_worker
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow

ROUNDS = 200
LEAD = 0.04  # seconds between scheduling a message and its due time
#: When the cancel or move lands, relative to the due time: a spread across the claim.
OFFSETS = (-0.02, -0.008, -0.003, 0.0, 0.001, 0.002, 0.004, 0.006, 0.01, 0.02, 0.04)


def number(i: int) -> str:
    return f"+1555300{i:04d}"


def schedule(tenant: uuid.UUID, i: int) -> tuple[uuid.UUID, datetime]:
    due = datetime.now(UTC) + timedelta(seconds=LEAD)
    with tenant_session(tenant) as session:
        row = schedule_message(session, channel="sms", recipient=number(i), template_id="race",
                               params={"i": i}, send_at=due)
    return row, due


def wait_until(moment: datetime) -> None:
    # The race itself: land the call at a chosen instant (not a wait for a result).
    pause = (moment - datetime.now(UTC)).total_seconds()
    if pause > 0:
        time.sleep(pause)


def job_outcomes(db: TestDB) -> dict[str, int]:
    """How the firings ended: sent, skipped (and why), cancelled before they ran."""
    return dict(db.query(
        "SELECT CASE WHEN cancelled_at IS NOT NULL THEN 'cancelled before claim' "
        "WHEN result ? 'skipped' THEN 'skipped: ' || (result->>'skipped') "
        "ELSE state::text END, count(*) FROM dramatiq.queue GROUP BY 1"))


def statuses(db: TestDB) -> Counter[str]:
    return Counter(dict(db.query("SELECT status, count(*) FROM scheduled_messages GROUP BY 1")))


@pytest.fixture
def racing(db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path) -> uuid.UUID:
    with tenant_session(tenant) as session:
        save_template(session, "race", body_text="round {{ i }}")
    start_worker(db, tmp_path, "worker", providers.env(), threads=4, queues=["messages"])
    return tenant


def test_cancel_at_the_moment_of_claim_never_sends_a_cancelled_message(
    db: TestDB, providers: Providers, racing: uuid.UUID
) -> None:
    outcome: dict[int, str] = {}
    for i in range(ROUNDS):
        row, due = schedule(racing, i)
        wait_until(due + timedelta(seconds=OFFSETS[i % len(OFFSETS)]))
        with tenant_session(racing) as session:
            try:
                outcome[i] = "cancelled" if cancel_message(session, row) else "again"
            except TooLate:
                outcome[i] = "too_late"
    too_late = sum(1 for o in outcome.values() if o == "too_late")
    wait_for(lambda: statuses(db)["sent"] == too_late, timeout=60, message="sends to settle")
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state IN "
                               "('queued', 'consumed')") == 0, message="every job finished")
    for i, result in outcome.items():
        sends = len(providers.sms.sent_to(number(i)))
        if result == "cancelled":
            assert sends == 0, f"round {i}: cancelled but sent"
        else:
            assert result == "too_late" and sends == 1, f"round {i}: {result}, {sends} sends"
    assert statuses(db) == Counter({"cancelled": ROUNDS - too_late, "sent": too_late})
    assert len(providers.sms.sent) == too_late  # nothing else, nothing twice
    print(f"\ncancel race: {dict(Counter(outcome.values()))}; jobs: {job_outcomes(db)}")


def test_reschedule_at_the_moment_of_claim_sends_exactly_once(
    db: TestDB, providers: Providers, racing: uuid.UUID
) -> None:
    moved_to: dict[int, datetime] = {}
    old_time: dict[int, datetime] = {}
    for i in range(ROUNDS):
        row, due = schedule(racing, i)
        old_time[i] = due
        wait_until(due + timedelta(seconds=OFFSETS[i % len(OFFSETS)]))
        new_time = datetime.now(UTC) + timedelta(seconds=0.3)
        with tenant_session(racing) as session:
            try:
                reschedule_message(session, row, send_at=new_time)
                moved_to[i] = new_time
            except TooLate:
                pass
    wait_for(lambda: statuses(db)["sent"] == ROUNDS, timeout=60,
             message="every message sent (none lost)")
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state IN "
                               "('queued', 'consumed')") == 0, message="every job finished")
    for i in range(ROUNDS):
        sends = providers.sms.sent_to(number(i))
        assert len(sends) == 1, f"round {i}: {len(sends)} sends"
        expected = moved_to.get(i, old_time[i])
        assert sends[0].at >= expected.timestamp() - 0.005, (
            f"round {i}: sent {expected.timestamp() - sends[0].at:.3f} s early "
            f"({'moved' if i in moved_to else 'too late to move'})")
    assert len(providers.sms.sent) == ROUNDS
    print(f"\nreschedule race: moved={len(moved_to)} too_late={ROUNDS - len(moved_to)}; "
          f"jobs: {job_outcomes(db)}")
