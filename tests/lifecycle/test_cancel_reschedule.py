"""Application code cancels and reschedules its own tenant's delayed jobs, and no other's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.actors import webhooks
from app.db.tenant import tenant_session
from app.jobs import JobFinished, cancel, cancel_many, enqueue, reschedule
from tests.support import TestDB


def event(event_id: str) -> dict[str, object]:
    return {"source": "test", "event_id": event_id, "event_type": "ping", "payload": {},
            "received_at": datetime.now(UTC).isoformat()}


def row(db: TestDB, job_id: str) -> tuple[str, str, datetime, object]:
    return db.query('SELECT "state"::text, queue_name, eta, cancelled_at FROM dramatiq.queue '
                    "WHERE message_id = %s", (job_id,))[0]


def test_cancel_and_reschedule_join_the_callers_transaction(db: TestDB, broker: object) -> None:
    tenant = db.create_tenant("a")
    with tenant_session(tenant) as session:
        doomed = enqueue(session, webhooks.process, event("c-1"), delay=3600).message_id
        moved = enqueue(session, webhooks.process, event("c-2"), delay=3600).message_id
    with pytest.raises(RuntimeError), tenant_session(tenant) as session:
        assert cancel(session, doomed) is True
        raise RuntimeError("roll back")
    assert row(db, doomed)[0] == "queued"  # the rolled-back cancel changed nothing

    with tenant_session(tenant) as session:
        assert cancel(session, doomed) is True
        later = datetime.now(UTC) + timedelta(days=30)
        reschedule(session, moved, eta=later)
    state, _, _, cancelled_at = row(db, doomed)
    assert state == "rejected" and cancelled_at is not None
    _, queue, eta, _ = row(db, moved)
    assert queue == "webhooks.DQ" and abs((eta - later).total_seconds()) < 1

    with tenant_session(tenant) as session:
        reschedule(session, moved, delay=0)
        assert cancel(session, doomed) is False  # already cancelled: finished
        with pytest.raises(JobFinished):
            reschedule(session, doomed, delay=10)
    assert row(db, moved)[1] == "webhooks"  # due now: back on the queue itself


def test_another_tenants_job_cannot_be_cancelled_or_moved(db: TestDB, broker: object) -> None:
    tenant_a, tenant_b = db.create_tenant("a"), db.create_tenant("b")
    with tenant_session(tenant_b) as session:
        theirs = enqueue(session, webhooks.process, event("b-1"), delay=3600).message_id
    with tenant_session(tenant_a) as session:
        stranger = str(uuid.uuid4())
        assert cancel_many(session, [theirs, stranger]) == {theirs: "missing",
                                                            stranger: "missing"}
        with pytest.raises(LookupError):
            cancel(session, theirs)
        with pytest.raises(LookupError):
            reschedule(session, theirs, delay=0)
    assert row(db, theirs)[:2] == ("queued", "webhooks.DQ")
