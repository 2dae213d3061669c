"""Delayed jobs wait in the table, not in a worker: they survive restarts and cost no memory.

Stock dramatiq consumes a delayed message at once and holds it in the worker's memory until
its eta; here it waits in ``<queue>.DQ`` until due, so a restart loses nothing and 100,000
future jobs leave a worker's resident memory where it was.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.db.tenant import tenant_session
from app.jobs import enqueue, enqueue_many
from tests.foundation import actors
from tests.foundation.helpers import children, job_row, rss_kb, runs, start, state, stop
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow  # real worker processes


def test_delayed_job_survives_a_restart_and_runs_after_its_eta(
    probes: TestDB, tmp_path: Path
) -> None:
    db = probes
    tenant = db.create_tenant()
    first, _ = start(db, tmp_path, "first", queues=[actors.QUEUE])
    with tenant_session(tenant) as session:
        delayed = enqueue(session, actors.work, delay=2).message_id
    eta = job_row(db, delayed)["eta"]
    assert db.scalar("SELECT now() < %s", (eta,))
    assert stop(first) == 0  # SIGTERM before the eta; a stopping worker claims nothing

    row = job_row(db, delayed)
    assert (row["queue_name"], row["state"], row["attempts"]) == ("foundation.DQ", "queued", 0)
    assert runs(db, delayed) == []

    second, _ = start(db, tmp_path, "second", queues=[actors.QUEUE])
    wait_for(lambda: state(db, delayed) == "done", message="the delayed job to run")
    row = job_row(db, delayed)
    assert row["queue_name"] == "foundation" and row["attempts"] == 1
    assert row["started_at"] >= eta
    [(attempt, ran_at)] = runs(db, delayed)
    assert attempt == 1 and ran_at >= eta
    assert db.scalar("SELECT pid FROM foundation_runs") in children(second.pid)


def worker_rss_kb(pid: int) -> int:
    """Resident memory of dramatiq's worker processes (the main process runs no jobs)."""
    kids = children(pid)
    assert kids, f"dramatiq main process {pid} has no worker process"
    return sum(rss_kb(kid) for kid in kids)


def heartbeats(db: TestDB, count: int, interval: float = 0.5) -> None:
    """Wait until every worker has heartbeaten ``count`` more times (its threads are live)."""
    since = db.scalar("SELECT now()")
    wait_for(lambda: db.scalar(
        "SELECT min(heartbeat_at) > %s + make_interval(secs => %s) FROM dramatiq.workers",
        (since, count * interval)), timeout=10 + count * interval, message=f"{count} heartbeats")


def test_100k_future_jobs_do_not_grow_worker_memory(probes: TestDB, tmp_path: Path) -> None:
    db = probes
    tenant = db.create_tenant()
    proc, _ = start(db, tmp_path, "worker", queues=[actors.QUEUE], JOBS_POLL_SECONDS="0.5")
    # Warm up every code path a job takes, then settle: the baseline is a worker at work.
    with tenant_session(tenant) as session:
        warm = enqueue(session, actors.work).message_id
    wait_for(lambda: state(db, warm) == "done", message="the warm-up job")
    heartbeats(db, 4)
    before = worker_rss_kb(proc.pid)

    started = time.monotonic()
    with tenant_session(tenant) as session:
        enqueue_many(session, actors.work, [((), {}) for _ in range(100_000)], delay=3600)
    enqueued_in = time.monotonic() - started
    with tenant_session(tenant) as session:
        canary = enqueue(session, actors.work).message_id
    # The consumer has claimed (and run) work past the 100,000 delayed rows...
    wait_for(lambda: state(db, canary) == "done", timeout=30, message="the canary job")
    # ...and kept cycling (promotion checks every 0.5 s) with them present.
    heartbeats(db, 6)
    after = worker_rss_kb(proc.pid)

    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE queue_name = 'foundation.DQ' "
                     "AND \"state\" = 'queued' AND started_at IS NULL") == 100_000
    growth = after - before
    print(f"\nworker RSS: {before / 1024:.1f} MB on an empty queue, {after / 1024:.1f} MB with "
          f"100,000 delayed jobs in the table (growth {growth / 1024:+.1f} MB); "
          f"enqueue_many of 100,000 in one transaction took {enqueued_in:.1f} s")
    assert growth < 10 * 1024, f"worker RSS grew by {growth / 1024:.1f} MB"
