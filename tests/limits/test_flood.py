"""A tenant flooding a fair queue with 100,000 jobs delays another tenant's 10 new jobs by
well under a second: keys (tenants, by default) are served round-robin."""

from __future__ import annotations

import time

import dramatiq

from app.db.tenant import tenant_session
from app.jobs import enqueue, enqueue_many
from tests.limits.helpers import FAST_LEASES, install_probe
from tests.support import TestDB, wait_for

FLOOD = 100_000


def test_a_flooding_tenant_does_not_starve_a_small_one(
    db: TestDB, broker: dramatiq.Broker
) -> None:
    from tests.limits import actors

    install_probe(db)
    for _ in range(2):
        db.start_worker("tests.limits.actors", threads=8, queues=["lim_flood"], **FAST_LEASES)
    big, small = db.create_tenant("big"), db.create_tenant("small")
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.workers") == 2, timeout=30,
             message="both worker processes to register")

    started = time.monotonic()
    with tenant_session(big) as session:
        enqueue_many(session, actors.flood, [((i,), {}) for i in range(FLOOD)])
    flood_seconds = time.monotonic() - started
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'done'")
             >= 1000, message="the flood to be draining")
    with tenant_session(small) as session:
        for _ in range(10):
            enqueue(session, actors.flood_probe, "small")
    wait_for(lambda: db.scalar("SELECT count(*) FROM limit_probe WHERE ended_at IS NOT NULL")
             == 10, timeout=20, message="the small tenant's 10 jobs to run")

    latencies = [r[0] for r in db.query(
        "SELECT extract(epoch FROM p.started_at - q.enqueued_at)::float8 "
        "FROM limit_probe p JOIN dramatiq.queue q USING (message_id)")]
    waiting = db.scalar("SELECT count(*) FROM dramatiq.queue WHERE tenant_id = %s "
                        "AND state = 'queued'", (big,))
    print(f"\nflood enqueue {flood_seconds:.1f}s; small tenant start latency: "
          f"max {max(latencies):.3f}s, median {sorted(latencies)[5]:.3f}s; "
          f"big tenant still waiting: {waiting}")
    assert max(latencies) < 0.5, latencies
    assert waiting > FLOOD // 2  # the small tenant did not wait for the backlog
