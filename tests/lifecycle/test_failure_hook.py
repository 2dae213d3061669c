"""A failed attempt leaves a durable trace through ``on_failure``; its own work rolls back."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest

from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.lifecycle import actors
from tests.lifecycle.conftest import run_worker
from tests.support import TestDB, wait_for


@pytest.fixture
def worker(broker: dramatiq.Broker) -> Iterator[dramatiq.Worker]:
    yield from run_worker(broker)


def test_on_failure_commits_its_trace_and_the_attempts_work_rolls_back(
    db: TestDB, worker: dramatiq.Worker
) -> None:
    tenant = db.create_tenant("a")
    with tenant_session(tenant) as session:
        job = enqueue(session, actors.fails_with_trace, "x-17").message_id
    wait_for(lambda: db.scalar('SELECT "state"::text FROM dramatiq.queue WHERE message_id = %s',
                               (job,)) == "rejected", message="the job to be dead-lettered")
    rows = db.query("SELECT event_type, title, description FROM activity_events "
                    "WHERE tenant_id = %s ORDER BY created_at, title", (tenant,))
    kinds = [r[0] for r in rows]
    assert kinds.count("job.started") == 2  # the separate session committed each attempt
    assert "job.work" not in kinds  # the failed attempts' own writes rolled back
    failures = sorted(r[1] for r in rows if r[0] == "job.failed")
    assert failures == ["attempt 1 final=False", "attempt 2 final=True"]
    assert all(r[2] == "ValueError: bad input x-17" for r in rows if r[0] == "job.failed")
