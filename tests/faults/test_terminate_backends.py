"""Worker connections cut with ``pg_terminate_backend`` mid-run: workers reconnect alone.

Every connection of the workers to this test's database (the consumer's claim and LISTEN
connections, the broker pool, the tenant sessions' pool) is terminated several times while
two worker processes drain jobs that write one row each under their tenant's RLS context.
Only this test's database is touched. At the end every job is done exactly once.
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID

import dramatiq
import pytest

from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.faults import actors
from tests.faults.helpers import (
    assert_exactly_once,
    done_count,
    enqueue_jobs,
    log_tail,
    start_worker,
    wait_progress,
)
from tests.support import TestDB, wait_for

JOBS = 6_000
ROUNDS = 6

TERMINATE = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND (application_name LIKE 'pgjobs%%' OR usename = 'app_worker')
"""


def finishers_since(db: TestDB, since: object) -> set[object]:
    return {w for (w,) in db.query(
        "SELECT DISTINCT worker_id FROM dramatiq.queue WHERE state = 'done' AND mtime > %s",
        (since,))}


@pytest.mark.slow
def test_terminated_connections_recover(
    effects: TestDB, tenants: list[UUID], tmp_path: Path
) -> None:
    db = effects
    enqueue_jobs(tenants, JOBS)
    workers = [start_worker(db, tmp_path, f"worker-{i}") for i in range(2)]

    def alive() -> None:
        for i, (proc, _) in enumerate(workers):
            assert proc.poll() is None, log_tail(tmp_path / f"worker-{i}.log")

    recovery, terminated = [], []
    for round_no in range(1, ROUNDS + 1):
        wait_progress(db, JOBS * round_no // (ROUNDS + 2), timeout=60, alive=alive)
        since = db.scalar("SELECT now()")
        cut_at = time.monotonic()
        terminated.append(db.scalar(TERMINATE))
        wait_for(lambda since=since: len(finishers_since(db, since)) == 2, timeout=30, interval=0.1,
                 message="both workers to finish jobs after their connections were cut")
        recovery.append(time.monotonic() - cut_at)

    wait_for(lambda: done_count(db) == JOBS, timeout=90, interval=0.2,
             message="every job to finish")
    acc = assert_exactly_once(db, JOBS)
    retried = db.scalar("SELECT count(*) FROM dramatiq.queue WHERE attempts > 1")
    print(f"\nterminate: jobs={acc.jobs} done={acc.done} effects={acc.effects} "
          f"duplicated={acc.duplicated} retried_jobs={retried} terminated={terminated} "
          f"recovery_s={[round(s, 1) for s in recovery]}")
    assert min(terminated) >= 4  # at least the claim and LISTEN connections of each worker
    alive()


def test_job_whose_connection_dies_before_commit_is_retried_not_done(
    effects: TestDB, tenants: list[UUID], broker: dramatiq.Broker, worker: dramatiq.Worker,
) -> None:
    """The job's own connection is cut after its write, before its commit: neither commit
    nor rollback can run. The attempt must fail and be retried; acking it as done would
    lose its write for good (the bug this guards: a failing rollback hid the error)."""
    db = effects
    with tenant_session(tenants[0]) as session:
        job_id = enqueue(session, actors.cut_own_connection, 1).message_id
    wait_for(lambda: db.scalar('SELECT "state"::text FROM dramatiq.queue WHERE message_id = %s',
                               (job_id,)) in ("done", "rejected"),
             message="the job to finish")
    state, attempts, error = db.query(
        'SELECT "state"::text, attempts, last_error FROM dramatiq.queue WHERE message_id = %s',
        (job_id,))[0]
    assert (state, attempts) == ("done", 2), error
    assert db.scalar("SELECT count(*) FROM fault_effects WHERE message_id = %s", (job_id,)) == 1
