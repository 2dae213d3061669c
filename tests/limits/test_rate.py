"""Rate limits per key hold across several real worker processes: close to and never above.

The limit applies to starts as the actor sees them: on the jobs' own clock, no one-second
window ever holds more than the limit, however long dispatch to a thread took (a job that
could not start right after its claim is handed back and claimed again), and the broker's
record of claims holds to it too. Over ten seconds the rate stays within 10% of the limit.
"""

from __future__ import annotations

from datetime import timedelta

import dramatiq
import psycopg

from app.jobs import enqueue_many
from tests.limits.helpers import FAST_LEASES, install_probe, max_in_window
from tests.support import TestDB, wait_for

KEYS = ("workspace-1", "workspace-2")
LIMIT, PER = 10, 1.0  # tests/limits/actors.py: rate_probe
SECONDS = 10


def test_each_key_runs_at_its_rate_over_ten_seconds_and_never_above_it(
    db: TestDB, broker: dramatiq.Broker
) -> None:
    from tests.limits import actors

    install_probe(db)
    for _ in range(2):
        db.start_worker("tests.limits.actors", threads=4, queues=["lim_rate"], **FAST_LEASES)
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.workers") == 2, timeout=30,
             message="both worker processes to register")
    with psycopg.connect(db.worker_url) as conn:
        for key in KEYS:
            enqueue_many(conn, actors.rate_probe, [((key,), {}) for _ in range(130)])
    first = wait_for(lambda: db.scalar("SELECT min(started_at) FROM limit_probe"),
                     message="the first job to start")
    wait_for(lambda: db.scalar("SELECT max(started_at) FROM limit_probe")
             > first + timedelta(seconds=SECONDS + 0.5),
             timeout=30, message="ten seconds of starts")

    expected = LIMIT * SECONDS / PER
    for key in KEYS:
        rows = db.query(
            "SELECT p.started_at, q.started_at FROM limit_probe p "
            "JOIN dramatiq.queue q USING (message_id) WHERE p.key = %s", (key,))
        seen = sorted(job for job, _ in rows)
        claimed = sorted(claim for _, claim in rows)
        # The jobs' own record of their starts: never above the limit in any window.
        assert max_in_window(seen, PER) <= LIMIT, key
        # Within 10% of the limit over ten seconds.
        in_window = [t for t in seen if seen[0] <= t < seen[0] + timedelta(seconds=SECONDS)]
        assert 0.9 * expected <= len(in_window) <= expected, (key, len(in_window))
        # The rows' record of the starts (started_at, written by the worker) agrees.
        assert max_in_window(claimed, PER) <= LIMIT, key
    # Over-limit jobs waited in the table, neither failed nor retried.
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE attempts > 1 "
                     "OR state = 'rejected'") == 0
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'queued'") > 0
