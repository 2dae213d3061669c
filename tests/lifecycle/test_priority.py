"""Priorities: within a queue, higher priority starts first; equal priority is FIFO by eta.

Jobs are enqueued while no worker runs (each in its own transaction, so their etas differ),
then one worker thread claiming one job at a time runs them and records its start order.
"""

from __future__ import annotations

import dramatiq
import psycopg
import pytest

from app.jobs import enqueue
from tests.lifecycle import actors
from tests.support import TestDB, wait_for


@pytest.mark.parametrize("claim_batch", [1, 50])
def test_higher_priority_first_and_fifo_within_a_priority(
    probes: TestDB, broker: dramatiq.Broker, monkeypatch: pytest.MonkeyPatch, claim_batch: int
) -> None:
    """Batch 1: claims follow the order. Batch 50: all are claimed at once, and the worker's
    work queue must keep the claim order (dramatiq's own proxy compares as "any order")."""
    db = probes
    plan = [  # (label, actor, per-enqueue priority) in enqueue order
        ("low-1", actors.ordered, None),
        ("urgent-1", actors.urgent, None),       # actor priority 5
        ("low-2", actors.ordered, None),
        ("top-1", actors.ordered, 9),            # per-enqueue priority
        ("urgent-2", actors.urgent, None),
        ("below-1", actors.ordered, -1),
        ("low-3", actors.ordered, None),
        ("top-2", actors.urgent, 9),             # per-enqueue beats the actor's
        ("urgent-low", actors.urgent, 0),        # ...also downwards
    ]
    with psycopg.connect(db.worker_url) as conn:
        for label, actor, priority in plan:
            with conn.transaction():
                enqueue(conn, actor, label, priority=priority)

    monkeypatch.setattr(broker, "claim_batch", claim_batch)  # JOBS_CLAIM_BATCH
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        wait_for(lambda: db.scalar("SELECT count(*) FROM lifecycle_runs") == len(plan),
                 message="every job to start")
    finally:
        worker.stop(timeout=10_000)
    started = [label for (label,) in db.query("SELECT label FROM lifecycle_runs ORDER BY seq")]
    assert started == [
        "top-1", "top-2", "urgent-1", "urgent-2", "low-1", "low-2", "low-3", "urgent-low",
        "below-1",
    ]
