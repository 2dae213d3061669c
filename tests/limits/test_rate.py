"""Rate limits per key hold across several real worker processes: close to and never above.

The limit applies to starts as the broker records them (the claim sets ``started_at``): no
one-second window ever holds more than the limit. A job's own clock reads its start a few
milliseconds later (dispatch to a thread), by a varying amount; so on the jobs' clock no
window shorter than one second by that measured spread holds more than the limit.
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
        spread = max((j - c).total_seconds() for j, c in rows) - min(
            (j - c).total_seconds() for j, c in rows)
        # The broker's record: within 10% of the limit over ten seconds, never above it.
        in_window = [t for t in claimed if claimed[0] <= t < claimed[0]
                     + timedelta(seconds=SECONDS)]
        assert 0.9 * expected <= len(in_window) <= expected, (key, len(in_window))
        assert max_in_window(claimed, PER) == LIMIT, key
        # The jobs' own record: the same, give or take the dispatch spread.
        in_window = [t for t in seen if seen[0] <= t < seen[0] + timedelta(seconds=SECONDS)]
        assert 0.9 * expected <= len(in_window) <= 1.1 * expected, (key, len(in_window))
        assert spread < 0.3, (key, spread)
        assert max_in_window(seen, PER - spread) <= LIMIT, (key, spread)
    # Over-limit jobs waited in the table, neither failed nor retried.
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE attempts > 1 "
                     "OR state = 'rejected'") == 0
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'queued'") > 0
