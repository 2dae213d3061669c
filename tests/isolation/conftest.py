"""Fixtures of the isolation tests: two tenants, and tenant B's rows and jobs in every state."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
import pytest
from sqlalchemy import text

from app.actors import webhooks
from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.isolation import actors
from tests.support import TestDB


def event(event_id: str) -> dict[str, object]:
    return {"source": "test", "event_id": event_id, "event_type": "ping", "payload": {},
            "received_at": datetime.now(UTC).isoformat()}


@dataclass
class Victim:
    """Tenant B, whose rows and jobs tenant A attacks."""

    tenant: uuid.UUID
    jobs: dict[str, str]

    def as_payload(self) -> dict[str, Any]:
        return {"tenant": str(self.tenant), "jobs": self.jobs}


@pytest.fixture
def attacker(db: TestDB) -> uuid.UUID:
    return db.create_tenant("attacker")


@pytest.fixture
def victim(db: TestDB, broker: dramatiq.Broker) -> Victim:
    """Tenant B with a job in each state, tenant rows and a schedule override of its own."""
    with db.owner() as conn:
        conn.execute(actors.DDL)
    b = db.create_tenant("victim")
    with tenant_session(b) as session:
        session.execute(text(
            "INSERT INTO activity_events (tenant_id, event_type, title, source) "
            "VALUES (:t, 'secret', 'b private activity', 'seed')"), {"t": b})
        session.execute(text(
            "INSERT INTO webhook_events (tenant_id, source, external_event_id, event_type) "
            "VALUES (:t, 'test', 'b-evt', 'seed')"), {"t": b})
        session.execute(text("INSERT INTO users (tenant_id, email) VALUES (:t, 'b@b.test')"),
                        {"t": b})
        session.execute(text("INSERT INTO scheduler.tenant_overrides (task, tenant_id, cron) "
                             "VALUES ('digests.daily', :t, '0 9 * * *')"), {"t": b})
        jobs = {state: enqueue(session, webhooks.process, event(f"b-{state}"),
                               delay=3600 if state == "waiting" else None).message_id
                for state in ("waiting", "dead", "completed", "running")}
    # B's running job is held by a live worker (its lease far ahead), so nothing rescues it.
    holder = db.scalar("INSERT INTO dramatiq.workers (worker_id, hostname, pid, queues, "
                       "lease_expires_at) VALUES (gen_random_uuid(), 'elsewhere', 1, "
                       "'{webhooks}', now() + interval '1 hour') RETURNING worker_id")
    db.query("""UPDATE dramatiq.queue SET "state" = CASE message_id
                    WHEN %(dead)s THEN 'rejected'::dramatiq.state
                    WHEN %(completed)s THEN 'done'::dramatiq.state
                    ELSE 'consumed'::dramatiq.state END,
                  "result" = CASE WHEN message_id = %(completed)s
                                  THEN '{"b": "secret result"}'::jsonb END,
                  progress = 50, last_error = 'b private error', attempts = 1,
                  worker_id = %(holder)s
                WHERE message_id IN (%(dead)s, %(completed)s, %(running)s) RETURNING 1""",
             {**jobs, "holder": holder})
    return Victim(b, jobs)


@pytest.fixture
def isolation_worker(broker: dramatiq.Broker) -> Iterator[dramatiq.Worker]:
    w = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100, queues={actors.QUEUE})
    w.start()
    yield w
    w.stop(timeout=10_000)
