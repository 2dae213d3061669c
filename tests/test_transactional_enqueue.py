"""Transactional enqueue: commit and the job runs once; roll back and it never existed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.actors import webhooks
from app.db.tenant import tenant_session
from app.jobs import EnqueueRefused, enqueue
from tests.support import TestDB, wait_for


def event(event_id: str, source: str = "test") -> dict[str, object]:
    return {"source": source, "event_id": event_id, "event_type": "ping",
            "payload": {"n": 1}, "received_at": datetime.now(UTC).isoformat()}


def test_committed_job_runs_exactly_once(db: TestDB, worker: object) -> None:
    tenant = db.create_tenant()
    with tenant_session(tenant) as session:
        result = enqueue(session, webhooks.process, event("e-commit"))
    assert result.duplicate is False
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'done'") == 2,
             message="the webhook job and the activity job it enqueued to finish")
    assert db.scalar("SELECT count(*) FROM activity_events WHERE source_id = 'e-commit'") == 1
    row = db.query("SELECT attempts, tenant_id FROM dramatiq.queue WHERE message_id = %s",
                   (result.message_id,))
    assert row == [(1, tenant)]


def test_rolled_back_job_leaves_no_row_and_never_runs(db: TestDB, worker: object) -> None:
    tenant = db.create_tenant()
    with pytest.raises(RuntimeError), tenant_session(tenant) as session:
        enqueue(session, webhooks.process, event("e-rollback"))
        raise RuntimeError("the caller's transaction fails after enqueueing")
    with tenant_session(tenant) as session:
        enqueue(session, webhooks.process, event("e-after"))
    # The later job finishing proves the worker was running; the rolled-back one never was.
    wait_for(lambda: db.scalar("SELECT count(*) FROM activity_events") == 1,
             message="the committed job to run")
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE message->'args' @> "
                     "'[{\"event_id\": \"e-rollback\"}]'") == 0
    assert db.scalar("SELECT count(*) FROM activity_events WHERE source_id = 'e-rollback'") == 0


def test_tenant_actor_without_tenant_is_refused_at_enqueue(db: TestDB, broker: object) -> None:
    with pytest.raises(EnqueueRefused, match=r"'webhooks\.process' needs a tenant"):
        webhooks.process.send(event("e-none"))
    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == 0


def test_send_inside_a_tenant_session_joins_its_transaction(db: TestDB, worker: object) -> None:
    tenant = db.create_tenant()
    with pytest.raises(RuntimeError), tenant_session(tenant):
        webhooks.process.send(event("e-send-rolled-back"))
        raise RuntimeError("the caller's transaction fails after actor.send()")
    with tenant_session(tenant):
        webhooks.process.send(event("e-send"))
    wait_for(lambda: db.scalar("SELECT count(*) FROM activity_events WHERE source_id = 'e-send'"),
             message="the job sent with actor.send to run")
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE tenant_id = %s", (tenant,)) == 2
    assert db.scalar("SELECT count(*) FROM activity_events WHERE source_id = "
                     "'e-send-rolled-back'") == 0


@pytest.mark.parametrize("value", ["acme", "00000000-0000-0000-0000-000000000001"])
def test_a_tenant_option_is_refused_the_tenant_comes_from_the_transaction(
    db: TestDB, broker: object, value: str
) -> None:
    tenant = db.create_tenant()
    with pytest.raises(EnqueueRefused, match="tenant_id is not an option"):
        webhooks.process.send_with_options(args=(event("e-bad"),), tenant_id=value)
    with pytest.raises(EnqueueRefused, match="tenant_id is not an option"), \
            tenant_session(tenant):
        webhooks.process.send_with_options(args=(event("e-bad"),), tenant_id=value)
    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == 0


def test_duplicate_message_id_is_a_no_op_not_a_requeue(db: TestDB, broker: object) -> None:
    tenant = db.create_tenant()
    message = webhooks.process.message_with_options(args=(event("e-dup"),))
    with tenant_session(tenant):
        broker.enqueue(message)
    db.query("UPDATE dramatiq.queue SET state = 'done' RETURNING 1")
    with tenant_session(tenant):
        broker.enqueue(message)  # dramatiq-pg would upsert it back to 'queued'
    assert db.query('SELECT "state"::text FROM dramatiq.queue') == [("done",)]
