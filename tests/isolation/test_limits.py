"""Limits are per tenant by construction: no tenant can spend another's budget.

Tenant A floods a limited queue (3 starts per 30 s and 1 running per key) naming tenant B's
key every way it can (B's id, B's scoped key ``<B>/``) and tries to insert running rows
that would hold B's slot. Every key A names is stored under A's scope (``<A>/...``), and
the raw inserts are refused, so tenant B's first job starts at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import dramatiq
import psycopg
import pytest
from psycopg import errors

from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.isolation import actors
from tests.isolation.conftest import Victim
from tests.support import TestDB, wait_for


@pytest.fixture
def limited_worker(broker: dramatiq.Broker) -> Iterator[dramatiq.Worker]:
    w = dramatiq.Worker(broker, worker_threads=6, worker_timeout=100,
                        queues={actors.QUEUE, actors.LIMITED})
    w.start()
    yield w
    w.stop(timeout=10_000)


def test_a_tenant_cannot_spend_another_tenants_rate_or_concurrency(
    db: TestDB, attacker: uuid.UUID, victim: Victim, limited_worker: dramatiq.Worker
) -> None:
    b = victim.tenant
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db.app_url) as conn:  # raw SQL first: rows that would hold B's slot
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(attacker),))
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO dramatiq.queue (message_id, queue_name, state, message, tenant_id,"
                " limit_key) VALUES (gen_random_uuid(), %s, 'consumed', '{}', %s, %s)",
                (actors.LIMITED, b, f"{b}/"))
    keys = [str(b), f"{b}/", f"{b}/x", None]
    with tenant_session(attacker) as session:
        for n in range(30):
            enqueue(session, actors.limited, f"a-{n}", gate, limit_key=keys[n % len(keys)])
    # A's keys are busy (one running each, blocked on the gate) or out of rate.
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE tenant_id = %s "
                               "AND state = 'consumed'", (attacker,)) == len(keys),
             timeout=20, message="one job of each of A's keys to run")
    stored = {k for (k,) in db.query("SELECT DISTINCT limit_key FROM dramatiq.queue "
                                     "WHERE tenant_id = %s", (attacker,))}
    assert all(k.startswith(f"{attacker}/") for k in stored), stored

    with tenant_session(b) as session:
        first = enqueue(session, actors.limited, "b-first").message_id
    wait_for(lambda: db.scalar("SELECT count(*) FROM isolation_runs WHERE message_id = %s",
                               (first,)), timeout=10, message="B's first limited job to start")
    # Measured on the job's row (its enqueue and its start, bounded by the database's clock):
    # B did not wait for anything of A's, while A's jobs are all still held at the gate.
    waited = db.scalar("SELECT extract(epoch FROM started_at - enqueued_at) FROM dramatiq.queue "
                       "WHERE message_id = %s", (first,))
    assert waited < 1.0, f"B's first job waited {waited:.3f}s"
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE tenant_id = %s AND "
                     "state = 'done'", (attacker,)) == 0
    db.query("INSERT INTO isolation_gates VALUES (%s) RETURNING 1", (gate,))
