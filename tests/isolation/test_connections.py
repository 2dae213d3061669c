"""Connections per worker process do not grow with the number of queues.

Each process holds one listening connection and one claim connection whatever it consumes,
plus its pools (``JOBS_WORKER_POOL_SIZE`` in all, split between the broker's statements and
actor sessions). With 20 queues busy on 2 worker processes, ``pg_stat_activity`` never shows
more than 2 x (2 + pool size) worker connections (before: two per queue and process).
"""

from __future__ import annotations

from pathlib import Path

from app.db.tenant import tenant_session
from app.jobs import enqueue_many
from tests.isolation import actors
from tests.support import TestDB, wait_for

POOL_SIZE = 4
COUNT = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND usename IN ('app_worker', 'app_actor')
"""


def test_twenty_queues_on_two_processes_stay_within_the_connection_budget(
    db: TestDB, tmp_path: Path
) -> None:
    with db.owner() as conn:
        conn.execute(actors.DDL)
    tenant = db.create_tenant()
    db.start_worker("tests.isolation.actors", processes=2, threads=8,
                    queues=actors.MANY_QUEUES, log=tmp_path / "w.log",
                    JOBS_WORKER_POOL_SIZE=str(POOL_SIZE))
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.workers") == 2, timeout=30,
             message="both worker processes to register")
    with tenant_session(tenant) as session:
        for actor in actors.SESSION_JOBS:
            enqueue_many(session, actor, [((n,), {}) for n in range(40)])
    peak = 0

    def drained() -> bool:
        nonlocal peak
        peak = max(peak, db.scalar(COUNT))
        return db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state <> 'done'") == 0

    wait_for(drained, timeout=90, interval=0.05, message="800 jobs on 20 queues to finish")
    print(f"\npeak worker connections: {peak} (budget {2 * (2 + POOL_SIZE)})")
    assert 2 < peak <= 2 * (2 + POOL_SIZE)
