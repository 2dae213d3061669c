"""What one tenant's job leaves on its connection never reaches the next tenant's job.

Actor sessions are pooled: the next job on a connection may be another tenant's. A job can
leave session state behind (a temporary table named like a tenant table, which PostgreSQL
searches first and which RLS does not cover; a session ``search_path``; a held advisory
lock). Every connection is reset when it returns to the pool
(``app.db.engine.SESSION_RESET``), so tenant B's write lands in the real table under B,
and tenant A reads none of it.
"""

from __future__ import annotations

import uuid

import dramatiq
import pytest

from app.db.tenant import tenant_session
from app.jobs import enqueue, get_result, wait_for_results
from tests.isolation import actors
from tests.isolation.conftest import Victim
from tests.support import TestDB


@pytest.fixture
def one_thread(broker: dramatiq.Broker) -> dramatiq.Worker:
    # One thread: its jobs share one pooled connection, one after the other.
    w = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100, queues={actors.QUEUE})
    w.start()
    yield w
    w.stop(timeout=10_000)


def run(tenant: uuid.UUID, actor: dramatiq.Actor, *args: object) -> object:
    with tenant_session(tenant) as session:
        job = enqueue(session, actor, *args).message_id
    wait_for_results([job], timeout=30, tenant=tenant)
    return get_result(job, tenant=tenant)


def test_a_jobs_session_state_is_gone_before_the_next_job(
    db: TestDB, attacker: uuid.UUID, victim: Victim, one_thread: dramatiq.Worker
) -> None:
    pid = run(attacker, actors.leave_state)
    b_runs = [run(victim.tenant, actors.note, f"b-{i}") for i in range(3)]
    a_next = run(attacker, actors.note, "a-after")

    assert isinstance(pid, int) and all(isinstance(r, dict) for r in b_runs)
    assert pid in {r["pid"] for r in b_runs}, "precondition: B ran on A's connection"
    for i, seen in enumerate(b_runs):
        assert seen["advisory_locks_held"] == 0, "A's advisory lock was still held"
        assert not seen["search_path"].startswith("pg_temp")
        assert [label for label in seen["labels_seen"] if label.startswith("b-")] == [
            f"b-{k}" for k in range(i + 1)]
    assert isinstance(a_next, dict)
    assert not any(label.startswith("b-") for label in a_next["labels_seen"])
    # B's events are in the tenant table, under B.
    rows = db.query("SELECT tenant_id, title FROM public.activity_events "
                    "WHERE event_type = 'isolation' ORDER BY title")
    assert rows == [(attacker, "a-after")] + [(victim.tenant, f"b-{i}") for i in range(3)]
