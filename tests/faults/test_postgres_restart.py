"""PostgreSQL restarts mid-run: workers reconnect by themselves, nothing lost or doubled.

Runs on a private cluster (never the shared server). Two worker processes drain jobs that
each write one row under their tenant's RLS context; the server is restarted twice, once at
once and once after an outage longer than the worker lease, with every connection cut.
The same worker processes, never restarted by the test, finish the run: every job done,
exactly one committed row each.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from app.config import APP_ROLE, role_url
from app.db.engine import sqlalchemy_url
from tests.faults.cluster import PrivateCluster
from tests.faults.helpers import (
    assert_exactly_once,
    done_count,
    enqueue_jobs,
    log_tail,
    start_worker,
    wait_progress,
)
from tests.support import TestDB, wait_for

#: Enough jobs that, after the second restart, the rest takes a few seconds to drain: one
#: worker cannot finish them all before the other is back.
JOBS = 8_000
#: The second outage outlasts the 3 s lease: every heartbeat is stale when the server is back.
LONG_OUTAGE_SECONDS = 4.0


def finishers_since(db: TestDB, since: object) -> set[object]:
    return {w for (w,) in db.query(
        "SELECT DISTINCT worker_id FROM dramatiq.queue WHERE state = 'done' AND mtime > %s",
        (since,))}


@pytest.mark.slow
def test_postgres_restart_mid_run(private_cluster: PrivateCluster, tmp_path: Path) -> None:
    db = private_cluster.db
    assert db is not None
    tenants = [db.create_tenant(f"tenant-{i}") for i in range(4)]
    engine = create_engine(sqlalchemy_url(role_url(db.owner_url, APP_ROLE, "APP_USER_PASSWORD")))
    try:
        enqueue_jobs(tenants, JOBS, engine=engine)
    finally:
        engine.dispose()
    workers = [start_worker(db, tmp_path, f"worker-{i}") for i in range(2)]

    def alive() -> None:
        for i, (proc, _) in enumerate(workers):
            assert proc.poll() is None, log_tail(tmp_path / f"worker-{i}.log")

    recovery = []
    for outage, threshold in ((0.0, JOBS // 5), (LONG_OUTAGE_SECONDS, 2 * JOBS // 5)):
        wait_progress(db, threshold, timeout=60, alive=alive)
        private_cluster.stop()
        if outage:
            time.sleep(outage)  # the outage itself, not a wait for something
        private_cluster.start()
        back_at = time.monotonic()
        since = db.scalar("SELECT now()")
        # Both workers, the same processes, finish jobs again on their own.
        wait_for(lambda since=since: len(finishers_since(db, since)) == 2, timeout=60, interval=0.1,
                 message="both workers to finish jobs after the restart")
        recovery.append(time.monotonic() - back_at)
        alive()

    wait_for(lambda: done_count(db) == JOBS, timeout=90, interval=0.2,
             message="every job to finish")
    acc = assert_exactly_once(db, JOBS)
    retried = db.scalar("SELECT count(*) FROM dramatiq.queue WHERE attempts > 1")
    print(f"\npostgres restart: jobs={acc.jobs} done={acc.done} effects={acc.effects} "
          f"duplicated={acc.duplicated} retried_jobs={retried} "
          f"recovery_s={[round(s, 1) for s in recovery]}")
    alive()
