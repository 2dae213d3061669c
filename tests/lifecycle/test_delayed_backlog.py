"""A large delayed backlog (reminders booked weeks ahead) costs the worker's poll nothing:
each promotion reads the rows that are due, not every row still waiting."""

from __future__ import annotations

import psycopg

from app.store import claim
from tests.lifecycle import actors
from tests.support import TestDB, queue_reads

DELAYED = f"{actors.QUEUE}.DQ"


def test_promotion_reads_the_due_rows_not_the_whole_delayed_backlog(db: TestDB) -> None:
    """With 100,000 jobs waiting for next week, every poll walked all of them in the claim
    index (51 ms a poll, each of a worker's queues, forever)."""
    waiting, due = 100_000, 20
    db.query("INSERT INTO dramatiq.queue (message_id, queue_name, \"state\", eta, message) "
             "SELECT gen_random_uuid(), %s, 'queued', now() + interval '7 days' + i * "
             "interval '1 second', '{}' FROM generate_series(1, %s) i RETURNING 1",
             (DELAYED, waiting))
    db.query("INSERT INTO dramatiq.queue (message_id, queue_name, \"state\", eta, message) "
             "SELECT gen_random_uuid(), %s, 'queued', now() - i * interval '1 second', '{}' "
             "FROM generate_series(1, %s) i RETURNING 1", (DELAYED, due))
    next_week = db.scalar("SELECT min(eta) FROM dramatiq.queue WHERE eta > now()")
    with db.owner() as conn:
        conn.execute("VACUUM ANALYZE dramatiq.queue")
    # Prepared and planned once for any parameters, as on a worker's long-lived connection.
    with psycopg.connect(db.owner_url, autocommit=True, prepare_threshold=0) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        start, scans = queue_reads(conn)
        moved, _, next_eta = claim.promote(conn, actors.QUEUE, DELAYED, 1000)
        moving, _ = queue_reads(conn)
        again = claim.promote(conn, actors.QUEUE, DELAYED, 1000)
        idle, idle_scans = queue_reads(conn)
    assert (moved, next_eta, again) == (due, next_week, (0, None, next_week))
    # A moved row costs its page and its new index entries, ~18 blocks; a poll with nothing
    # due reads one entry of the next eta. Walking the backlog's 100,000 claim-index entries
    # instead costs every poll hundreds of blocks.
    per_row, poll = (moving - start) / due, idle - moving
    assert (idle_scans - scans, per_row < 30, poll < 20) == (0, True, True), (per_row, poll)
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE queue_name = %s",
                     (actors.QUEUE,)) == due
