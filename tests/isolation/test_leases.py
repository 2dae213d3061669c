"""Rescue judges each worker by its own lease: a live worker's running job is never taken.

Two workers with leases of 1 s and 10 s (heartbeats every 0.25 s and 2 s) share a queue of
300 jobs, some running longer than the short lease. The short-lease worker leads the
maintenance (it rescues). Were workers judged by the rescuer's own lease, the long-lease
worker would look dead between its heartbeats and lose its jobs; judged by its own, it
never does.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from app.jobs import enqueue_many
from tests.isolation import actors
from tests.support import TestDB, wait_for

SHORT = {"JOBS_LEASE_SECONDS": "1", "JOBS_HEARTBEAT_SECONDS": "0.25"}
LONG = {"JOBS_LEASE_SECONDS": "10", "JOBS_HEARTBEAT_SECONDS": "2"}

# The maintenance leader holds this advisory lock (hashtext('pgjobs.maintenance')).
LEADER_PID = """
SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objid = (hashtext('pgjobs.maintenance')
      & x'ffffffff'::bigint)::oid
"""


def workers(db: TestDB) -> dict[float, object]:
    return {float(s): w for w, s in db.query(
        "SELECT worker_id, lease_seconds FROM dramatiq.workers")}


def test_a_live_workers_jobs_are_never_taken_whatever_the_rescuers_lease(
    db: TestDB, tmp_path: Path
) -> None:
    db.start_worker("tests.isolation.actors", threads=4, queues=[actors.POISON],
                    log=tmp_path / "short.log", **SHORT)
    wait_for(lambda: 1.0 in workers(db), timeout=30, message="the short-lease worker")
    wait_for(lambda: db.scalar(LEADER_PID), timeout=30,
             message="the short-lease worker to lead the maintenance")
    db.start_worker("tests.isolation.actors", threads=4, queues=[actors.POISON],
                    log=tmp_path / "long.log", **LONG)
    wait_for(lambda: 10.0 in workers(db), timeout=30, message="the long-lease worker")

    with psycopg.connect(db.worker_url, autocommit=True) as conn:
        enqueue_many(conn, actors.slow, [((1.5 if n % 15 == 0 else 0.02,), {})
                                         for n in range(300)])
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'done'")
             == 300, timeout=120, interval=0.2, message="all 300 jobs to finish")

    long_worker = workers(db)[10.0]
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE worker_id = %s",
                     (long_worker,)) > 0, "the long-lease worker ran nothing: no test"
    taken = db.query("SELECT message_id, attempts, last_error FROM dramatiq.queue "
                     "WHERE attempts <> 1 OR last_error IS NOT NULL")
    assert taken == []
    assert "event=rescued" not in (tmp_path / "short.log").read_text()
