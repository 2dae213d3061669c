"""Concurrency limits per key and per queue hold across real worker processes, and a
killed worker's jobs stop counting once they are rescued (and not before)."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta

import dramatiq
import psycopg

from app.jobs import enqueue_many
from tests.limits.helpers import FAST_LEASES, install_probe, max_overlap
from tests.support import TestDB, wait_for


def intervals(db: TestDB, queue: str, key: str | None = None) -> list[tuple[datetime, datetime]]:
    return db.query(
        "SELECT started_at, ended_at FROM limit_probe WHERE queue = %s "
        "AND (%s::text IS NULL OR key = %s) AND ended_at IS NOT NULL",
        (queue, key, key),
    )


def test_concurrency_per_key_and_per_queue_is_never_exceeded(
    db: TestDB, broker: dramatiq.Broker
) -> None:
    from tests.limits import actors

    install_probe(db)
    for _ in range(3):
        db.start_worker("tests.limits.actors", threads=3, queues=["lim_conc"], **FAST_LEASES)
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.workers") == 3, timeout=30,
             message="three worker processes to register")
    keys = ("channel-a", "channel-b", "channel-c")
    with psycopg.connect(db.worker_url) as conn:
        for key in keys:
            enqueue_many(conn, actors.concurrency_probe, [((key, 0.25), {}) for _ in range(8)])
    wait_for(lambda: db.scalar("SELECT count(*) FROM limit_probe WHERE ended_at IS NOT NULL")
             == 24, timeout=40, message="all 24 jobs to finish")
    # tests/limits/actors.py: 2 per channel, 3 in the queue; 9 threads could run 9 at once.
    for key in keys:
        assert max_overlap(intervals(db, "lim_conc", key)) <= 2, key
    assert max_overlap(intervals(db, "lim_conc")) == 3
    assert db.scalar("SELECT count(DISTINCT worker_id) FROM dramatiq.queue") > 1


def test_a_killed_workers_job_holds_its_slot_until_rescued_then_frees_it(
    db: TestDB, broker: dramatiq.Broker
) -> None:
    from tests.limits import actors

    install_probe(db)
    first = db.start_worker("tests.limits.actors", threads=2, queues=["lim_kill"],
                            **FAST_LEASES)
    with psycopg.connect(db.worker_url) as conn:
        # The first attempt of this job hangs until its worker is killed.
        enqueue_many(conn, actors.kill_probe, [(("shop-1", 0.0, True), {})])
    wait_for(lambda: db.scalar("SELECT count(*) FROM limit_probe"), timeout=30,
             message="the hanging job to start")
    # The survivor must wait for the lease, as it would for a worker on another host (on
    # this host it would see the dead PID and rescue at once).
    db.start_worker("tests.limits.actors", threads=2, queues=["lim_kill"], **FAST_LEASES,
                    JOBS_NEIGHBOUR_RESCUE="0")
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.workers") == 2, timeout=30,
             message="the second worker to register")
    with psycopg.connect(db.worker_url) as conn:
        enqueue_many(conn, actors.kill_probe, [(("shop-1", 0.05), {}) for _ in range(3)])
        enqueue_many(conn, actors.kill_probe, [(("shop-2", 0.05), {}) for _ in range(3)])
    # Another key is not held up: shop-2 runs on the second worker meanwhile.
    wait_for(lambda: db.scalar("SELECT count(*) FROM limit_probe WHERE key = 'shop-2' "
                               "AND ended_at IS NOT NULL") == 3,
             message="the other key's jobs to run")
    status = db.query("SELECT running, concurrency_limit, waiting FROM jobs.limit_status "
                      "WHERE queue = 'lim_kill' AND key = 'shop-1'")
    assert status == [(1, 1, 3)]

    os.killpg(first.pid, signal.SIGKILL)
    killed_at = datetime.now(UTC)
    # Until the lease expires the dead worker's job still counts: nothing of shop-1 starts.
    # Then it is rescued, its slot is free, and the rest run one at a time.
    wait_for(lambda: db.scalar("SELECT count(*) FROM limit_probe WHERE key = 'shop-1' "
                               "AND ended_at IS NOT NULL") == 4,
             timeout=30, message="the rescued job and the three waiting ones to run")
    later = db.query("SELECT started_at FROM limit_probe WHERE key = 'shop-1' "
                     "AND NOT (attempt = 1 AND ended_at IS NULL)")
    assert len(later) == 4
    lease = float(FAST_LEASES["JOBS_LEASE_SECONDS"])
    heartbeat = float(FAST_LEASES["JOBS_HEARTBEAT_SECONDS"])
    assert min(t for (t,) in later) >= killed_at + timedelta(seconds=lease - heartbeat - 0.2)
    assert max_overlap(intervals(db, "lim_kill", "shop-1")) == 1
    assert db.scalar("SELECT last_error FROM dramatiq.queue WHERE attempts = 2") == (
        "worker lost during attempt 1")
